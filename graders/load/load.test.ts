import { createServer, type Server } from 'node:http';
import { getPriority, setPriority } from 'node:os';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback } from '../__helpers__/loopback-server.js';
import { closedPort, tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { loadProbe, percentile } from './load.js';
import { runLoad } from './load-client.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';

// The candidate's service on loopback: /ok answers after 20 ms; /flaky fails every third request;
// /hang answers after 2 s; /cut drops the connection half-way through the body.
let server: Server;
let port: number;
let flaky = 0;
let hits = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    hits++;
    if (req.url === '/ok') setTimeout(() => res.writeHead(200).end('ok'), 20);
    else if (req.url === '/flaky') res.writeHead(++flaky % 3 === 0 ? 500 : 200).end();
    else if (req.url === '/hang') setTimeout(() => res.writeHead(200).end('late'), 2_000);
    else if (req.url === '/cut') {
      // Headers and part of the body, then the connection drops.
      res.writeHead(200, { 'content-length': '100' }).write('partial');
      setTimeout(() => res.destroy(), 10);
    }
    else res.writeHead(404).end();
  });
  port = await listenOnLoopback(server);
});
afterAll(() => closeServer(server));

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
  seat.ports.set(8000, port);
});
afterEach(async () => {
  await seat.cleanup();
});

const run = (params: Record<string, unknown>): Promise<ProbeOutcome> =>
  runProbe(loadProbe, seat, { kind: 'load', target: { port: 8000 }, method: 'GET', ...params }, Deadline.after(20_000));
const result = (o: ProbeOutcome): Record<string, unknown> => {
  const n = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'load result');
  return (n?.kind === 'note' ? n.data : {}) ?? {};
};

