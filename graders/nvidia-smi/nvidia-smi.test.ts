/**
 * The nvidia-smi probe on real captured nvidia-smi answers (graders/parsers/__fixtures__/nvidia-smi): an H200
 * under load (gpu_burn plus two memory hogs) and idle, and an H200 in MIG mode under load.
 *
 * Not exercised here (no GPU on the test host): a live nvidia-smi, and a real seat whose host PIDs
 * are the ones nvidia-smi reports. The seat below is therefore a stand-in that lists the capture's
 * PIDs as its processes; everything else — the parsers, the MIG placement, the attribution, the
 * judging and the probe's live path (fed the capture's exact text by a replaying runner) — is the
 * code that runs on a GPU host.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { NvidiaSmiParamsSchema } from './params.js';
import {
  attributeGpuUse,
  hostNvidiaSmi,
  judgeGpuUse,
  nvidiaSmiProbeWith,
  parseQueryMig,
  readHostGpus,
  type GpuReadings,
  type NvidiaSmiRunner,
} from './nvidia-smi.js';
import { section } from '../parsers/nvidia-smi-capture.js';
import { parseComputeApps, parseList, parseQueryGpu } from '../parsers/nvidia-smi.js';
import { Deadline, runProbe, type SeatHandle, type SeatProcess } from '../probe.js';

const H200 = 'linux-x86_64__nvidia-h200__590.48.01.txt';
const H200_MIG = 'linux-x86_64__nvidia-h200-mig__590.48.01.txt';
const GPU0 = 'GPU-00000000-0000-0000-0000-000000000000';
const MIG0 = 'MIG-00000000-0000-0000-0000-000000000000';
const MIG1 = 'MIG-00000001-0000-0000-0000-000000000001';

/** The capture's answer to `nvidia-smi <args>`, exactly as recorded (the section body). */
function replay(file: string, phase: string, calls: string[][] = []): NvidiaSmiRunner {
  return (args) => {
    calls.push([...args]);
    const a = args[0] ?? '';
    const body = a.startsWith('--query-gpu=')
      ? section(file, 'nvidia-smi --query-gpu=', phase)
      : a.startsWith('--query-compute-apps=')
        ? section(file, 'nvidia-smi --query-compute-apps=', phase)
        : a === '-L'
          ? section(file, 'nvidia-smi -L')
          : a === '-q'
            ? section(file, 'nvidia-smi -q', phase)
            : null;
    if (body === null) throw new Error(`no capture for nvidia-smi ${args.join(' ')}`);
    return Promise.resolve({ exitCode: 0, stdout: body, stderr: '', durationMs: 1 });
  };
}

function readings(file: string, phase: string): GpuReadings {
  return {
    gpus: parseQueryGpu(section(file, 'nvidia-smi --query-gpu=', phase)),
    apps: parseComputeApps(section(file, 'nvidia-smi --query-compute-apps=', phase)),
    listed: parseList(section(file, 'nvidia-smi -L')),
    query: parseQueryMig(section(file, 'nvidia-smi -q', phase)),
  };
}

const proc = (hostPid: number, command: string, role = 'workspace', ppid = 1): SeatProcess => ({ hostPid, ppid, user: 'candidate', command, role });

/** The H200 load capture's gpu_burn (10309) as the seat's child of a shell, plus unrelated seat processes. */
const SEAT_BURN = [proc(4000, 'bash'), proc(10309, './gpu_burn 60', 'workspace', 4000), proc(4100, 'sleep 100')];
/** Both memory hogs (10291, 10293) in a sidecar container of the seat. */
const SEAT_HOGS = [proc(10291, '/root/tools/memhog 2500', 'model'), proc(10293, '/root/tools/memhog 1500', 'model')];
/** A seat whose PIDs own no GPU process (its work was not done). */
const SEAT_NONE = [proc(4000, 'bash'), proc(4001, 'python3 serve.py')];

const expectOf = (e: unknown): ReturnType<typeof NvidiaSmiParamsSchema.parse>['expect'] =>
  NvidiaSmiParamsSchema.parse({ kind: 'nvidia-smi', expect: e }).expect;

