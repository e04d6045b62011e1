import { freemem, totalmem } from 'node:os';
import { DeploylabError, type Bilingual } from '../core/errors.js';
import type { LoadedTask } from '../tasks/loader.js';
import { gpuFit, missingText } from '../host/gpu-fit.js';
import type { GpuFacts } from '../host/types.js';

/**
 * What a room asks of the host, worked out from the roster and the paper before anything is
 * hashed or provisioned. Addresses are a hard bound (provisioning would fail part-way through
 * the room); memory ceilings are limits, not use, so exceeding the host only warns.
 */
export interface RoomDemand {
  seats: number;
  sandboxes: number;
  /** Sum of every container's memory limit in the room (the seat daemon's counts twice its seat's). */
  memoryCeilingMiB: number;
}

export function roomDemand(seats: number, tasks: readonly LoadedTask[]): RoomDemand {
  const perSeat = tasks.reduce((sum, t) => sum + t.task.needs.memoryMiB * (t.task.needs.profile === 'docker-in-seat' ? 3 : 1), 0);
  return { seats, sandboxes: seats * tasks.length, memoryCeilingMiB: seats * perSeat };
}

/** Refuses a room the backend cannot hold; returns the warnings for what it can hold but not promise. */
export function checkCapacity(
  demand: RoomDemand,
  limits: { sandboxesPerSession: number | null; hostMemoryMiB?: number },
): Bilingual[] {
  const { sandboxesPerSession: max } = limits;
  if (max !== null && demand.sandboxes > max) {
    const tasks = demand.seats > 0 ? demand.sandboxes / demand.seats : 0;
    const fits = tasks > 0 ? Math.floor(max / tasks) : 0;
    throw new DeploylabError({
      code: 'SESSION_CAPACITY',
      fault: 'config',
      message: {
        zh: `名单有 ${demand.seats} 名考生、试卷 ${tasks} 道题，共需 ${demand.sandboxes} 个考位沙箱，一个场次的网络最多容纳 ${max} 个`,
        en: `${demand.seats} candidates × ${tasks} tasks need ${demand.sandboxes} seat sandboxes; one session's network holds at most ${max}`,
      },
      hint: {
        zh: `每个场次最多 ${fits} 名考生：把名单拆成几个场次（每个考场一个场次）`,
        en: `at most ${fits} candidates per session: split the roster into several sessions (one per room)`,
      },
      details: { ...demand, sandboxesPerSession: max, candidatesPerSession: fits },
    });
  }
  const warnings: Bilingual[] = [];
  const host = limits.hostMemoryMiB ?? Math.floor(totalmem() / 2 ** 20);
  if (demand.memoryCeilingMiB > host) {
    const gib = (m: number): string => (m / 1024).toFixed(1);
    warnings.push({
      zh: `全部考位的内存上限合计 ${gib(demand.memoryCeilingMiB)} GiB，超过本机内存 ${gib(host)} GiB（当前空闲 ${gib(freemem() / 2 ** 20)} GiB）：若多数考生同时用满上限，主机会内存不足`,
      en: `the seats' memory limits add up to ${gib(demand.memoryCeilingMiB)} GiB, more than this host's ${gib(host)} GiB (${gib(freemem() / 2 ** 20)} GiB free now): if most candidates fill their limits at once the host runs out`,
    });
  }
  return warnings;
}

/**
 * Refuses a paper with a task whose GPUs this host cannot give (SESSION_GPU_UNMET), naming each
 * such task and what is missing; NVIDIA_SMI_FAILED where the GPUs could not be read. The host is
 * asked only when a task needs GPUs.
 */
export function checkGpuFit(tasks: readonly LoadedTask[], hostGpu: () => GpuFacts): void {
  const gpuTasks = tasks.filter((t) => t.task.needs.gpus > 0);
  if (gpuTasks.length === 0) return;
  const facts = hostGpu();
  const unfit = gpuTasks.map((t) => ({ id: t.task.id, fit: gpuFit(facts, t.task.needs) })).filter((u) => u.fit.verdict !== 'fits');
  if (unfit.length === 0) return;
  const lines = unfit.map((u) => {
    const m = missingText(u.fit.verdict === 'fits' ? [] : u.fit.missing);
    return { zh: `${u.id}：${m.zh}`, en: `${u.id}: ${m.en}` };
  });
  const details = { tasks: unfit.map((u) => ({ task: u.id, ...u.fit })) };
  if (facts.state === 'error') {
    throw new DeploylabError({
      code: 'NVIDIA_SMI_FAILED',
      fault: 'infrastructure',
      message: { zh: `无法检查本机 GPU 能否承担试卷的 GPU 考题：${facts.error.message.zh}`, en: `cannot check whether this host's GPUs can hold the paper's GPU tasks: ${facts.error.message.en}` },
      ...(facts.error.hint ? { hint: facts.error.hint } : {}),
      details,
    });
  }
  throw new DeploylabError({
    code: 'SESSION_GPU_UNMET',
    fault: 'config',
    message: {
      zh: `本机 GPU 不满足试卷中考题的需要：${lines.map((l) => l.zh).join('；')}`,
      en: `this host's GPUs do not meet the needs of the paper's tasks: ${lines.map((l) => l.en).join('; ')}`,
    },
    hint: {
      zh: '在满足要求的 GPU 主机上开设此场次，或换用不含这些考题的试卷',
      en: 'open this session on a GPU host that meets them, or use a paper without these tasks',
    },
    details,
  });
}
