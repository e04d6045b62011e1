/**
 * `expect.threads`: the parsers on real /proc text, the judgement on figures, and the reading on
 * real processes of this host: a child with two spinning worker threads, and one pinned to a
 * single CPU with taskset.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';
import { ThreadsExpectSchema } from './params.js';
import { processProbe } from './process.js';
import { cpuListText, judgeThreads, parseCpuList, parseCpusAllowed, parseStatCpuTicks, readThreads, type ThreadView } from './threads.js';

const expectOf = (x: unknown) => ThreadsExpectSchema.parse(x);

describe('parsers', () => {
  it('reads CPU lists and writes them back as ranges', () => {
    expect(parseCpuList('0-3,8,10-11')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('0\n')).toEqual([0]);
    expect(parseCpuList('')).toEqual([]);
    expect(() => parseCpuList('0-a')).toThrow();
    expect(() => parseCpuList('3-1')).toThrow();
    expect(cpuListText([0, 1, 2, 5, 7, 8])).toBe('0-2,5,7-8');
  });
  it('reads utime+stime after the last ")" even when the name holds spaces and parentheses', () => {
    const line = '4242 (llama (srv) x) S 1 4242 4242 0 -1 4194304 1200 0 0 0 731 42 0 0 20 0 13 0 5000 100000 2000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0';
    expect(parseStatCpuTicks(line)).toBe(773);
    expect(() => parseStatCpuTicks('garbage')).toThrow();
  });
  it('parses this very process’s stat and status from /proc', () => {
    const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8');
    expect(parseStatCpuTicks(stat)).toBeGreaterThanOrEqual(0);
    const cpus = parseCpusAllowed(readFileSync(`/proc/${process.pid}/status`, 'utf8'));
    expect(cpus.length).toBeGreaterThanOrEqual(1);
    expect(() => parseCpusAllowed('Name: x\n')).toThrow();
  });
});

const T = (tid: number, cpuTicks: number, cpus = [0, 1]): ThreadView => ({ tid, name: 'llama-server', cpuTicks, cpusAllowed: cpus });

describe('judgeThreads', () => {
  const e = expectOf({ cpusAllowedMin: 2, busy: { min: 2, max: 2 } });
  const ok = (a: { ok: boolean }[]) => a.map((x) => x.ok);

  it('two compute threads among idle helpers, free on two CPUs: pass', () => {
    const j = judgeThreads([{ hostPid: 9, threads: [T(9, 550), T(10, 0), T(11, 2), T(12, 560)] }], e);
    expect(ok(j.assertions)).toEqual([true, true]);
    expect(j.figures[0]).toMatchObject({ busyThreads: 2, fewestCpusAllowed: 2, busiestCpuSeconds: 5.6 });
  });
  it('one compute thread, pinned to one CPU (taskset -c 0 … -t 1): both fail', () => {
    const j = judgeThreads([{ hostPid: 9, threads: [T(9, 990, [0]), T(10, 0, [0]), T(11, 1, [0])] }], e);
    expect(ok(j.assertions)).toEqual([false, false]);
    expect(j.assertions[0]!.actual).toContain('CPUs 0 (1)');
    expect(j.assertions[1]!.actual).toContain('1 of 3 threads busy');
  });
  it('only the compute threads pinned (--cpu-mask): the fewest-CPU thread decides', () => {
    const j = judgeThreads([{ hostPid: 9, threads: [T(9, 500), T(10, 0), T(12, 480, [1])] }], e);
    expect(ok(j.assertions)).toEqual([false, true]);
  });
  it('four compute threads on a two-core seat is over the maximum', () => {
    const j = judgeThreads([{ hostPid: 9, threads: [T(9, 320), T(10, 270), T(11, 300), T(12, 310), T(13, 0)] }], e);
    expect(ok(j.assertions)).toEqual([true, false]);
  });
  it('too little work to judge is a fail that says so; a gone process fails both', () => {
    const idle = judgeThreads([{ hostPid: 9, threads: [T(9, 20), T(10, 19)] }], e);
    expect(ok(idle.assertions)).toEqual([true, false]);
    expect(idle.assertions[1]!.actual).toContain('too little work');
    const gone = judgeThreads([{ hostPid: 9, threads: null }], e);
    expect(ok(gone.assertions)).toEqual([false, false]);
    expect(ok(judgeThreads([], e).assertions)).toEqual([false, false]);
  });
  it('the schema wants one of the expectations and a sane range', () => {
    expect(() => expectOf({})).toThrow();
    expect(() => expectOf({ busy: { min: 3, max: 2 } })).toThrow();
    expect(expectOf({ busy: { min: 1 } })).toMatchObject({ busyShare: 0.25, minBusiestCpuSeconds: 0.5 });
  });
});

// Real processes: a node child with two worker threads that spin for good, beside its idle ones.
const LIVE = `
const { Worker } = require('node:worker_threads');
for (let i = 0; i < 2; i++) new Worker("for (;;) {}", { eval: true });
setTimeout(() => console.log('spun'), 1500);
setInterval(() => {}, 1000);`;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

async function startSpinner(prefix: string[] = []): Promise<ChildProcess> {
  const [cmd, ...args] = [...prefix, process.execPath, '-e', LIVE];
  const c = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c);
  await new Promise<void>((resolve, reject) => {
    c.stdout!.on('data', (d: Buffer) => (d.toString().includes('spun') ? resolve() : undefined));
    c.once('exit', (code) => reject(new Error(`spinner exited ${code}`)));
  });
  return c;
}

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

describe.skipIf(availableParallelism() < 2)('readThreads on real processes', () => {
  it('two live spinning threads count as busy, the idle ones do not; unpinned, every thread may use every CPU', async () => {
    const c = await startSpinner();
    const threads = (await readThreads(c.pid!))!;
    expect(threads.length).toBeGreaterThan(4);
    const two = judgeThreads([{ hostPid: c.pid!, threads }], expectOf({ cpusAllowedMin: availableParallelism(), busy: { min: 2, max: 2 }, busyShare: 0.5, minBusiestCpuSeconds: 0.3 }));
    expect(two.assertions.map((a) => a.ok)).toEqual([true, true]);
    const three = judgeThreads([{ hostPid: c.pid!, threads }], expectOf({ busy: { min: 3 }, busyShare: 0.5, minBusiestCpuSeconds: 0.3 }));
    expect(three.assertions[0]!.ok).toBe(false);
  }, 20_000);

  it.skipIf(!hasTaskset)('taskset -c 0 pins every thread: cpusAllowed fails on a two-CPU requirement', async () => {
    const c = await startSpinner(['taskset', '-c', '0']);
    const threads = (await readThreads(c.pid!))!;
    expect(threads.every((t) => t.cpusAllowed.length === 1 && t.cpusAllowed[0] === 0)).toBe(true);
    const j = judgeThreads([{ hostPid: c.pid!, threads }], expectOf({ cpusAllowedMin: 2 }));
    expect(j.assertions[0]).toMatchObject({ ok: false });
  }, 20_000);

  it('a process that is gone reads as null', async () => {
    const c = spawn('true');
    await new Promise((r) => c.once('exit', r));
    await new Promise((r) => setTimeout(r, 100));
    expect(await readThreads(c.pid!)).toBeNull();
  });
});

describe.skipIf(availableParallelism() < 2)('the process probe’s expect.threads on a real host process', () => {
  let seat: TempSeat;
  beforeEach(async () => {
    seat = await tempSeat();
  });
  afterEach(async () => {
    await seat.cleanup();
  });
  const probe = (threads: Record<string, unknown>): Promise<ProbeOutcome> =>
    runProbe(processProbe, seat, { kind: 'process', match: { exe: 'llama-server' }, expect: { threads } }, Deadline.after(30_000));

  it('judges the matched process from the host: its two spinning threads pass busy 2..2, fail busy ≥ 3, and the evidence gives the figures', async () => {
    const c = await startSpinner();
    const argv = readFileSync(`/proc/${c.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    // Listed as ps lists it: the host only judges PIDs whose live command line is the listed one.
    seat.processes = [{ hostPid: c.pid!, ppid: process.pid, user: 'candidate', command: argv.join(' '), role: 'workspace' }];
    const o = await runProbe(processProbe, seat, { kind: 'process', match: { commandMatches: 'worker_threads' }, expect: { threads: { cpusAllowedMin: 2, busy: { min: 2, max: 2 }, busyShare: 0.5, minBusiestCpuSeconds: 0.3 } } }, Deadline.after(30_000));
    expect(o.status, JSON.stringify(o)).toBe('pass');
    const ev = o.evidence.find((e) => e.kind === 'note' && e.text.en.startsWith("the process's threads"));
    expect(ev?.kind === 'note' && ev.data).toMatchObject({ processes: [{ hostPid: c.pid, busyThreads: 2, fewestCpusAllowed: availableParallelism() }] });
    const three = await runProbe(processProbe, seat, { kind: 'process', match: { commandMatches: 'worker_threads' }, expect: { threads: { busy: { min: 3 }, busyShare: 0.5, minBusiestCpuSeconds: 0.3 } } }, Deadline.after(30_000));
    expect(three.status).toBe('fail');
  }, 20_000);

  it('no matching process: fail, not error', async () => {
    seat.processes = [];
    const o = await probe({ cpusAllowedMin: 2 });
    expect(o.status).toBe('fail');
  });
});
