/**
 * `nvidia-smi` probe: the seat's GPU use as the HOST's nvidia-smi reports it, attributed to the
 * seat by host PID. nvidia-smi never runs inside the seat (the candidate could replace it there);
 * the host's process table gives the seat's PIDs and nvidia-smi's compute-apps list gives which
 * PIDs hold GPU memory where. A GPU process counts for the seat exactly when its PID is one of the
 * seat's host PIDs (child processes included: the seat's process list has every process of every
 * container of the seat).
 *
 * On MIG, `--query-compute-apps` names the PARENT GPU's UUID (see the H200-MIG capture), so the
 * instance a process runs on comes from `nvidia-smi -q`: each process carries its GPU instance and
 * compute instance IDs, each MIG device its index and the same IDs, and `-L` gives the device
 * index → MIG UUID.
 *
 * Not exercised on a real GPU in this project's tests: the execFile call to a live nvidia-smi
 * (its timing, exit codes when the driver is unloaded, `[N/A]` memory inside containers without
 * the driver's PID namespace support) and the host-PID ↔ nvidia-smi-PID correspondence on a live
 * seat. The parsing, attribution and judging run on real captured answers; the live path runs with
 * a runner that replays a capture's exact text.
 */
import { execFile } from 'node:child_process';
import type { z } from 'zod';
import { DeploylabError } from '../../runner/core/errors.js';
import { NvidiaSmiParamsSchema } from './params.js';
import { judge, show, type Assertion } from '../shared/assertions.js';
import {
  COMPUTE_APPS_ARGS,
  GPU_QUERY_ARGS,
  LIST_ARGS,
  NvidiaSmiParseError,
  parseComputeApps,
  parseList,
  parseQueryGpu,
  type ComputeApp,
  type GpuRecord,
  type ListedGpu,
} from '../parsers/nvidia-smi.js';
import { matches } from '../shared/process-match.js';
import { clip, defineProbe, note, type Evidence, type Probe, type SeatProcess } from '../probe.js';

export type NvidiaSmiParams = z.output<typeof NvidiaSmiParamsSchema>;

// ---------------------------------------------------------------------------------------------
// MIG placement of processes, from `nvidia-smi -q`

export interface QueryProcess {
  pid: number;
  /** null on a GPU without MIG (`N/A`). */
  gpuInstanceId: number | null;
  computeInstanceId: number | null;
  usedMemoryMiB: number | null;
}

export interface QueryMigDevice {
  index: number;
  gpuInstanceId: number;
  computeInstanceId: number;
}

export interface QueryGpuBlock {
  uuid: string | null;
  migDevices: QueryMigDevice[];
  processes: QueryProcess[];
}

function intOf(v: string | undefined): number | null {
  if (v === undefined) return null;
  const m = /^(\d+)(?:\s*MiB)?$/.exec(v.trim());
  return m ? Number(m[1]) : null;
}

/**
 * The parts of `nvidia-smi -q` the MIG attribution needs: per GPU its UUID, its MIG devices
 * (index, GPU instance, compute instance) and its processes (instance IDs, PID, memory).
 */
export function parseQueryMig(text: string): QueryGpuBlock[] {
  const blocks: QueryGpuBlock[] = [];
  let cur: QueryGpuBlock | null = null;
  let section: 'none' | 'mig' | 'processes' = 'none';
  let mig: Partial<QueryMigDevice> | null = null;
  let proc: Partial<QueryProcess> | null = null;
  const flushMig = (): void => {
    if (cur && mig && mig.index !== undefined && mig.gpuInstanceId !== undefined && mig.computeInstanceId !== undefined) {
      cur.migDevices.push(mig as QueryMigDevice);
    }
    mig = null;
  };
  const flushProc = (): void => {
    if (cur && proc && proc.pid !== undefined) {
      cur.processes.push({
        pid: proc.pid,
        gpuInstanceId: proc.gpuInstanceId ?? null,
        computeInstanceId: proc.computeInstanceId ?? null,
        usedMemoryMiB: proc.usedMemoryMiB ?? null,
      });
    }
    proc = null;
  };
  for (const raw of text.split(/\r?\n/)) {
    if (/^GPU [0-9A-Fa-f]{4,}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]\s*$/.test(raw)) {
      flushMig();
      flushProc();
      cur = { uuid: null, migDevices: [], processes: [] };
      blocks.push(cur);
      section = 'none';
      continue;
    }
    if (!cur) continue;
    const header = /^ {4}(\S.*?)\s*$/.exec(raw);
    if (header && !raw.includes(':')) {
      // A 4-space header opens a section of the GPU block.
      flushMig();
      flushProc();
      section = header[1] === 'MIG Device' ? 'mig' : header[1] === 'Processes' ? 'processes' : 'none';
      if (section === 'mig') mig = {};
      continue;
    }
    const kv = /^(\s+)([^:]+?)\s*:\s*(.*?)\s*$/.exec(raw);
    if (!kv) continue;
    const depth = kv[1]!.length;
    const key = kv[2]!;
    const value = kv[3]!;
    if (depth === 4) {
      flushMig();
      flushProc();
      section = 'none';
      if (key === 'GPU UUID') cur.uuid = value;
      continue;
    }
    if (section === 'mig' && mig && depth === 8) {
      if (key === 'Index') mig.index = intOf(value) ?? undefined;
      else if (key === 'GPU Instance ID') mig.gpuInstanceId = intOf(value) ?? undefined;
      else if (key === 'Compute Instance ID') mig.computeInstanceId = intOf(value) ?? undefined;
    } else if (section === 'processes') {
      // Each process opens with its GPU instance line; on a GPU without MIG that line says N/A.
      if (key === 'GPU instance ID') {
        flushProc();
        proc = { gpuInstanceId: intOf(value) ?? undefined };
      } else if (proc && key === 'Compute instance ID') proc.computeInstanceId = intOf(value) ?? undefined;
      else if (proc && key === 'Process ID') proc.pid = intOf(value) ?? undefined;
      else if (proc && key === 'Used GPU Memory') proc.usedMemoryMiB = intOf(value) ?? undefined;
    }
  }
  flushMig();
  flushProc();
  return blocks;
}

