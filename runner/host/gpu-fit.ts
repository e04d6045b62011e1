import type { Bilingual } from '../core/errors.js';
import { GPU_NEEDS_DEFAULT, type GpuNeeds } from '../tasks/task-schema.js';
import type { GpuFacts } from './types.js';

/** The part of a task's needs that GPUs answer. */
export interface GpuDemand {
  gpus: number;
  gpu?: GpuNeeds | undefined;
}

/**
 * Can this host give a task the GPUs it needs? `fits`: yes; `missing`: no, and `missing` says what
 * is lacking; `could-not-check`: nvidia-smi is there but failed, so we do not know (never "no GPU").
 */
export type GpuFit =
  | { verdict: 'fits' }
  | { verdict: 'missing'; missing: Bilingual[] }
  | { verdict: 'could-not-check'; missing: Bilingual[] };

/** A unit a seat could be given: a whole GPU or one MIG instance. */
interface Unit {
  kind: 'whole' | 'mig';
  memoryMiB: number | null;
}

/** A MIG profile names its memory: `3g.71gb`, `1c.3g.71gb` → 71 GiB. */
export function migProfileMemoryMiB(profile: string): number | null {
  const m = /(?:^|\.)(\d+)gb$/i.exec(profile);
  return m ? Number(m[1]) * 1024 : null;
}

function unitsOf(facts: Extract<GpuFacts, { state: 'present' }>): Unit[] {
  const units: Unit[] = [];
  for (const g of facts.gpus) {
    const listed = facts.list.find((l) => (g.uuid !== null && l.uuid === g.uuid) || (g.index !== null && l.index === g.index));
    if (g.migModeCurrent === 'Enabled') {
      for (const d of listed?.migDevices ?? []) units.push({ kind: 'mig', memoryMiB: migProfileMemoryMiB(d.profile) });
    } else {
      units.push({ kind: 'whole', memoryMiB: g.memoryTotalMiB });
    }
  }
  return units;
}

const wanted = (partition: GpuNeeds['partition'], u: Unit): boolean => partition === 'any' || u.kind === partition;

function countText(partition: GpuNeeds['partition'], need: number, have: number): Bilingual {
  if (partition === 'mig') {
    return { zh: `需要 ${need} 个 MIG 实例，本机有 ${have} 个`, en: `needs ${need} MIG instance${need === 1 ? '' : 's'}, this host has ${have}` };
  }
  const what = partition === 'whole' ? { zh: '块整 GPU', en: 'whole GPU' } : { zh: '块 GPU（或 MIG 实例）', en: 'GPU (or MIG instance)' };
  return { zh: `需要 ${need} ${what.zh}，本机有 ${have} 块`, en: `needs ${need} ${what.en}${need === 1 ? '' : 's'}, this host has ${have}` };
}

/** Pure: the host's GPU facts against a task's GPU needs. */
export function gpuFit(facts: GpuFacts, demand: GpuDemand): GpuFit {
  if (demand.gpus <= 0) return { verdict: 'fits' };
  const need = { ...GPU_NEEDS_DEFAULT, ...demand.gpu };
  const plural = demand.gpus === 1 ? '' : 's';
  if (facts.state === 'absent') {
    return {
      verdict: 'missing',
      missing: [
        { zh: `需要 ${demand.gpus} 块 GPU，本机有 0 块`, en: `needs ${demand.gpus} GPU${plural}, this host has 0` },
        { zh: '本机没有 nvidia-smi', en: 'no nvidia-smi on this host' },
      ],
    };
  }
  if (facts.state === 'error') {
    return {
      verdict: 'could-not-check',
      missing: [
        { zh: `无法检查本机 GPU：${facts.error.message.zh}`, en: `could not check this host's GPUs: ${facts.error.message.en}` },
      ],
    };
  }
  const units = unitsOf(facts);
  const ofKind = units.filter((u) => wanted(need.partition, u));
  const fitting = ofKind.filter((u) => need.minMemoryMiB === 0 || (u.memoryMiB !== null && u.memoryMiB >= need.minMemoryMiB));
  if (fitting.length >= demand.gpus) return { verdict: 'fits' };

  const missing: Bilingual[] = [];
  if (need.partition === 'mig' && ofKind.length === 0) {
    missing.push({ zh: '需要 MIG 实例，本机 GPU 未启用 MIG', en: "needs MIG instances, this host's GPUs do not have MIG enabled" });
  }
  if (need.partition === 'whole' && ofKind.length === 0 && units.some((u) => u.kind === 'mig')) {
    missing.push({ zh: '需要整块 GPU，本机 GPU 已启用 MIG', en: "needs whole GPUs, this host's GPUs are in MIG mode" });
  }
  if (ofKind.length < demand.gpus) missing.push(countText(need.partition, demand.gpus, ofKind.length));
  if (need.minMemoryMiB > 0 && ofKind.length > 0 && fitting.length < demand.gpus) {
    const known = ofKind.map((u) => u.memoryMiB).filter((m): m is number => m !== null);
    const max = known.length > 0 ? Math.max(...known) : null;
    missing.push(
      max === null
        ? { zh: `每块至少 ${need.minMemoryMiB} MiB 显存，本机显存大小未知`, en: `at least ${need.minMemoryMiB} MiB of memory each, this host's GPU memory is not reported` }
        : {
            zh: `每块至少 ${need.minMemoryMiB} MiB 显存，本机最大 ${max} MiB（够大的有 ${fitting.length} 块）`,
            en: `at least ${need.minMemoryMiB} MiB of memory each, this host's largest has ${max} MiB (${fitting.length} large enough)`,
          },
    );
  }
  return { verdict: 'missing', missing };
}

/** One line of the missing items, for messages: `a；b (a; b)`. */
export function missingText(missing: Bilingual[]): Bilingual {
  return { zh: missing.map((m) => m.zh).join('；'), en: missing.map((m) => m.en).join('; ') };
}

/** A GPU task of the tree and whether this host can run it (`host check`). */
export interface GpuTaskFit {
  taskId: string;
  gpus: number;
  gpu: GpuNeeds;
  fit: GpuFit;
}

/** Pure: each task that needs GPUs, judged against the host's GPUs; tasks without GPUs are left out. */
export function gpuTaskFits(facts: GpuFacts, tasks: readonly { id: string; needs: GpuDemand }[]): GpuTaskFit[] {
  return tasks
    .filter((t) => t.needs.gpus > 0)
    .map((t) => ({ taskId: t.id, gpus: t.needs.gpus, gpu: { ...GPU_NEEDS_DEFAULT, ...t.needs.gpu }, fit: gpuFit(facts, t.needs) }));
}
