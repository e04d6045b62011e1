/**
 * `resource-samples` probe: the candidate runs a sampler of their own that appends one JSON line
 * per interval ({"ts", "pid", "cpu_percent", "rss_mib"}) about the seat's model server. The probe
 * reads the file through the archive API, then, live, leaves the server idle for a while and loads
 * it from the harness, reading the truth for the same process from the host's /proc (CPU ticks,
 * VmRSS; nothing runs in the seat). The samples must be new (written during the window, so a file
 * prepared in advance fails: only lines appended while the probe watches count), name the server's
 * PID as the seat sees it, agree with the host's RSS, and follow the CPU sample by sample: each
 * figure is compared with the host's own reading of the same process over the same interval, so
 * invented figures (constants, 0 and 99 alternating, a lifetime average) fail even where they would
 * show "busy under load" and "near idle before it" somewhere.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { DeploylabError } from '../../runner/core/errors.js';
import { ResourceSamplesParamsSchema } from './params.js';
import { judge, show, type Assertion } from '../shared/assertions.js';
import { httpRequest } from '../shared/http-request.js';
import { matches } from '../shared/process-match.js';
import { defineProbe, failed, note, type Deadline, type Evidence, type SeatHandle, type SeatProcess } from '../probe.js';

export type ResourceSamplesParams = z.output<typeof ResourceSamplesParamsSchema>;
type Expect = ResourceSamplesParams['expect'];

export interface Sample {
  ts: number;
  pid: number;
  cpu_percent: number;
  rss_mib: number;
}

/** Clock ticks per second of /proc/<pid>/stat on Linux (USER_HZ, 100 on every mainstream build). */
const USER_HZ = 100;
const MAX_BYTES = 32 * 1024 * 1024;
const HOST_POLL_MS = 250;

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * JSONL samples. A last line without its newline may be a write in progress and is left out; any
 * other line that is not a sample object is reported as bad.
 */
export function parseSamples(text: string): { samples: Sample[]; bad: { line: number; text: string }[] } {
  const lines = text.split('\n');
  if (!text.endsWith('\n')) lines.pop();
  const samples: Sample[] = [];
  const bad: { line: number; text: string }[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      bad.push({ line: i + 1, text: line.slice(0, 200) });
      return;
    }
    const o = v as Record<string, unknown>;
    if (
      v !== null && typeof v === 'object' && !Array.isArray(v) &&
      isNum(o['ts']) && isNum(o['pid']) && Number.isInteger(o['pid']) && o['pid'] > 0 &&
      isNum(o['cpu_percent']) && o['cpu_percent'] >= 0 && isNum(o['rss_mib']) && o['rss_mib'] >= 0
    ) {
      samples.push({ ts: o['ts'], pid: o['pid'], cpu_percent: o['cpu_percent'], rss_mib: o['rss_mib'] });
    } else {
      bad.push({ line: i + 1, text: line.slice(0, 200) });
    }
  });
  return { samples, bad };
}

/**
 * The lines of `after` that were not in the file at `before` (the part appended since, when the file
 * only grew; otherwise the lines not seen before). A last line of `before` still being written is
 * not "seen" yet.
 */
export function appendedText(before: string, after: string): string {
  const seen = before.slice(0, before.lastIndexOf('\n') + 1);
  if (after.startsWith(seen)) return after.slice(seen.length);
  const old = new Set(seen.split('\n').filter((l) => l.trim() !== ''));
  return after
    .split('\n')
    .filter((l, k, all) => !old.has(l) || k === all.length - 1)
    .join('\n');
}

/** What the host saw of the process over the window: CPU % of one core per phase, RSS in MiB. */
export interface HostTruth {
  idleCpu: number;
  loadCpu: number;
  /** VmRSS polled through the window (unix seconds, MiB): a fresh server's RSS climbs under its first load. */
  rss: { t: number; mib: number }[];
  /** CPU ticks (utime + stime, USER_HZ) polled through the window, from one interval before it starts. */
  ticks: { t: number; ticks: number }[];
}

/** Ticks at time t, linearly between the two polls around it; null outside the polled span. */
export function ticksAt(series: readonly { t: number; ticks: number }[], t: number): number | null {
  const first = series[0];
  const last = series[series.length - 1];
  if (!first || !last || t < first.t - 0.05 || t > last.t + 0.05) return null;
  if (t <= first.t) return first.ticks;
  if (t >= last.t) return last.ticks;
  let k = 1;
  while (series[k]!.t < t) k++;
  const a = series[k - 1]!;
  const b = series[k]!;
  return b.t === a.t ? b.ticks : a.ticks + ((b.ticks - a.ticks) * (t - a.t)) / (b.t - a.t);
}