describe('nvidia-smi -q: MIG placement of processes', () => {
  it('reads MIG devices and per-process instance IDs from the H200-MIG capture', () => {
    const [b] = parseQueryMig(section(H200_MIG, 'nvidia-smi -q', 'load'));
    expect(b!.uuid).toBe(GPU0);
    expect(b!.migDevices).toEqual([
      { index: 0, gpuInstanceId: 2, computeInstanceId: 0 },
      { index: 1, gpuInstanceId: 2, computeInstanceId: 1 },
      { index: 2, gpuInstanceId: 3, computeInstanceId: 0 },
      { index: 3, gpuInstanceId: 9, computeInstanceId: 0 },
      { index: 4, gpuInstanceId: 10, computeInstanceId: 0 },
    ]);
    expect(b!.processes).toEqual([
      { pid: 12249, gpuInstanceId: 2, computeInstanceId: 1, usedMemoryMiB: 2194 },
      { pid: 12250, gpuInstanceId: 2, computeInstanceId: 1, usedMemoryMiB: 1170 },
      { pid: 12267, gpuInstanceId: 2, computeInstanceId: 1, usedMemoryMiB: 13526 },
    ]);
  });

  it('a GPU without MIG: processes without instance IDs, no MIG devices', () => {
    const [b] = parseQueryMig(section(H200, 'nvidia-smi -q', 'load'));
    expect(b!.migDevices).toEqual([]);
    expect(b!.processes.map((p) => [p.pid, p.gpuInstanceId, p.usedMemoryMiB])).toEqual([
      [10291, null, 2566],
      [10293, null, 1542],
      [10309, null, 28234],
    ]);
  });
});

describe('attribution of GPU use to a seat by host PID', () => {
  it('counts only the seat’s PIDs (child processes included), per device, with the GPU’s utilisation', () => {
    const use = attributeGpuUse(readings(H200, 'load'), SEAT_BURN);
    expect(use.processes.map((p) => [p.pid, p.usedMemoryMiB, p.device, p.deviceKind])).toEqual([[10309, 28234, GPU0, 'gpu']]);
    expect(use.otherProcesses).toBe(2);
    expect(use.totalUsedMiB).toBe(28234);
    expect(use.devices).toEqual([
      { device: GPU0, kind: 'gpu', gpuUuid: GPU0, usedMiB: 28234, unknownMemory: false, utilizationGpuPct: 100, memoryTotalMiB: 143771, pids: [10309] },
    ]);
    const hogs = attributeGpuUse(readings(H200, 'load'), SEAT_HOGS);
    expect(hogs.totalUsedMiB).toBe(2566 + 1542);
    expect(hogs.processes.map((p) => p.role)).toEqual(['model', 'model']);
  });

  it('on MIG, places the processes on their MIG instance, not the parent GPU compute-apps names', () => {
    const r = readings(H200_MIG, 'load');
    expect(r.apps.every((a) => a.gpuUuid === GPU0)).toBe(true);
    const use = attributeGpuUse(r, [proc(12267, './gpu_burn 60'), proc(12249, '/root/tools/memhog 2000')]);
    expect(use.devices).toEqual([
      { device: MIG1, kind: 'mig', gpuUuid: GPU0, usedMiB: 13526 + 2194, unknownMemory: false, utilizationGpuPct: null, memoryTotalMiB: null, pids: [12249, 12267] },
    ]);
  });

  it('idle: the header-only compute-apps answer attributes nothing', () => {
    const use = attributeGpuUse(readings(H200, 'idle'), SEAT_BURN);
    expect(use.processes).toEqual([]);
    expect(use.otherProcesses).toBe(0);
  });
});

describe('judging the seat’s GPU use', () => {
  const load = readings(H200, 'load');
  const judged = (seat: SeatProcess[], e: unknown, r = load) => judgeGpuUse(attributeGpuUse(r, seat), r, expectOf(e));

  it('passes where the seat owns a process using ≥ N MiB', () => {
    expect(judged(SEAT_BURN, { minUsedMiB: 20_000 }).status).toBe('pass');
    expect(judged(SEAT_BURN, { minUsedMiB: 20_000, maxUsedMiB: 30_000, match: { exe: 'gpu_burn' }, on: 'gpu', device: GPU0 }).status).toBe('pass');
    expect(judged(SEAT_HOGS, { minUsedMiB: 4108, container: 'model' }).status).toBe('pass');
  });

  it('fails (score 0) where the seat’s PIDs own no GPU process, though the GPU is busy with others', () => {
    const o = judged(SEAT_NONE, {});
    expect(o.status).toBe('fail');
    expect(o.score).toBe(0);
    // Other seats' processes are counted, never listed.
    expect(JSON.stringify(o.evidence)).not.toContain('10309');
  });

  it('fails below the minimum, over the memory cap, and with the wrong command, container or device', () => {
    expect(judged(SEAT_HOGS, { minUsedMiB: 4109 }).status).toBe('fail');
    const capped = judged(SEAT_BURN, { maxUsedMiB: 16_000 });
    expect(capped.status).toBe('fail');
    expect(capped.summary.en).toContain('maxUsedMiB');
    expect(judged(SEAT_BURN, { match: { exe: 'llama-server' } }).status).toBe('fail');
    expect(judged(SEAT_HOGS, { container: 'workspace' }).status).toBe('fail');
    expect(judged(SEAT_BURN, { on: 'mig' }).status).toBe('fail');
  });

  it('the header-only compute-apps answer (no process) fails', () => {
    expect(judged(SEAT_BURN, {}, readings(H200, 'idle')).status).toBe('fail');
  });

  it('on MIG: judged on the given instance', () => {
    const mig = readings(H200_MIG, 'load');
    const seat = [proc(12267, './gpu_burn 60')];
    expect(judged(seat, { on: 'mig', device: MIG1, minUsedMiB: 13_000 }, mig).status).toBe('pass');
    expect(judged(seat, { device: MIG0 }, mig).status).toBe('fail');
    expect(judged(seat, { on: 'gpu' }, mig).status).toBe('fail');
  });

  it('a memory figure the driver did not give is the harness’s problem, not a fail', () => {
    const r = readings(H200, 'load');
    const blind = { ...r, apps: r.apps.map((a) => ({ ...a, usedMemoryMiB: null })) };
    expect(() => judged(SEAT_BURN, { minUsedMiB: 1 }, blind)).toThrow(expect.objectContaining({ code: 'PROBE_GPU_MEMORY_UNKNOWN' }));
  });

  it('the schema refuses a cap below the minimum', () => {
    expect(NvidiaSmiParamsSchema.safeParse({ kind: 'nvidia-smi', expect: { minUsedMiB: 10, maxUsedMiB: 5 } }).success).toBe(false);
  });
});