// ---------------------------------------------------------------------------------------------
// Attribution: the pure part

export interface GpuReadings {
  gpus: GpuRecord[];
  apps: ComputeApp[];
  /** `nvidia-smi -L`; needed for MIG UUIDs. */
  listed: ListedGpu[];
  /** `nvidia-smi -q`, read only when a GPU is in MIG mode. */
  query?: QueryGpuBlock[];
}

export interface AttributedProcess {
  pid: number;
  role: string;
  command: string;
  /** As nvidia-smi names it. */
  processName: string | null;
  /** The physical GPU. */
  gpuUuid: string | null;
  /** Where the memory sits: the GPU's UUID, or the MIG instance's. */
  device: string | null;
  deviceKind: 'gpu' | 'mig' | null;
  usedMemoryMiB: number | null;
}

export interface DeviceUse {
  device: string;
  kind: 'gpu' | 'mig';
  gpuUuid: string;
  /** Sum over the seat's processes on this device whose memory is known. */
  usedMiB: number;
  /** Some of the seat's processes here have no memory figure (`[N/A]`). */
  unknownMemory: boolean;
  /** Of the physical GPU; nvidia-smi gives none per MIG instance (null there). */
  utilizationGpuPct: number | null;
  memoryTotalMiB: number | null;
  pids: number[];
}

export interface SeatGpuUse {
  processes: AttributedProcess[];
  devices: DeviceUse[];
  totalUsedMiB: number;
  /** GPU processes of the host that are not the seat's: counted, never shown. */
  otherProcesses: number;
}

/** Which device a compute app's memory sits on: the MIG instance where the GPU is in MIG mode. */
function placeApp(app: ComputeApp, r: GpuReadings): { device: string | null; kind: 'gpu' | 'mig' | null } {
  const gpu = r.gpus.find((g) => g.uuid !== null && g.uuid === app.gpuUuid);
  if (!app.gpuUuid) return { device: null, kind: null };
  if (gpu?.migModeCurrent !== 'Enabled') return { device: app.gpuUuid, kind: 'gpu' };
  const block = r.query?.find((b) => b.uuid === app.gpuUuid);
  const qp = block?.processes.find((p) => p.pid === app.pid);
  const md = block?.migDevices.find((d) => d.gpuInstanceId === qp?.gpuInstanceId && d.computeInstanceId === qp?.computeInstanceId);
  const listed = r.listed.find((l) => l.uuid === app.gpuUuid)?.migDevices.find((m) => m.index === md?.index);
  // In MIG mode but unplaceable (no -q answer, process gone between the two calls): the GPU.
  return listed ? { device: listed.uuid, kind: 'mig' } : { device: app.gpuUuid, kind: 'gpu' };
}

/** The seat's GPU use: the compute apps whose PID is one of `seatProcesses`' host PIDs. */
export function attributeGpuUse(r: GpuReadings, seatProcesses: readonly SeatProcess[]): SeatGpuUse {
  const byPid = new Map(seatProcesses.map((p) => [p.hostPid, p]));
  const processes: AttributedProcess[] = [];
  let otherProcesses = 0;
  for (const app of r.apps) {
    const sp = byPid.get(app.pid);
    if (!sp) {
      otherProcesses++;
      continue;
    }
    const { device, kind } = placeApp(app, r);
    processes.push({
      pid: app.pid,
      role: sp.role,
      command: sp.command,
      processName: app.processName,
      gpuUuid: app.gpuUuid,
      device,
      deviceKind: kind,
      usedMemoryMiB: app.usedMemoryMiB,
    });
  }
  return { processes, otherProcesses, ...summarise(processes, r.gpus) };
}

