/**
 * `expect.threads` of the process probe: how a process really uses the CPU, read from the host's
 * /proc per thread (/proc/<pid>/task/<tid>/stat and status), never from its command line or
 * environment (`LLAMA_ARG_THREADS`, `taskset` in a wrapper, `--cpu-mask` all end up here).
 *
 * - `cpusAllowedMin`: every thread may run on at least that many CPUs (Cpus_allowed_list). A
 *   server pinned to one core with `taskset`, or whose compute threads `--cpu-mask` pins, fails.
 * - `busy`: how many threads have done real work, i.e. accumulated CPU time of at least
 *   `busyShare` × the busiest thread's. A compute pool of N threads shows N busy threads after
 *   load; idle HTTP or helper threads do not count. Judged only once the busiest thread has used
 *   `minBusiestCpuSeconds` (the check runs after the task's own load), else fail: too little work
 *   was done to show anything.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { z } from 'zod';
import type { Assertion } from '../shared/assertions.js';
import { isGone, PROC } from '../shared/process-identity.js';
import type { ThreadsExpectSchema } from './params.js';

export type ThreadsExpect = z.output<typeof ThreadsExpectSchema>;

/**
 * Linux reports /proc CPU times in USER_HZ ticks, fixed at 100 for userspace on every
 * architecture the harness runs on (sysconf(_SC_CLK_TCK)).
 */
export const CLOCK_TICKS_PER_SECOND = 100;

/** "0-3,8,10-11" → [0,1,2,3,8,10,11]. Throws on anything else. */
export function parseCpuList(text: string): number[] {
  const s = text.trim();
  if (s === '') return [];
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`not a CPU list: ${JSON.stringify(text)}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi - lo > 65_536) throw new Error(`not a CPU list: ${JSON.stringify(text)}`);
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

/** utime + stime (ticks) from a /proc/<pid>/task/<tid>/stat line; the name may hold spaces and parentheses. */
export function parseStatCpuTicks(text: string): number {
  const end = text.lastIndexOf(')');
  if (end < 0) throw new Error('no ")" in stat');
  // Fields after the name start at field 3 (state); utime and stime are fields 14 and 15.
  const rest = text.slice(end + 1).trim().split(/\s+/);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('no utime/stime in stat');
  return utime + stime;
}

/** Cpus_allowed_list of a /proc status file. */
export function parseCpusAllowed(status: string): number[] {
  const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(status);
  if (!m) throw new Error('no Cpus_allowed_list in status');
  return parseCpuList(m[1]!);
}

export interface ThreadView {
  tid: number;
  name: string;
  cpuTicks: number;
  cpusAllowed: number[];
}

/**
 * The threads of `pid` as the host's /proc shows them. Null when the process is gone; a thread
 * that ends while being read is left out. Other read failures throw (the caller says whose).
 */
export async function readThreads(pid: number): Promise<ThreadView[] | null> {
  let tids: string[];
  try {
    tids = await readdir(`${PROC}/${pid}/task`);
  } catch (e) {
    if (isGone(e)) return null;
    throw e;
  }
  const out: ThreadView[] = [];
  for (const t of tids) {
    const dir = `${PROC}/${pid}/task/${t}`;
    let stat: string;
    let status: string;
    try {
      stat = await readFile(`${dir}/stat`, 'utf8');
      status = await readFile(`${dir}/status`, 'utf8');
    } catch (e) {
      if (isGone(e)) continue;
      throw e;
    }
    const name = /^Name:\s*(.*)$/m.exec(status)?.[1] ?? '';
    out.push({ tid: Number(t), name, cpuTicks: parseStatCpuTicks(stat), cpusAllowed: parseCpusAllowed(status) });
  }
  return out;
}

export interface ThreadsJudgement {
  assertions: Assertion[];
  /** Per process: the figures the assertions were judged on. */
  figures: { hostPid: number; threads: number; fewestCpusAllowed: number | null; busiestCpuSeconds: number; busyThreads: number; busy: { tid: number; cpuSeconds: number }[] }[];
}

/** Ranges for the evidence: [0,1,2,5] → "0-2,5". */
export function cpuListText(cpus: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(i === j ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Judge `expect.threads` on the threads of each matched process (null: it exited). Pure. */
export function judgeThreads(per: readonly { hostPid: number; threads: ThreadView[] | null }[], e: ThreadsExpect): ThreadsJudgement {
  const figures: ThreadsJudgement['figures'] = [];
  const allowed: string[] = [];
  const busyActual: string[] = [];
  let allowedOk = per.length > 0;
  let busyOk = per.length > 0;
  for (const { hostPid, threads } of per) {
    if (threads === null || threads.length === 0) {
      allowedOk = busyOk = false;
      allowed.push(`pid ${hostPid} exited during the check`);
      busyActual.push(`pid ${hostPid} exited during the check`);
      continue;
    }
    const fewest = threads.reduce((m, t) => (t.cpusAllowed.length < m.cpusAllowed.length ? t : m));
    const busiest = Math.max(...threads.map((t) => t.cpuTicks));
    const busy = threads.filter((t) => busiest > 0 && t.cpuTicks >= e.busyShare * busiest);
    const busiestSeconds = busiest / CLOCK_TICKS_PER_SECOND;
    figures.push({
      hostPid,
      threads: threads.length,
      fewestCpusAllowed: fewest.cpusAllowed.length,
      busiestCpuSeconds: busiestSeconds,
      busyThreads: busy.length,
      busy: busy.map((t) => ({ tid: t.tid, cpuSeconds: t.cpuTicks / CLOCK_TICKS_PER_SECOND })),
    });
    if (e.cpusAllowedMin !== undefined) {
      if (fewest.cpusAllowed.length < e.cpusAllowedMin) allowedOk = false;
      allowed.push(`pid ${hostPid}: thread ${fewest.tid} may run on CPUs ${cpuListText(fewest.cpusAllowed) || '(none)'} (${fewest.cpusAllowed.length})`);
    }
    if (e.busy !== undefined) {
      if (busiestSeconds < e.minBusiestCpuSeconds) {
        busyOk = false;
        busyActual.push(`pid ${hostPid}: its busiest thread has used only ${busiestSeconds.toFixed(2)} s of CPU (too little work to show its threads)`);
        continue;
      }
      const max = e.busy.max;
      if (busy.length < e.busy.min || (max !== undefined && busy.length > max)) busyOk = false;
      busyActual.push(`pid ${hostPid}: ${busy.length} of ${threads.length} threads busy (busiest ${busiestSeconds.toFixed(2)} s of CPU)`);
    }
  }
  const assertions: Assertion[] = [];
  if (e.cpusAllowedMin !== undefined) {
    assertions.push({ id: 'threads:cpusAllowed', ok: allowedOk, expected: `every thread may run on ≥ ${e.cpusAllowedMin} CPUs`, actual: allowed.join('; ') || '(no process)' });
  }
  if (e.busy !== undefined) {
    const { min, max } = e.busy;
    assertions.push({
      id: 'threads:busy',
      ok: busyOk,
      expected: `${max === undefined ? `≥ ${min}` : min === max ? `${min}` : `${min}..${max}`} threads with CPU time ≥ ${e.busyShare} × the busiest thread's (busiest ≥ ${e.minBusiestCpuSeconds} s)`,
      actual: busyActual.join('; ') || '(no process)',
    });
  }
  return { assertions, figures };
}