describe('load probe', () => {
  it('passes a service that keeps up: 40 requests at concurrency 4, p95 and throughput measured', async () => {
    const o = await run({ path: '/ok', requests: 40, concurrency: 4, expect: { maxP95Ms: 500, minThroughputRps: 20 } });
    expect(o.status, JSON.stringify(o)).toBe('pass');
    const r = result(o);
    expect(r['statuses']).toEqual({ '200': 40 });
    expect(r['p95Ms'] as number).toBeGreaterThanOrEqual(19);
    // 4 in flight, 20 ms each: at most ~200 req/s.
    expect(r['throughputRps'] as number).toBeLessThan(220);
  });

  it('fails on errors above the allowed rate and on a p95 that is too high', async () => {
    const o = await run({ path: '/flaky', requests: 30, concurrency: 3, expect: { maxErrorRate: 0.1 } });
    expect(o.status).toBe('fail');
    expect(result(o)['statuses']).toEqual({ '200': 20, '500': 10 });
    const slow = await run({ path: '/ok', requests: 10, concurrency: 2, expect: { maxP95Ms: 5 } });
    expect(slow.status).toBe('fail');
    expect(slow.summary.en).toContain('(p95)');
  });

  it('nothing listening: fail; harness path down: error; a ratio needs a reference the harness can start', async () => {
    seat.ports.set(8000, await closedPort());
    const refused = await run({ path: '/ok', requests: 2, concurrency: 1, expect: {} });
    expect(refused.status).toBe('fail');
    expect(refused.summary.en).toContain('ECONNREFUSED');
    seat.breakPath(true);
    expect((await run({ path: '/ok', requests: 2, concurrency: 1, expect: {} })).status).toBe('error');
    seat.breakPath(false);
    seat.ports.set(8000, port);
    // A ratio without a reference is a task error; a reference on a harness without a toolbox cannot be measured.
    expect((await run({ path: '/ok', requests: 2, concurrency: 1, expect: { maxP95RatioToReference: 1.5 } })).error?.code).toBe('PROBE_PARAMS_INVALID');
    const ratio = await run({ path: '/ok', requests: 2, concurrency: 1, reference: { command: ['true'], port: 8080 }, expect: { maxP95RatioToReference: 1.5 } });
    expect(ratio.status).toBe('error');
    expect(ratio.error?.code).toBe('PROBE_NEEDS_REFERENCE');
  });

  it('a service slower than the per-request allowance: timeouts are the candidate’s (fail)', async () => {
    const o = await run({ path: '/hang', requests: 2, concurrency: 2, timeoutMs: 300, expect: {} });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('did not answer within 300 ms');
  });

  it('a body cut short is no response; the harness deadline passing is an error, not the candidate’s', async () => {
    const cut = await run({ path: '/cut', requests: 3, concurrency: 1, expect: {} });
    expect(cut.status).toBe('fail');
    expect(cut.summary.en).toContain('ECONNRESET');
    const deadline = Deadline.after(300);
    const t0 = Date.now();
    const o = await runProbe(loadProbe, seat, { kind: 'load', target: { port: 8000 }, method: 'GET', path: '/hang', requests: 4, concurrency: 2, expect: {} }, deadline);
    deadline.dispose();
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_DEADLINE');
    expect(Date.now() - t0).toBeLessThan(1_500);
  });

  it('warm-up requests reach the service but are not counted', async () => {
    const before = hits;
    const o = await run({ path: '/ok', requests: 10, concurrency: 2, warmupRequests: 5, expect: {} });
    expect(result(o)['statuses']).toEqual({ '200': 10 });
    expect(result(o)['warmupRequests']).toBe(5);
    expect(hits - before).toBe(15);
  });

  it('reports p50/p90/p95/p99 and states the method', async () => {
    const o = await run({ path: '/ok', requests: 20, concurrency: 2, expect: {} });
    const r = result(o);
    for (const k of ['p50Ms', 'p90Ms', 'p95Ms', 'p99Ms', 'maxMs']) expect(r[k] as number, k).toBeGreaterThanOrEqual(19);
    expect(r['p50Ms'] as number).toBeLessThanOrEqual(r['p90Ms'] as number);
    expect(r['p99Ms'] as number).toBeLessThanOrEqual(r['maxMs'] as number);
    expect(r['method']).toMatch(/nearest-rank.*end of the response body.*harness host/);
  });

  it('measures at raised CPU priority where the harness may, and gives it back, also when runs overlap', async () => {
    const before = getPriority();
    let canRaise = true;
    try {
      setPriority(-10);
      setPriority(before);
    } catch {
      canRaise = false;
    }
    const target = { url: new URL(`http://127.0.0.1:${port}/ok`), method: 'GET', headers: {} };
    const deadline = Deadline.after(30_000);
    const during: number[] = [];
    const sample = setInterval(() => during.push(getPriority()), 5);
    try {
      // The short run ends while the long one still measures: the long one keeps the raise.
      const long = runLoad(target, { requests: 40, concurrency: 2, timeoutMs: 5000 }, deadline);
      const short = await runLoad(target, { requests: 4, concurrency: 2, timeoutMs: 5000 }, deadline);
      const afterShort = getPriority();
      const l = await long;
      clearInterval(sample);
      expect([short.clientPriorityRaised, l.clientPriorityRaised]).toEqual([canRaise, canRaise]);
      if (canRaise) {
        const raised = Math.min(before, -10);
        expect(afterShort).toBe(raised);
        expect(during.length).toBeGreaterThan(0);
        expect(during.every((n) => n === raised)).toBe(true);
      }
      expect(getPriority()).toBe(before);
      // The evidence says how the client ran.
      const o = await run({ path: '/ok', requests: 4, concurrency: 2, expect: {} });
      expect(result(o)['clientPriorityRaised']).toBe(canRaise);
      expect(result(o)['method']).toMatch(/raised CPU priority/);
      expect(getPriority()).toBe(before);
    } finally {
      clearInterval(sample);
      deadline.dispose();
    }
  });

  it('nearest-rank percentiles', () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile(Array.from({ length: 20 }, (_, i) => i + 1), 95)).toBe(19);
    expect(percentile([], 95)).toBeNull();
  });
});