describe('the probe’s live path', () => {
  const seatOf = (processes: SeatProcess[]): SeatHandle => ({
    id: 'seat-gpu',
    labels: {},
    listProcesses: () => Promise.resolve(processes),
    endpoint: () => Promise.reject(new Error('not used by the nvidia-smi probe')),
    readFile: () => Promise.reject(new Error('not used by the nvidia-smi probe')),
    checkPath: () => Promise.resolve(),
  });
  const grade = async (run: NvidiaSmiRunner, seat: SeatProcess[], e: unknown) => {
    const d = Deadline.after(10_000);
    try {
      return await runProbe(nvidiaSmiProbeWith(run), seatOf(seat), { kind: 'nvidia-smi', expect: e }, d);
    } finally {
      d.dispose();
    }
  };

  it('replaying the H200 capture: pass, fail over the cap, fail with no process; `-q` only asked in MIG mode', async () => {
    const calls: string[][] = [];
    const ok = await grade(replay(H200, 'load', calls), SEAT_BURN, { minGpus: 1, minUsedMiB: 20_000 });
    expect(ok.status).toBe('pass');
    expect(ok.evidence.filter((e) => e.kind === 'command').map((e) => e.kind === 'command' && e.where)).toEqual(['host', 'host', 'host']);
    expect(calls.map((c) => c[0])).not.toContain('-q');
    expect((await grade(replay(H200, 'load'), SEAT_BURN, { maxUsedMiB: 16_000 })).status).toBe('fail');
    expect((await grade(replay(H200, 'idle'), SEAT_BURN, {})).status).toBe('fail');
  });

  it('replaying the H200-MIG capture: reads `-q` and judges the MIG instance', async () => {
    const calls: string[][] = [];
    const o = await grade(replay(H200_MIG, 'load', calls), [proc(12267, './gpu_burn 60')], { on: 'mig', device: MIG1, minUsedMiB: 13_000 });
    expect(o.status).toBe('pass');
    expect(calls.map((c) => c[0])).toContain('-q');
  });

  it('no nvidia-smi on the host → error PROBE_NO_GPU (infrastructure), never pass or fail', async () => {
    const enoent: NvidiaSmiRunner = () => Promise.reject(Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' }));
    const o = await grade(enoent, SEAT_BURN, {});
    expect(o.status).toBe('error');
    expect(o.error).toMatchObject({ code: 'PROBE_NO_GPU', fault: 'infrastructure' });
    const broken: NvidiaSmiRunner = () =>
      Promise.resolve({ exitCode: 9, stdout: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", stderr: '', durationMs: 1 });
    expect((await grade(broken, SEAT_BURN, {})).error?.code).toBe('PROBE_NO_GPU');
    expect((await grade(replay(H200, 'load'), SEAT_BURN, { minGpus: 2 })).error?.code).toBe('PROBE_NO_GPU');
  });

  const hasSmi = (() => {
    try {
      execFileSync('nvidia-smi', ['-L'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(hasSmi)('the real host runner on a host without nvidia-smi → PROBE_NO_GPU', async () => {
    await expect(readHostGpus(hostNvidiaSmi, AbortSignal.timeout(10_000), [])).rejects.toMatchObject({ code: 'PROBE_NO_GPU' });
    expect((await grade(hostNvidiaSmi, SEAT_BURN, {})).status).toBe('error');
  });

  it.runIf(hasSmi)('on a GPU host: the real nvidia-smi parses, and a seat of no GPU process fails', async () => {
    const r = await readHostGpus(hostNvidiaSmi, AbortSignal.timeout(30_000), []);
    expect(r.gpus.length).toBeGreaterThan(0);
    expect((await grade(hostNvidiaSmi, SEAT_NONE, {})).status).toBe('fail');
  });
});
