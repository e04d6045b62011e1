/**
 * Cross-check of the `load` probe's latency figures against an independent load tool, wrk, on the
 * same endpoint at the same concurrency: a real node:http server on 127.0.0.1 that answers each
 * request after a deterministic pseudo-random 20–80 ms (uniform), so the true percentiles are
 * known (p50 ≈ 50 ms, p95 ≈ 77 ms) and both tools must land near them and near each other.
 *
 * The probe reports p50, p90, p95 and p99; p50, p90 and p95 are compared (p99 of 300 requests is a
 * matter of 3 of them); wrk's exact percentiles come from its Lua `done()` hook (microseconds,
 * HdrHistogram). Traffic goes only to 127.0.0.1, is bounded (a fixed request count for the probe,
 * a fixed duration for wrk) and stops by itself.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempSeat } from '../../graders/__helpers__/temp-seat.js';
import { loadProbe } from '../../graders/load.js';
import { Deadline, runProbe } from '../../graders/probe.js';

const WRK = '/usr/bin/wrk';
const hasWrk = existsSync(WRK);
if (!hasWrk) {
  if (process.env.CI === 'true') throw new Error(`CI=true but ${WRK} is missing: run \`deploylab host prepare --test-tools\` (package wrk)`);
  process.stderr.write(`\n!!! ${WRK} missing: the load-vs-wrk cross-check is SKIPPED. Install it: apt-get install -y wrk !!!\n\n`);
}

const CONCURRENCY = 4;
const MIN_MS = 20;
const SPAN_MS = 60;

/**
 * The server runs in a process of its own, as a candidate's service would: sharing the test's event
 * loop would add the probe's own client work to the server's delays (and not wrk's).
 * mulberry32 keeps the latency sequence the same every run.
 */
const SERVER = `
const http = require('node:http');
let a = 20240607 >>> 0;
const next = () => {
  a = (a + 0x6d2b79f5) >>> 0;
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const server = http.createServer((req, res) => {
  req.resume();
  setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\\n'), ${MIN_MS} + next() * ${SPAN_MS});
});
server.listen(0, '127.0.0.1', () => process.stdout.write('PORT ' + server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0)).resume();
`;

let server: ChildProcess;
let port: number;
beforeAll(async () => {
  // Exits when the test's end of stdin closes, so it cannot outlive the test run.
  server = spawn(process.execPath, ['-e', SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  port = await new Promise<number>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.once('exit', (code) => reject(new Error(`test server exited with ${code}`)));
  });
});
afterAll(() => {
  server.stdin!.end();
  server.kill();
});

interface Figures {
  requests: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
}

const DONE_HOOK = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %d %d %d %d %d %d\\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99)))
end
`;

async function runWrk(url: string, seconds: number): Promise<Figures & { errors: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'load-vs-wrk-'));
  try {
    const script = join(dir, 'done.lua');
    writeFileSync(script, DONE_HOOK);
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(WRK, ['-t1', `-c${CONCURRENCY}`, `-d${seconds}s`, '--timeout', '5s', '--latency', '-s', script, url], { timeout: (seconds + 20) * 1000 }, (err, out, errOut) =>
        err ? reject(new Error(`wrk failed: ${err.message}\n${errOut}`)) : resolve(out),
      ),
    );
    const m = /^WRK_RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$/m.exec(stdout);
    if (!m) throw new Error(`no WRK_RESULT line in wrk's output:\n${stdout}`);
    const us = (i: number): number => Number(m[i]) / 1000;
    return { requests: Number(m[1]), errors: Number(m[2]), p50: us(3), p90: us(4), p95: us(5), p99: us(6) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runProbeOnce(): Promise<Figures> {
  const seat = await tempSeat();
  seat.ports.set(8000, port);
  const deadline = Deadline.after(60_000);
  try {
    const o = await runProbe(loadProbe, seat, { kind: 'load', target: { port: 8000 }, method: 'GET', path: '/', requests: 300, concurrency: CONCURRENCY, expect: {} }, deadline);
    expect(o.status, JSON.stringify(o.summary)).toBe('pass');
    const n = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'load result');
    const d = (n?.kind === 'note' ? n.data : undefined) ?? {};
    expect(d['statuses']).toEqual({ '200': 300 });
    return { requests: 300, p50: d['p50Ms'] as number, p90: d['p90Ms'] as number, p95: d['p95Ms'] as number, p99: d['p99Ms'] as number };
  } finally {
    deadline.dispose();
    await seat.cleanup();
  }
}

/** Relative difference of two latencies. */
const apart = (a: number, b: number): number => Math.abs(a - b) / Math.min(a, b);

describe.skipIf(!hasWrk)('load probe vs wrk on the same endpoint', () => {
  it('p50, p90 and p95 agree within 10% at the same concurrency', async () => {
    // One after the other, each at concurrency 4: the probe a fixed 300 requests (≈ 3.8 s at 50 ms
    // mean), then wrk a bounded 4 s (≈ 300 requests). Not at the same time: measured so, the two
    // clients compete for the same two cores and the probe's Node client pays for wrk's CPU use
    // (p50 +10–12% in trials) — a figure about the host, not about the probe. A burst of another
    // workload on this shared host can still land on one tool only, so up to three attempts are
    // made; every attempt is reported, and a real bias of the probe fails all three.
    const attempts: { probe: Figures; wrk: Figures & { errors: number }; p50: number; p90: number; p95: number }[] = [];
    for (let i = 0; i < 3; i++) {
      const probe = await runProbeOnce();
      const wrk = await runWrk(`http://127.0.0.1:${port}/`, 4);
      expect(wrk.errors).toBe(0);
      expect(wrk.requests).toBeGreaterThan(200);
      const a = { probe, wrk, p50: apart(probe.p50, wrk.p50), p90: apart(probe.p90, wrk.p90), p95: apart(probe.p95, wrk.p95) };
      attempts.push(a);
      process.stderr.write(`load-vs-wrk attempt ${i + 1}: probe ${JSON.stringify(probe)}; wrk ${JSON.stringify(wrk)}\n`);
      if (a.p50 <= 0.1 && a.p90 <= 0.1 && a.p95 <= 0.1) break;
    }
    const last = attempts[attempts.length - 1]!;
    // Both near the server's true distribution (uniform 20–80 ms plus a few ms of overhead) ...
    for (const f of [last.probe, last.wrk]) {
      expect(f.p50).toBeGreaterThan(45);
      expect(f.p50).toBeLessThan(65);
      expect(f.p95).toBeGreaterThan(74);
      expect(f.p95).toBeLessThan(100);
    }
    // ... and within 10% of each other. The tail beyond p95 is not compared: p99 of 300 requests
    // is a matter of 3 of them.
    expect(last.p50, JSON.stringify(attempts)).toBeLessThanOrEqual(0.1);
    expect(last.p90, JSON.stringify(attempts)).toBeLessThanOrEqual(0.1);
    expect(last.p95, JSON.stringify(attempts)).toBeLessThanOrEqual(0.1);
  }, 120_000);
});
