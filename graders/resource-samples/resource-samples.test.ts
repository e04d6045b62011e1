/**
 * The resource-samples probe. Pure parts on made-up samples; then on a real seat (docker driver,
 * the real seat adapter) with llama-server running as root under another name: a real 1 s
 * sampler passes; a file written once, a file written in advance with timestamps into the future,
 * another process's PID, constant numbers, made-up figures alternating 0 and 99 and ps's lifetime
 * %cpu all fail, each on the expectation it breaks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seatHandleFor } from '../../runner/grading/seat-handle.js';
import { newVerifySession } from '../../runner/grading/verify.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan } from '../../runner/sandbox/driver.js';
import { ResourceSamplesParamsSchema } from './params.js';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { requireImage } from '../../test/helpers/images.js';
import { Deadline, runProbe, type ProbeOutcome, type SeatHandle } from '../probe.js';
import { appendedText, hostCpuBetween, hostCpuRange, judgeSamples, numbered, parseSamples, resourceSamplesProbe, type Sample } from './resource-samples.js';

const EXPECT = ResourceSamplesParamsSchema.shape.expect.parse({});

describe('parseSamples', () => {
  it('keeps sample lines, reports others, and leaves out a last line still being written', () => {
    const text = [
      '{"ts": 1.5, "pid": 7, "cpu_percent": 3, "rss_mib": 30.1}',
      '',
      '{"ts": 2, "pid": 7, "cpu_percent": "3", "rss_mib": 30}',
      'not json',
      '{"ts": 3, "pid": 7.5, "cpu_percent": 1, "rss_mib": 30}',
      '{"ts": 4, "pid": 7, "cpu_percent": 1, "rss',
    ].join('\n');
    const r = parseSamples(text);
    expect(r.samples).toEqual([{ ts: 1.5, pid: 7, cpu_percent: 3, rss_mib: 30.1 }]);
    expect(r.bad.map((b) => b.line)).toEqual([3, 4, 5]);
    expect(parseSamples(text + '\n').bad.map((b) => b.line)).toEqual([3, 4, 5, 6]);
  });
});

describe('judgeSamples', () => {
  // Idle from 1000 to 1006, the server at 90% of a core from 1006 to 1014, idle again after; the
  // host polled every 250 ms from one interval before the window to past its end.
  const w = { t0: 1000, tLoad: 1006, tEnd: 1014 };
  const busy = (t: number): number => Math.min(Math.max(t - 1006, 0), 8) * 90; // ticks: 0.9 s of CPU per second under load
  const ticks = Array.from({ length: 77 }, (_, k) => ({ t: 999 + k / 4, ticks: Math.round(busy(999 + k / 4)) }));
  const host = { idleCpu: 0, loadCpu: 90, rss: ticks.map((h) => ({ t: h.t, mib: 30 })), ticks };
  /** One sample a second (ts = the end of the second it measures), with the true CPU unless f says otherwise. */
  const truth = (ts: number): number => (busy(ts) - busy(ts - 1)) / 100 * 100;
  const series = (f: (ts: number, k: number) => Partial<Sample>, start = 1000.3): Sample[] =>
    Array.from({ length: 16 }, (_, k) => ({ ts: start + k, pid: 42, cpu_percent: truth(start + k), rss_mib: 31, ...f(start + k, k) }));
  const failedIds = (s: Sample[], pid = 42, h = host): string[] => judgeSamples(s, w, h, pid, EXPECT).assertions.filter((a) => !a.ok).map((a) => a.id);

  it('passes samples that follow idle then load, stamped before or after the interval they measure', () => {
    expect(failedIds(series(() => ({})))).toEqual([]);
    // psutil.cpu_percent(interval=1) after taking the time: the sample measures the second after ts.
    expect(failedIds(series((ts) => ({ cpu_percent: truth(ts + 1) })))).toEqual([]);
    // top's line reaching the file 0.4 s late, figures rounded, a little noise.
    expect(failedIds(series((ts, k) => ({ ts: ts + 0.4, cpu_percent: Math.round(truth(ts) + (k % 2 ? 6 : -6)) })))).toEqual([]);
  });
  it('reads the host CPU between polls', () => {
    expect(hostCpuBetween(ticks, 1007, 1008)).toBeCloseTo(90, 5);
    expect(hostCpuBetween(ticks, 1005.5, 1006.5)).toBeCloseTo(45, 5);
    expect(hostCpuBetween(ticks, 990, 991)).toBeNull();
    expect(hostCpuRange(ticks, 1003.3, 1)).toEqual({ lo: 0, hi: 0 });
    // Near the start of the load the range spans both phases.
    expect(hostCpuRange(ticks, 1006.3, 1)).toMatchObject({ lo: 0 });
    expect(hostCpuRange(ticks, 1006.3, 1)!.hi).toBeCloseTo(90, 5);
  });
  it('judges RSS against the host reading of the same moment, as it climbs', () => {
    const climbing = { ...host, rss: host.rss.map((h) => ({ t: h.t, mib: 25 + 3 * (h.t - 1000) })) };
    const follow = series((ts) => ({ rss_mib: 25 + 3 * (ts - 1000) }));
    expect(failedIds(follow, 42, climbing)).toEqual([]);
    // The median of the climb, written every time, is wrong early and late.
    expect(failedIds(follow.map((s) => ({ ...s, rss_mib: 43 })), 42, climbing)).toEqual(['rss']);
  });
  it('fails old samples, another pid, a wrong RSS and constants', () => {
    expect(failedIds(series(() => ({ ts: 900 })))).toContain('fresh');
    expect(failedIds(series(() => ({})), 43)).toEqual(['pid']);
    expect(failedIds(series(() => ({ rss_mib: 31 * 1024 })))).toEqual(['rss']);
    for (const c of [0, 22.5, 45, 90, 100]) expect(failedIds(series(() => ({ cpu_percent: c })))).toContain('cpu');
  });
  it('fails invented CPU figures that show both "busy" and "idle" somewhere', () => {
    // 0 and 99 alternating: the contrast checks alone are met, the sample-by-sample one is not.
    const alternating = failedIds(series((_, k) => ({ cpu_percent: k % 2 ? 99 : 0 })));
    expect(alternating).toEqual(['cpu']);
    // Busy two seconds in three, whatever the phase.
    expect(failedIds(series((_, k) => ({ cpu_percent: k % 3 === 2 ? 0 : 99 })))).toContain('cpu');
    // The shape of the load guessed right but 4 s out of step with it (the grader's schedule).
    expect(failedIds(series((ts) => ({ cpu_percent: truth(ts - 4) })))).toContain('cpu');
    // A lifetime average: low and flat.
    expect(failedIds(series((ts) => ({ cpu_percent: 8 + (ts - 1000) * 0.3 })))).toContain('cpu');
  });
  it('keeps only lines appended since the first read', () => {
    const a = '{"ts": 1}\n{"ts": 2}\n{"ts": 3';
    expect(appendedText(a, a + '}\n{"ts": 4}\n')).toBe('{"ts": 3}\n{"ts": 4}\n');
    // Rewritten: the lines seen before do not count again.
    expect(appendedText('{"ts": 1}\n{"ts": 2}\n', '{"ts": 2}\n{"ts": 5}\n')).toBe('{"ts": 5}\n');
  });
  it('numbers request bodies', () => {
    expect(numbered({ a: ['x {n}', 3], b: { c: '{n}{n}' } }, 7)).toEqual({ a: ['x 7', 3], b: { c: '77' } });
  });
  it('refuses an idle share that a constant could satisfy together with the load share', () => {
    expect(ResourceSamplesParamsSchema.shape.expect.safeParse({ minCpuShare: 0.5, maxIdleShare: 0.5 }).success).toBe(false);
  });
});

