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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempSeat } from '../../graders/__helpers__/temp-seat.js';
import { loadProbe } from '../../graders/load/load.js';
import { Deadline, runProbe } from '../../graders/probe.js';
import { hasWrk, runWrk, startPacedServer, WRK, type LatencyFigures as Figures } from '../helpers/paced-server.js';

if (!hasWrk) {
  if (process.env.CI === 'true') throw new Error(`CI=true but ${WRK} is missing: run \`deploylab host prepare --test-tools\` (package wrk)`);
  process.stderr.write(`\n!!! ${WRK} missing: the load-vs-wrk cross-check is SKIPPED. Install it: apt-get install -y wrk !!!\n\n`);
}

const CONCURRENCY = 4;

let port: number;
let stop: () => void;
beforeAll(async () => {
  ({ port, stop } = await startPacedServer(20, 60));
});
afterAll(() => stop());

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
      const wrk = await runWrk(`http://127.0.0.1:${port}/`, 4, CONCURRENCY);
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