/** CPU % of one core the host measured from a to b (unix seconds); null outside the polled span. */
export function hostCpuBetween(series: readonly { t: number; ticks: number }[], a: number, b: number): number | null {
  const x = ticksAt(series, a);
  const y = ticksAt(series, b);
  if (x === null || y === null || b <= a) return null;
  return ((y - x) / USER_HZ / (b - a)) * 100;
}

/** Where the interval a sample measures may end, relative to its ts (step 0.25 s). */
const CPU_END_EARLIEST = -1;
const CPU_END_LATEST_AFTER_INTERVAL = 0.25;

/**
 * The range of CPU figures the host measured over one sampling interval ending anywhere from 1 s
 * before the sample's ts to one interval plus 0.25 s after it: a sampler may stamp the time before
 * measuring (psutil's cpu_percent(interval=1)) or after (a /proc delta, a top refresh), and top's
 * output may reach the file a little late. Null when the host did not poll that span.
 */
export function hostCpuRange(series: readonly { t: number; ticks: number }[], ts: number, interval: number): { lo: number; hi: number } | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (let off = CPU_END_EARLIEST; off <= interval + CPU_END_LATEST_AFTER_INTERVAL + 1e-9; off += 0.25) {
    const v = hostCpuBetween(series, ts + off - interval, ts + off);
    if (v === null) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return lo <= hi ? { lo, hi } : null;
}

/** Whether a sample's cpu_percent agrees with the host's range for it, within the tolerance. */
export function cpuAgrees(v: number, r: { lo: number; hi: number }, e: Pick<Expect, 'cpuTolerancePoints' | 'cpuToleranceShare'>): boolean {
  const tol = (x: number): number => Math.max(e.cpuTolerancePoints, e.cpuToleranceShare * x);
  return v >= r.lo - tol(r.lo) && v <= r.hi + tol(r.hi);
}

/** Share of the window's samples whose rss_mib must match the host's reading of the same moment. */
export const RSS_MATCH_SHARE = 0.8;