/** A python sampler; MODE picks how it is right or wrong. */
const SAMPLER = String.raw`
import json, os, subprocess, sys, time
mode, path = sys.argv[1], sys.argv[2]
server = int(subprocess.check_output(["pgrep", "-o", "-x", "infer-engine"]).split()[0])
pid = os.getpid() if mode == "wrongpid" else server
def ticks():
    rest = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
out = open(path, "a", buffering=1)
def emit(cpu, mib):
    out.write(json.dumps({"ts": time.time(), "pid": pid, "cpu_percent": cpu, "rss_mib": mib}) + "\n")
if mode == "once":
    for _ in range(5): emit(1.0, rss())
    sys.exit(0)
if mode == "future":
    now, mib = time.time(), rss()
    for k in range(3600):
        out.write(json.dumps({"ts": now + k, "pid": pid, "cpu_percent": 90.0 if (k // 6) % 2 else 0.5, "rss_mib": mib}) + "\n")
    sys.exit(0)
fixed = rss()
pt, pc = time.time(), ticks()
k = 0
while True:
    time.sleep(1)
    if mode == "const":
        emit(60.0, fixed)
    elif mode == "alt":
        k += 1
        emit(99.0 if k % 2 else 0.0, rss())
    elif mode == "pslife":
        cpu, kib = subprocess.check_output(["ps", "-o", "%cpu=,rss=", "-p", str(pid)]).split()
        emit(float(cpu), int(kib) / 1024)
    else:
        t, c = time.time(), ticks()
        emit((c - pc) / 100 / (t - pt) * 100, rss())
        pt, pc = t, c
`;