function summarise(processes: readonly AttributedProcess[], gpus: readonly GpuRecord[]): { devices: DeviceUse[]; totalUsedMiB: number } {
  const devices = new Map<string, DeviceUse>();
  for (const p of processes) {
    if (!p.device || !p.deviceKind || !p.gpuUuid) continue;
    const gpu = gpus.find((g) => g.uuid === p.gpuUuid);
    let d = devices.get(p.device);
    if (!d) {
      d = {
        device: p.device,
        kind: p.deviceKind,
        gpuUuid: p.gpuUuid,
        usedMiB: 0,
        unknownMemory: false,
        utilizationGpuPct: gpu?.utilizationGpuPct ?? null,
        memoryTotalMiB: p.deviceKind === 'gpu' ? (gpu?.memoryTotalMiB ?? null) : null,
        pids: [],
      };
      devices.set(p.device, d);
    }
    d.pids.push(p.pid);
    if (p.usedMemoryMiB === null) d.unknownMemory = true;
    else d.usedMiB += p.usedMemoryMiB;
  }
  const list = [...devices.values()];
  return { devices: list, totalUsedMiB: list.reduce((s, d) => s + d.usedMiB, 0) };
}

// ---------------------------------------------------------------------------------------------
// Judging: pure

type Expect = NvidiaSmiParams['expect'];

/** The processes the check counts: the seat's, narrowed by container, command and device. */
export function countedUse(use: SeatGpuUse, e: Expect, gpus: readonly GpuRecord[]): SeatGpuUse {
  const processes = use.processes.filter(
    (p) =>
      (e.container === undefined || p.role === e.container) &&
      (e.match === undefined || matches({ hostPid: p.pid, ppid: 0, user: '', command: p.command, role: p.role }, e.match)) &&
      (e.on === 'any' || p.deviceKind === e.on) &&
      (e.device === undefined || p.device === e.device),
  );
  return { processes, otherProcesses: use.otherProcesses, ...summarise(processes, gpus) };
}

export function judgeGpuUse(use: SeatGpuUse, r: GpuReadings, e: Expect, extra: Evidence[] = []): ReturnType<typeof judge> {
  const counted = countedUse(use, e, r.gpus);
  const evidence: Evidence[] = [
    ...extra,
    note('考位的 GPU 进程（按主机 PID 归属）', "the seat's GPU processes (attributed by host PID)", {
      gpus: r.gpus.map((g) => ({ uuid: g.uuid, name: g.name, mig: g.migModeCurrent, utilizationGpuPct: g.utilizationGpuPct, memoryUsedMiB: g.memoryUsedMiB, memoryTotalMiB: g.memoryTotalMiB })),
      seatProcesses: use.processes.slice(0, 20).map((p) => ({ ...p, command: show(p.command, 300) })),
      counted: counted.processes.map((p) => p.pid),
      devices: counted.devices,
      totalUsedMiB: counted.totalUsedMiB,
      otherProcesses: use.otherProcesses,
    }),
  ];
  const where = [e.container && `container ${e.container}`, e.match && `matching ${JSON.stringify(e.match)}`, e.on !== 'any' && `on a ${e.on}`, e.device && `on ${e.device}`]
    .filter(Boolean)
    .join(', ');
  const a: Assertion[] = [
    {
      id: 'gpu-process',
      ok: counted.processes.length > 0,
      expected: `≥ 1 GPU process of the seat${where ? ` (${where})` : ''}`,
      actual: `${counted.processes.length} (the seat has ${use.processes.length} GPU process(es) in all)`,
    },
  ];
  const unknown = counted.devices.some((d) => d.unknownMemory);
  if (unknown && (counted.totalUsedMiB < e.minUsedMiB || e.maxUsedMiB !== undefined)) {
    // The driver gave no figure for the seat's process: the harness cannot weigh it.
    throw new DeploylabError({
      code: 'PROBE_GPU_MEMORY_UNKNOWN',
      fault: 'infrastructure',
      message: { zh: 'nvidia-smi 未给出考位进程的显存用量', en: "nvidia-smi gave no memory figure for the seat's GPU process" },
      details: { pids: counted.processes.map((p) => p.pid) },
    });
  }
  if (e.minUsedMiB > 0) {
    a.push({ id: 'minUsedMiB', ok: counted.totalUsedMiB >= e.minUsedMiB, expected: `≥ ${e.minUsedMiB} MiB`, actual: `${counted.totalUsedMiB} MiB` });
  }
  if (e.maxUsedMiB !== undefined) {
    a.push({ id: 'maxUsedMiB', ok: counted.totalUsedMiB <= e.maxUsedMiB, expected: `≤ ${e.maxUsedMiB} MiB`, actual: `${counted.totalUsedMiB} MiB` });
  }
  return judge(a, 'all', { zh: 'GPU 使用检查', en: 'GPU use check' }, evidence);
}