/** The grading window, in unix seconds: idle from t0 to tLoad, load from tLoad to tEnd. */
export interface Window {
  t0: number;
  tLoad: number;
  tEnd: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;

/** The judgement itself, pure: samples against the window and the host's truth. */
export function judgeSamples(
  all: readonly Sample[],
  w: Window,
  host: HostTruth,
  seatPid: number,
  e: Expect,
): { assertions: Assertion[]; inWindow: Sample[]; cpu: { ts: number; cpu_percent: number; host: { lo: number; hi: number } | null; ok: boolean }[] } {
  const i = e.intervalSeconds;
  // Samples written during the window; a sample may carry a timestamp up to one interval late.
  const inWindow = all.filter((s) => s.ts >= w.t0 && s.ts <= w.tEnd + i + 1);
  const needed = Math.max(2, Math.ceil((e.minCoverage * (w.tEnd - w.t0)) / i));
  // An idle sample measures an interval wholly before the load; a load sample one inside it.
  const idle = inWindow.filter((s) => s.ts >= w.t0 + i && s.ts <= w.tLoad);
  const load = inWindow.filter((s) => s.ts >= w.tLoad + i && s.ts <= w.tEnd + i / 2);
  const a: Assertion[] = [];
  a.push({ id: 'fresh', ok: inWindow.length >= needed, expected: `≥ ${needed} samples appended during the ${r1(w.tEnd - w.t0)} s grading window and timestamped within it`, actual: `${inWindow.length}` });
  const pids = [...new Set(inWindow.map((s) => s.pid))];
  a.push({ id: 'pid', ok: inWindow.length > 0 && pids.length === 1 && pids[0] === seatPid, expected: `pid ${seatPid}`, actual: pids.length ? show(pids) : '(no samples)' });
  // Each sample against the host's readings of the same moment (its interval, and up to 0.5 s after
  // its timestamp, since the sampler may read memory a little after it takes the time).
  const rssOk = inWindow.filter((s) =>
    host.rss.some((h) => h.t >= s.ts - i - 0.5 && h.t <= s.ts + 0.5 && Math.abs(s.rss_mib - h.mib) <= e.rssTolerance * h.mib),
  ).length;
  const hostMib = host.rss.map((h) => h.mib);
  a.push({
    id: 'rss',
    ok: inWindow.length > 0 && rssOk >= RSS_MATCH_SHARE * inWindow.length,
    expected: `≥ ${RSS_MATCH_SHARE * 100}% of samples within ±${e.rssTolerance * 100}% of the host's VmRSS at that time (host ${hostMib.length ? `${r1(Math.min(...hostMib))}–${r1(Math.max(...hostMib))}` : '?'} MiB)`,
    actual: inWindow.length ? `${rssOk} of ${inWindow.length}; median sample ${r1(median(inWindow.map((s) => s.rss_mib)))} MiB` : '(no samples)',
  });
  const loadMax = load.length ? Math.max(...load.map((s) => s.cpu_percent)) : null;
  const minLoad = e.minCpuShare * host.loadCpu;
  a.push({ id: 'cpu-load', ok: loadMax !== null && loadMax >= minLoad, expected: `max under load ≥ ${r1(minLoad)}% (host ${r1(host.loadCpu)}%)`, actual: loadMax === null ? '(no samples under load)' : `${r1(loadMax)}%` });
  const idleMin = idle.length ? Math.min(...idle.map((s) => s.cpu_percent)) : null;
  const maxIdle = e.maxIdleShare * host.loadCpu;
  a.push({ id: 'cpu-idle', ok: idleMin !== null && idleMin <= maxIdle, expected: `min while idle ≤ ${r1(maxIdle)}% (host idle ${r1(host.idleCpu)}%)`, actual: idleMin === null ? '(no samples while idle)' : `${r1(idleMin)}%` });
  // Sample by sample against the host's own reading of the same interval.
  const cpu = inWindow.map((s) => {
    const r = hostCpuRange(host.ticks, s.ts, i);
    return { ts: s.ts, cpu_percent: s.cpu_percent, host: r ? { lo: r1(r.lo), hi: r1(r.hi) } : null, ok: r !== null && cpuAgrees(s.cpu_percent, r, e) };
  });
  const judged = cpu.filter((c) => c.host !== null);
  const agree = judged.filter((c) => c.ok).length;
  a.push({
    id: 'cpu',
    ok: judged.length > 0 && agree >= e.cpuMatchShare * judged.length,
    expected: `≥ ${r1(e.cpuMatchShare * 100)}% of samples within ±max(${e.cpuTolerancePoints} points, ${r1(e.cpuToleranceShare * 100)}%) of the host's CPU over the same interval`,
    actual: judged.length ? `${agree} of ${judged.length}` : '(no samples the host readings cover)',
  });
  return { assertions: a, inWindow, cpu };
}

interface HostReading {
  ticks: number;
  rssKiB: number;
  at: number;
}

function hostProcError(pid: number, cause?: unknown): DeploylabError {
  return new DeploylabError({
    code: 'PROBE_HOST_PROC_UNAVAILABLE',
    fault: 'infrastructure',
    message: { zh: `评分程序读不到主机上进程 ${pid} 的 /proc`, en: `the harness cannot read /proc of host process ${pid}` },
    hint: { zh: '在容器引擎所在主机上运行评分程序', en: 'run the grader on the engine host' },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** CPU ticks (utime + stime) and VmRSS of a host PID, read from the host's /proc. */
export async function readHost(pid: number): Promise<HostReading> {
  try {
    const [stat, status] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
    // Fields after the command name, which may itself hold spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14, 15)
    const rssKiB = Number(/^VmRSS:\s+(\d+)\s*kB/m.exec(status)?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(rssKiB)) throw new Error('unexpected /proc format');
    return { ticks, rssKiB, at: Date.now() };
  } catch (e) {
    throw hostProcError(pid, e);
  }
}

/** The PID a host process has in its innermost PID namespace (the seat's view), from NSpid. */
export async function seatPidOf(hostPid: number): Promise<number> {
  let status: string;
  try {
    status = await readFile(`/proc/${hostPid}/status`, 'utf8');
  } catch (e) {
    throw hostProcError(hostPid, e);
  }
  const ns = (/^NSpid:\s+(.*)$/m.exec(status)?.[1] ?? '').trim().split(/\s+/).map(Number);
  const last = ns[ns.length - 1];
  if (last === undefined || !Number.isInteger(last) || last <= 0) throw hostProcError(hostPid);
  return last;
}

/** Replace "{n}" in every string of a JSON value, so each request differs (no prompt cache). */
export function numbered(body: unknown, n: number): unknown {
  if (typeof body === 'string') return body.replaceAll('{n}', String(n));
  if (Array.isArray(body)) return body.map((x) => numbered(x, n));
  if (body !== null && typeof body === 'object') return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, numbered(v, n)]));
  return body;
}


async function readSamples(seat: SeatHandle, p: ResourceSamplesParams): Promise<{ text: string; size: number } | { missing: true } | { tooBig: number }> {
  const f = await seat.readFile(p.path, { container: p.container, maxBytes: MAX_BYTES });
  if (!f) return { missing: true };
  if (f.truncated) return { tooBig: f.size };
  return { text: f.data.toString('utf8'), size: f.size };
}

async function generateLoad(seat: SeatHandle, p: ResourceSamplesParams, until: number, deadline: Deadline): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  let n = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < until && n < p.load.maxRequests) {
      deadline.check();
      const k = ++n;
      const at = await httpRequest(
        seat,
        { target: p.load.target, method: 'POST', path: p.load.path, headers: {}, body: numbered(p.load.body, k), timeoutMs: Math.max(1000, until - Date.now() + 5000), readBytes: 64 * 1024 },
        deadline,
      );
      const key = at.kind === 'response' ? String(at.exchange.status) : at.kind === 'slow' ? 'timeout' : at.code;
      statuses[key] = (statuses[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: p.load.concurrency }, worker));
  return statuses;
}

