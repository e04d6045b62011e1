import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback } from './__helpers__/loopback-server.js';
import { closedPort, tempSeat, type TempSeat } from './__helpers__/temp-seat.js';
import { loadProbe, percentile } from './load.js';
import { Deadline, runProbe, type ProbeOutcome } from './probe.js';

// The candidate's service on loopback: /ok answers after 20 ms; /flaky fails every third request.
let server: Server;
let port: number;
let flaky = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    if (req.url === '/ok') setTimeout(() => res.writeHead(200).end('ok'), 20);
    else if (req.url === '/flaky') res.writeHead(++flaky % 3 === 0 ? 500 : 200).end();
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

  it('nothing listening: fail; harness path down: error; a ratio to the reference needs the orchestrator', async () => {
    seat.ports.set(8000, await closedPort());
    expect((await run({ path: '/ok', requests: 2, concurrency: 1, expect: {} })).status).toBe('fail');
    seat.breakPath(true);
    expect((await run({ path: '/ok', requests: 2, concurrency: 1, expect: {} })).status).toBe('error');
    const ratio = await run({ path: '/ok', requests: 2, concurrency: 1, expect: { maxP95RatioToReference: 1.5 } });
    expect(ratio.error?.code).toBe('PROBE_NEEDS_REFERENCE');
  });

  it('nearest-rank percentiles', () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile(Array.from({ length: 20 }, (_, i) => i + 1), 95)).toBe(19);
    expect(percentile([], 95)).toBeNull();
  });
});