// ---------------------------------------------------------------------------------------------
// Live path: the host's nvidia-smi through an injectable runner

export interface SmiRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Runs the host's nvidia-smi with `args`; throws an error with code ENOENT when there is none. */
export type NvidiaSmiRunner = (args: readonly string[], signal: AbortSignal) => Promise<SmiRun>;

export const hostNvidiaSmi: NvidiaSmiRunner = (args, signal) =>
  new Promise((resolve, reject) => {
    const started = performance.now();
    execFile('nvidia-smi', [...args], { signal, timeout: 20_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const durationMs = performance.now() - started;
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(err);
      if (err && err.name === 'AbortError') return reject(err);
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ exitCode: code, stdout, stderr, durationMs });
    });
  });

function noGpu(why: string, details: Record<string, unknown> = {}): DeploylabError {
  return new DeploylabError({
    code: 'PROBE_NO_GPU',
    fault: 'infrastructure',
    message: { zh: `主机上无法读取 GPU：${why}`, en: `cannot read the host's GPUs: ${why}` },
    hint: { zh: '该检查需要装有 NVIDIA 驱动和 nvidia-smi 的主机', en: 'this check needs a host with the NVIDIA driver and nvidia-smi' },
    details,
  });
}

async function smi(run: NvidiaSmiRunner, args: readonly string[], signal: AbortSignal, evidence: Evidence[]): Promise<string> {
  let r: SmiRun;
  try {
    r = await run(args, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw noGpu('nvidia-smi not found', { args });
    throw e;
  }
  evidence.push({
    kind: 'command',
    argv: ['nvidia-smi', ...args].map((a) => show(a, 300)),
    where: 'host',
    exitCode: r.exitCode,
    stdout: clip(r.stdout, 4096),
    stderr: clip(r.stderr, 2048),
    durationMs: Math.round(r.durationMs),
  });
  // Non-zero: no driver loaded, no device, a driver/library mismatch: all the host's.
  if (r.exitCode !== 0) throw noGpu(`nvidia-smi exited with ${r.exitCode}: ${show(r.stderr.trim() || r.stdout.trim(), 200)}`, { args });
  return r.stdout;
}

/** Read the host's GPUs, their compute apps, their MIG devices (and `-q` only in MIG mode). */
export async function readHostGpus(run: NvidiaSmiRunner, signal: AbortSignal, evidence: Evidence[]): Promise<GpuReadings> {
  try {
    const gpus = parseQueryGpu(await smi(run, GPU_QUERY_ARGS, signal, evidence));
    const listed = parseList(await smi(run, LIST_ARGS, signal, evidence));
    const apps = parseComputeApps(await smi(run, COMPUTE_APPS_ARGS, signal, evidence));
    if (!gpus.some((g) => g.migModeCurrent === 'Enabled')) return { gpus, apps, listed };
    const query = parseQueryMig(await smi(run, ['-q'], signal, evidence));
    return { gpus, apps, listed, query };
  } catch (e) {
    if (e instanceof NvidiaSmiParseError) {
      throw new DeploylabError({
        code: 'PROBE_NVIDIA_SMI_UNREADABLE',
        fault: 'infrastructure',
        message: { zh: `无法解析主机 nvidia-smi 的输出：${e.message}`, en: `cannot parse the host's nvidia-smi answer: ${e.message}` },
      });
    }
    throw e;
  }
}

export function nvidiaSmiProbeWith(run: NvidiaSmiRunner): Probe<typeof NvidiaSmiParamsSchema> {
  return defineProbe({
    kind: 'nvidia-smi',
    params: NvidiaSmiParamsSchema,
    async run(seat, p, deadline) {
      const evidence: Evidence[] = [];
      // The seat's PIDs first: a process that starts between the two reads is then simply unseen,
      // never another seat's PID reused under this seat's name.
      const seatProcesses = await seat.listProcesses();
      const readings = await readHostGpus(run, deadline.signal, evidence);
      deadline.check();
      if (p.expect.minGpus !== undefined && readings.gpus.length < p.expect.minGpus) {
        throw noGpu(`${readings.gpus.length} GPU(s) seen, the check needs ${p.expect.minGpus}`);
      }
      return judgeGpuUse(attributeGpuUse(readings, seatProcesses), readings, p.expect, evidence);
    },
  });
}

export const nvidiaSmiProbe = nvidiaSmiProbeWith(hostNvidiaSmi);