export const resourceSamplesProbe = defineProbe({
  kind: 'resource-samples',
  params: ResourceSamplesParamsSchema,
  async run(seat, p, deadline) {
    const file = (ev: { size?: number; text?: string }): Evidence => ({
      kind: 'file',
      path: p.path,
      exists: true,
      ...(ev.size !== undefined ? { size: ev.size } : {}),
      ...(ev.text !== undefined ? { excerpt: { text: ev.text.slice(-2048), length: ev.text.length, truncated: ev.text.length > 2048 } } : {}),
    });
    // 1. The file is there and holds samples in the stated shape.
    const first = await readSamples(seat, p);
    if ('missing' in first) return failed({ zh: `采样文件不存在：${p.path}`, en: `no samples file: ${p.path}` }, [{ kind: 'file', path: p.path, exists: false }]);
    if ('tooBig' in first) return failed({ zh: `采样文件超过 ${MAX_BYTES} 字节`, en: `samples file larger than ${MAX_BYTES} bytes` }, [file({ size: first.tooBig })]);
    const parsed = parseSamples(first.text);
    if (parsed.bad.length > 0 || parsed.samples.length === 0) {
      return failed({ zh: '采样文件格式不符合要求', en: 'the samples file is not in the stated format' }, [
        file(first),
        note('格式不符的行', 'lines not in the format', { bad: parsed.bad.slice(0, 10), badCount: parsed.bad.length, samples: parsed.samples.length }),
      ]);
    }

    // 2. The model server, as the host sees it, and its PID in the seat.
    const procs = (await seat.listProcesses()).filter(
      (x: SeatProcess) => x.role === p.container && matches(x, p.process) && (p.processUser === undefined || x.user === p.processUser),
    );
    const server = procs[0];
    if (procs.length > 1) {
      throw new DeploylabError({
        code: 'PROBE_TARGET_PROCESS_AMBIGUOUS',
        fault: 'config',
        message: { zh: '考位中有多个进程符合任务模型服务的匹配条件：考题的 process/processUser 不够确定', en: "several processes match the task's model server: the task's process/processUser is not specific enough" },
        details: { match: p.process, user: p.processUser, processes: procs.slice(0, 10).map((x) => ({ hostPid: x.hostPid, user: x.user, command: show(x.command, 200) })) },
      });
    }
    if (!server) {
      throw new DeploylabError({
        code: 'PROBE_TARGET_PROCESS_MISSING',
        fault: 'infrastructure',
        message: { zh: '考位中没有任务的模型服务进程，无法施加负载', en: "the task's model server is not running in the seat: no load can be applied" },
        details: { match: p.process, user: p.processUser },
      });
    }
    const seatPid = await seatPidOf(server.hostPid);

    // 3. Idle, then load, reading the host's truth at each boundary and every 250 ms throughout,
    //    from one interval before the window (the first sample's interval starts before it).
    const rss: HostTruth['rss'] = [];
    const ticks: HostTruth['ticks'] = [];
    const record = (r: HostReading): void => {
      rss.push({ t: r.at / 1000, mib: r.rssKiB / 1024 });
      ticks.push({ t: r.at / 1000, ticks: r.ticks });
    };
    record(await readHost(server.hostPid));
    let pollFailed: unknown;
    const poll = setInterval(() => {
      readHost(server.hostPid).then(record, (e: unknown) => (pollFailed ??= e));
    }, HOST_POLL_MS);
    let r0: HostReading;
    let r1: HostReading;
    let r2: HostReading;
    let statuses: Record<string, number>;
    try {
      await sleep(p.expect.intervalSeconds * 1000);
      r0 = await readHost(server.hostPid);
      record(r0);
      await sleep(p.load.idleSeconds * 1000);
      r1 = await readHost(server.hostPid);
      record(r1);
      statuses = await generateLoad(seat, p, Date.now() + p.load.loadSeconds * 1000, deadline);
      r2 = await readHost(server.hostPid);
      record(r2);
      // The sampler has one more interval to write its last line, and the host keeps reading for
      // one more, so that the last sample's interval is covered (a sampler may stamp the time
      // before it measures).
      await sleep(p.expect.intervalSeconds * 2000 + 1500);
      record(await readHost(server.hostPid));
    } finally {
      clearInterval(poll);
    }
    // Polls may resolve out of order.
    rss.sort((x, y) => x.t - y.t);
    ticks.sort((x, y) => x.t - y.t);
    if (pollFailed !== undefined) throw pollFailed;
    const answered = Object.entries(statuses).filter(([k]) => /^\d+$/.test(k)).reduce((s, [, v]) => s + v, 0);
    const cpu = (a: HostReading, b: HostReading): number => ((b.ticks - a.ticks) / USER_HZ / ((b.at - a.at) / 1000)) * 100;
    const host: HostTruth = { idleCpu: cpu(r0, r1), loadCpu: cpu(r1, r2), rss, ticks };
    const w: Window = { t0: r0.at / 1000, tLoad: r1.at / 1000, tEnd: r2.at / 1000 };
    const hostNote = note('主机侧读数（/proc）与负载', 'host readings (/proc) and load', {
      hostPid: server.hostPid,
      seatPid,
      command: show(server.command, 300),
      window: w,
      hostIdleCpuPercent: Math.round(host.idleCpu * 10) / 10,
      hostLoadCpuPercent: Math.round(host.loadCpu * 10) / 10,
      hostRssMiB: rss.filter((_, k) => k % 4 === 0).map((h) => ({ t: Math.round(h.t * 10) / 10, mib: Math.round(h.mib * 10) / 10 })),
      loadStatuses: statuses,
    });
    // The harness must have made the server busy, or the CPU comparison means nothing.
    if (answered === 0 || host.loadCpu < 20) {
      throw new DeploylabError({
        code: 'PROBE_LOAD_INEFFECTIVE',
        fault: 'infrastructure',
        message: { zh: '评分程序未能让模型服务忙起来，无法评判 CPU 采样', en: 'the harness could not make the model server busy: the CPU samples cannot be judged' },
        details: { statuses, hostLoadCpu: host.loadCpu },
      });
    }

    // 4. The file as it is now.
    const after = await readSamples(seat, p);
    if (!('text' in after)) return failed({ zh: '评分期间采样文件消失或过大', en: 'the samples file vanished or grew too large during grading' }, [hostNote]);
    const again = parseSamples(after.text);
    // Only lines appended since the first read count: a file written in advance with timestamps
    // running into the future has nothing new.
    const appended = parseSamples(appendedText(first.text, after.text)).samples;
    const { assertions, inWindow, cpu: perSample } = judgeSamples(appended, w, host, seatPid, p.expect);
    const early = again.samples.length - appended.length;
    if (again.bad.length > 0) assertions.push({ id: 'format', ok: false, expected: 'every line a sample', actual: `${again.bad.length} bad line(s)` });
    return judge(assertions, 'all', { zh: `资源采样 ${p.path}`, en: `resource samples ${p.path}` }, [
      file(after),
      hostNote,
      note('评分窗口内新写入的采样，及主机在同一间隔测得的 CPU 范围', "samples appended within the grading window, with the host's CPU range over the same interval", {
        samples: inWindow.slice(0, 40),
        count: inWindow.length,
        alreadyInFileBefore: early,
        cpu: perSample.slice(0, 40),
      }),
    ]);
  },
});
