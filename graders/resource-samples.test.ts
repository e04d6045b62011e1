/**
 * The resource-samples probe. Pure parts on made-up samples; then on a real seat (docker driver,
 * the real seat adapter) with llama-server running as root under another name: a real 1 s
 * sampler passes; a file written once, another process's PID, constant numbers and ps's lifetime
 * %cpu all fail, each on the expectation it breaks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seatHandleFor } from '../runner/grading/seat-handle.js';
import { newVerifySession } from '../runner/grading/verify.js';
import { DockerDriver } from '../runner/sandbox/docker-driver.js';
import { parseSeatPlan } from '../runner/sandbox/driver.js';
import { ResourceSamplesParamsSchema } from '../runner/tasks/probe-params.js';
import { hasEngine } from '../test/helpers/docker-env.js';
import { requireImage } from '../test/helpers/images.js';
import { Deadline, runProbe, type ProbeOutcome, type SeatHandle } from './probe.js';
import { judgeSamples, numbered, parseSamples, resourceSamplesProbe, type Sample } from './resource-samples.js';

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
  const w = { t0: 1000, tLoad: 1004, tEnd: 1012 };
  const host = { idleCpu: 0, loadCpu: 90, rss: Array.from({ length: 60 }, (_, k) => ({ t: 1000 + k / 4, mib: 30 })) };
  const series = (f: (ts: number) => Partial<Sample>): Sample[] =>
    Array.from({ length: 14 }, (_, i) => ({ ts: 1000.3 + i, pid: 42, cpu_percent: 0, rss_mib: 31, ...f(1000.3 + i) }));
  const failedIds = (s: Sample[], pid = 42): string[] => judgeSamples(s, w, host, pid, EXPECT).assertions.filter((a) => !a.ok).map((a) => a.id);

  it('passes samples that follow idle then load', () => {
    expect(failedIds(series((ts) => ({ cpu_percent: ts > 1005 ? 88 : 0.5 })))).toEqual([]);
  });
  it('judges RSS against the host reading of the same moment, as it climbs', () => {
    const climbing = { ...host, rss: host.rss.map((h) => ({ t: h.t, mib: 25 + 3 * (h.t - 1000) })) };
    const follow = series((ts) => ({ cpu_percent: ts > 1005 ? 88 : 0, rss_mib: 25 + 3 * (ts - 1000) }));
    const ids = (s: Sample[]): string[] => judgeSamples(s, w, climbing, 42, EXPECT).assertions.filter((a) => !a.ok).map((a) => a.id);
    expect(ids(follow)).toEqual([]);
    // The median of the climb, written every time, is wrong early and late.
    expect(ids(follow.map((s) => ({ ...s, rss_mib: 43 })))).toEqual(['rss']);
  });
  it('fails old samples, another pid, a wrong RSS and constants', () => {
    expect(failedIds(series(() => ({ ts: 900 })))).toContain('fresh');
    expect(failedIds(series((ts) => ({ cpu_percent: ts > 1005 ? 88 : 0 })), 43)).toEqual(['pid']);
    expect(failedIds(series((ts) => ({ cpu_percent: ts > 1005 ? 88 : 0, rss_mib: 31 * 1024 })))).toEqual(['rss']);
    // No constant is both ≥ 50% and ≤ 25% of the host's load.
    for (const c of [0, 22.5, 45, 90, 100]) expect(failedIds(series(() => ({ cpu_percent: c }))).length).toBeGreaterThan(0);
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
fixed = rss()
pt, pc = time.time(), ticks()
while True:
    time.sleep(1)
    if mode == "const":
        emit(60.0, fixed)
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
  const grade = async (mode: string): Promise<ProbeOutcome> => {
    const p = {
      kind: 'resource-samples',
      path: `/workspace/s-${mode}.jsonl`,
      process: { exe: 'infer-engine' },
      load: { target: { port: 8090 }, body: { max_tokens: 8, cache_prompt: false, messages: [{ role: 'user', content: `r{n} ${'w '.repeat(150)}` }] }, idleSeconds: 4, loadSeconds: 6 },
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
      cmd: ['bash', '-c', 'cat >/workspace/sampler.py && for m in good once wrongpid const pslife; do setsid nohup python3 /workspace/sampler.py $m /workspace/s-$m.jsonl >/workspace/$m.log 2>&1 </dev/null & done; sleep 3'],
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
    expect(failedIds(o).every((id) => id.startsWith('cpu-'))).toBe(true);
  }, 60_000);

  it('fails when there is no file, without loading the server', async () => {
    const t0 = Date.now();
    const o = await grade('absent');
    expect(o.status).toBe('fail');
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});