describe.skipIf(!hasEngine)('resource-samples probe on a real seat', () => {
  const driver = new DockerDriver();
  const ref = { session: newVerifySession(), seat: 'samples' };
  let seat: SeatHandle;
  const outcomes = new Map<string, ProbeOutcome>();
  const grade = async (mode: string, over: Record<string, unknown> = {}): Promise<ProbeOutcome> => {
    const p = {
      kind: 'resource-samples',
      path: `/workspace/s-${mode}.jsonl`,
      // infer-engine is a link to llama-server: its command line names it, its executable does not.
      process: { commandMatches: '(^|/)infer-engine( |$)' },
      processUser: 'root',
      load: { target: { port: 8090 }, body: { max_tokens: 8, cache_prompt: false, messages: [{ role: 'user', content: `r{n} ${'w '.repeat(150)}` }] }, idleSeconds: 4, loadSeconds: 6 },
      ...over,
    };
    const o = await runProbe(resourceSamplesProbe, seat, p, Deadline.after(60_000));
    outcomes.set(mode, o);
    return o;
  };
  const failedIds = (o: ProbeOutcome): string[] => {
    const a = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'expectations checked');
    return ((a?.kind === 'note' ? a.data?.['assertions'] : []) as { id: string; ok: boolean }[]).filter((x) => !x.ok).map((x) => x.id);
  };

  beforeAll(async () => {
    const ws = await requireImage('workspace-cpu');
    await driver.provision(parseSeatPlan({ ...ref, task: 'resource-samples-test', workspace: { image: ws }, resources: { cpus: 1, memoryMiB: 1024 } }));
    seat = seatHandleFor({ driver, ref, task: 'resource-samples-test' });
    const root = await driver.exec(ref, {
      user: 'root',
      cmd: ['bash', '-c', 'mkdir -p /opt/t && ln -sf /usr/local/bin/llama-server /opt/t/infer-engine && (setsid nohup /opt/t/infer-engine -m /opt/models/tiny-llama-f16.gguf --port 8090 --host 0.0.0.0 --threads 1 --ctx-size 1024 --parallel 2 --temp 0 >/tmp/srv.log 2>&1 </dev/null &) && for i in $(seq 60); do curl -fs localhost:8090/health >/dev/null && exit 0; sleep 0.5; done; exit 1'],
    });
    expect(root.exitCode).toBe(0);
    const cand = await driver.exec(ref, {
      stdin: SAMPLER,
      // A decoy of the candidate's own under the server's name: processUser keeps it out.
      cmd: ['bash', '-c', 'cp /usr/bin/python3 /workspace/infer-engine && (setsid nohup /workspace/infer-engine -c "import time; time.sleep(10**6)" >/dev/null 2>&1 </dev/null &) && cat >/workspace/sampler.py && for m in good once wrongpid const pslife alt future; do setsid nohup python3 /workspace/sampler.py $m /workspace/s-$m.jsonl >/workspace/$m.log 2>&1 </dev/null & done; sleep 3'],
    });
    expect(cand.exitCode).toBe(0);
  }, 180_000);
  afterAll(async () => {
    await driver.sweep({ session: ref.session });
  });

  it('passes a real 1 s sampler of the server', async () => {
    const o = await grade('good');
    expect(o.status, JSON.stringify(o.evidence.slice(1))).toBe('pass');
  }, 60_000);

  it('fails a file written once (nothing new in the window)', async () => {
    const o = await grade('once');
    expect(o.status).toBe('fail');
    expect(failedIds(o)).toContain('fresh');
  }, 60_000);

  it('fails a sampler of another process', async () => {
    const o = await grade('wrongpid');
    expect(o.status).toBe('fail');
    expect(failedIds(o)).toContain('pid');
  }, 60_000);

  // RSS read once at the start: the server's RSS grows once it has served requests, so a frozen
  // figure may fail rss as well; what must fail is the CPU.
  it('fails made-up constant CPU figures (right pid)', async () => {
    const o = await grade('const');
    expect(o.status).toBe('fail');
    expect(failedIds(o)).not.toContain('pid');
    expect(failedIds(o)).toContain('cpu-idle');
  }, 60_000);

  it("fails ps's %cpu (an average since the process started), though pid and RSS are right", async () => {
    const o = await grade('pslife');
    expect(o.status).toBe('fail');
    // Low under load (cpu-load), or, after earlier loads raised the lifetime average, high while idle.
    expect(failedIds(o).length).toBeGreaterThan(0);
    expect(failedIds(o).every((id) => id.startsWith('cpu'))).toBe(true);
  }, 60_000);

  it('fails invented CPU figures alternating 0 and 99 (right pid and RSS), sample by sample', async () => {
    const o = await grade('alt');
    expect(o.status).toBe('fail');
    // Both phases show a busy and an idle figure somewhere: only the per-sample comparison fails.
    expect(failedIds(o)).toEqual(['cpu']);
  }, 60_000);

  it('fails a file written in advance whose timestamps run into the future', async () => {
    const o = await grade('future');
    expect(o.status).toBe('fail');
    expect(failedIds(o)).toContain('fresh');
  }, 60_000);

  it('refuses to judge when the match names the decoy too (processUser left out)', async () => {
    const o = await grade('good', { processUser: undefined });
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_TARGET_PROCESS_AMBIGUOUS');
  }, 30_000);

  it('fails when there is no file, without loading the server', async () => {
    const t0 = Date.now();
    const o = await grade('absent');
    expect(o.status).toBe('fail');
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});
