import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { section } from '../../graders/parsers/nvidia-smi-capture.js';
import { parseComputeApps, parseList, parseQueryGpu } from '../../graders/parsers/nvidia-smi.js';
import type { DeploylabError } from '../../runner/core/errors.js';
import type { GpuFacts } from '../../runner/host/types.js';
import { FakeDriver } from '../../runner/sandbox/fake-driver.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import { openStore } from '../../runner/store/db.js';
import { DEFAULT_TASKS_ROOT } from '../../runner/tasks/loader.js';
import { ROSTER } from './helpers.js';

/**
 * `session open` of a paper with a GPU task on a host that cannot give it the GPUs: refused before
 * anything is stored, pinned or provisioned. The host's GPU facts are injected (no nvidia-smi here).
 */
const IMAGE = 'deploylab/workspace-cpu:gpu-paper';
const tasksRoot = mkdtempSync(join(tmpdir(), 'dl-gpu-tasks-'));
cpSync(DEFAULT_TASKS_ROOT, tasksRoot, { recursive: true });
// prune, changed to need one whole GPU of at least 40 GiB.
cpSync(join(tasksRoot, 'junior', 'prune'), join(tasksRoot, 'junior', 'prune-gpu'), { recursive: true });
const taskFile = join(tasksRoot, 'junior', 'prune-gpu', 'task.yaml');
const doc = parse(readFileSync(taskFile, 'utf8')) as { id: string; needs: Record<string, unknown> };
doc.id = 'prune-gpu';
doc.needs = { ...doc.needs, profile: 'gpu', gpus: 1, gpu: { minMemoryMiB: 40960, partition: 'whole' } };
writeFileSync(taskFile, stringify(doc));
const paper = (id: string, tasks: string[]): void =>
  writeFileSync(
    join(tasksRoot, 'papers', `${id}.yaml`),
    [`id: ${id}`, 'level: junior', 'title:', '  zh: GPU 练习卷', '  en: GPU practice paper', 'durationMinutes: 30', 'practice: true', 'tasks:', ...tasks.map((t) => `  - ${t}`), ''].join('\n'),
  );
paper('gpu-practice', ['quantize', 'prune-gpu']);
paper('cpu-practice', ['quantize', 'prune']);

const dataDir = mkdtempSync(join(tmpdir(), 'dl-gpu-paper-'));
const provisions: string[] = [];
const driver = new FakeDriver({ images: [IMAGE], failProvision: (plan) => void provisions.push(plan.session) });
let facts: GpuFacts = { state: 'absent' };
let asked = 0;
const svc = new SessionService({ db: openStore(dataDir), driver, dataDir, hostFree: async () => 1024 ** 4, hostGpu: () => (asked++, facts) });
const open = (id: string, paperId: string): ReturnType<SessionService['open']> =>
  svc.open({ id, paperId, tasksRoot, room: 'G1', roster: ROSTER, images: { workspaceCpu: IMAGE, toolbox: null }, baseUrl: 'http://127.0.0.1:8700/' });
const refusal = (fn: () => unknown): DeploylabError => {
  try {
    fn();
  } catch (e) {
    return e as DeploylabError;
  }
  throw new Error('expected a refusal');
};
/** Nothing of the session anywhere: not in the store, no pinned copy or cards, no seat in the driver. */
const nothingLeft = (id: string): void => {
  expect(() => svc.session(id)).toThrow(expect.objectContaining({ code: 'SESSION_NOT_FOUND' }));
  expect(svc.list().map((s) => s.id)).not.toContain(id);
  expect(existsSync(svc.sessionDir(id))).toBe(false);
  expect(driver.held(id)).toEqual([]);
  expect(provisions).not.toContain(id);
};
const H100 = 'linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt';
const H200 = 'linux-x86_64__nvidia-h200__590.48.01.txt';
const L40S = 'linux-x86_64__nvidia-l40s__595.80.txt';
const captured = (file: string): GpuFacts => ({
  state: 'present',
  nvidiaSmi: '/usr/bin/nvidia-smi',
  gpus: parseQueryGpu(section(file, 'nvidia-smi --query-gpu=', 'idle')),
  apps: parseComputeApps(section(file, 'nvidia-smi --query-compute-apps=', 'idle')),
  list: parseList(section(file, 'nvidia-smi -L')),
});

afterAll(() => {
  svc.db.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(tasksRoot, { recursive: true, force: true });
});

describe('session open: a GPU paper on a host without the GPUs', () => {
  it('no GPU: SESSION_GPU_UNMET naming the task and what is missing; nothing stored, no seats', () => {
    facts = { state: 'absent' };
    const e = refusal(() => open('gpu-none', 'gpu-practice'));
    expect(e).toMatchObject({ code: 'SESSION_GPU_UNMET', fault: 'config' });
    expect(e.message).toContain('prune-gpu: needs 1 GPU, this host has 0; no nvidia-smi on this host');
    expect(e.zh).toContain('prune-gpu：需要 1 块 GPU，本机有 0 块');
    expect(e.message).not.toContain('quantize');
    nothingLeft('gpu-none');
  });

  it('an L40S (46068 MiB) for a 40 GiB task opens; for the same task at 80 GiB the L40S and H100 are refused, the H200 opens', () => {
    facts = captured(L40S);
    expect(open('gpu-l40s', 'gpu-practice').seats).toHaveLength(ROSTER.length);
    doc.needs = { ...doc.needs, gpu: { minMemoryMiB: 81920, partition: 'whole' } };
    writeFileSync(taskFile, stringify(doc));
    const e = refusal(() => open('gpu-small', 'gpu-practice'));
    expect(e.code).toBe('SESSION_GPU_UNMET');
    expect(e.message).toContain("prune-gpu: at least 81920 MiB of memory each, this host's largest has 46068 MiB");
    nothingLeft('gpu-small');
    // An "80GB" H100 reports 81559 MiB: short of 81920. An H200 (143771 MiB) holds it.
    facts = captured(H100);
    expect(refusal(() => open('gpu-h100', 'gpu-practice')).message).toContain('largest has 81559 MiB');
    nothingLeft('gpu-h100');
    facts = captured(H200);
    expect(open('gpu-h200', 'gpu-practice').seats).toHaveLength(ROSTER.length);
  });

  it('nvidia-smi failed: NVIDIA_SMI_FAILED (could not check), not "no GPU"; nothing stored', () => {
    facts = { state: 'error', nvidiaSmi: '/usr/bin/nvidia-smi', error: { code: 'NVIDIA_SMI_FAILED', message: { zh: '驱动不可用', en: 'driver not loaded' } } };
    const e = refusal(() => open('gpu-broken', 'gpu-practice'));
    expect(e).toMatchObject({ code: 'NVIDIA_SMI_FAILED', fault: 'infrastructure' });
    expect(e.message).toContain('driver not loaded');
    expect(e.message).not.toContain('has 0');
    nothingLeft('gpu-broken');
  });

  it('a paper without GPU tasks never asks the host for its GPUs', () => {
    facts = { state: 'absent' };
    const before = asked;
    expect(open('cpu-only', 'cpu-practice').seats).toHaveLength(ROSTER.length);
    expect(asked).toBe(before);
  });
});
