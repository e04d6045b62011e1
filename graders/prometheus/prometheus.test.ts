import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hostTool } from '../__helpers__/host-tools.js';
import { closeServer, listenOnLoopback } from '../__helpers__/loopback-server.js';
import { closedPort, tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';
import { prometheusProbe, querySamples } from './prometheus.js';

// The candidate's service exposes metrics with prom-client (a real registry, real exposition).
const reg = new Registry();
const requests = new Counter({ name: 'app_requests_total', help: 'Requests', labelNames: ['route', 'code'], registers: [reg] });
new Gauge({ name: 'app_up', help: 'Up', registers: [reg] }).set(1);
requests.inc({ route: '/v1/chat/completions', code: '200' }, 5);
requests.inc({ route: '/v1/chat/completions', code: '429' }, 2);

let server: Server;
let port: number;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/metrics') {
      reg.metrics().then((text) => res.writeHead(200, { 'content-type': reg.contentType }).end(text), () => res.writeHead(500).end());
    } else if (req.url === '/broken-metrics') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>metrics</body></html>\n');
    } else {
      res.writeHead(404).end();
    }
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
  runProbe(prometheusProbe, seat, { kind: 'prometheus', ...params }, Deadline.after(10_000));
const exposition = { from: 'exposition', target: { port: 8000 } };

describe('prometheus probe on an exposition endpoint', () => {
  it('passes when the metrics are there with the values asked for (matching series summed)', async () => {
    const o = await run({
      source: exposition,
      expect: [
        { metric: 'app_up', op: '==', value: 1 },
        { metric: 'app_requests_total', op: '>=', value: 7 },
        { metric: 'app_requests_total', labels: { code: '429' }, op: '>', value: 0 },
      ],
    });
    expect(o.status, JSON.stringify(o)).toBe('pass');
    expect(o.evidence.find((e) => e.kind === 'metrics')).toMatchObject({ source: '/metrics', omitted: 0 });
  });

  it('fails on a metric that is absent or below the threshold', async () => {
    const o = await run({
      source: exposition,
      expect: [
        { metric: 'llamacpp:tokens_predicted_total', op: 'exists' },
        { metric: 'app_requests_total', labels: { code: '200' }, op: '>', value: 5 },
      ],
    });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('2 of 2');
  });

  it('fails when the endpoint is missing, or serves something that is not an exposition', async () => {
    expect((await run({ source: { ...exposition, path: '/nope' }, expect: [{ metric: 'app_up', op: 'exists' }] })).summary.en).toBe(
      'metrics endpoint /nope answered HTTP 404',
    );
    const o = await run({ source: { ...exposition, path: '/broken-metrics' }, expect: [{ metric: 'app_up', op: 'exists' }] });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('cannot parse the answer');
  });

  it('nothing listening: fail when the harness path is fine, error when it is not', async () => {
    seat.ports.set(9090, await closedPort());
    const params = { source: { from: 'exposition', target: { port: 9090 } }, expect: [{ metric: 'up', op: 'exists' }] };
    expect((await run(params)).status).toBe('fail');
    seat.breakPath(true);
    expect((await run(params)).status).toBe('error');
  });
});

describe('instant-query answers', () => {
  it('reads vector and scalar results; aggregations have no name', () => {
    expect(
      querySamples({
        status: 'success',
        data: { resultType: 'vector', result: [{ metric: { __name__: 'up', job: 'llama' }, value: [1717200000.5, '1'] }, { metric: {}, value: [1717200000.5, 'NaN'] }] },
      }),
    ).toEqual([
      { name: 'up', labels: { job: 'llama' }, value: 1 },
      { name: '', labels: {}, value: NaN },
    ]);
    expect(querySamples({ status: 'success', data: { resultType: 'scalar', result: [1, '2.5'] } })).toEqual([{ name: '', labels: {}, value: 2.5 }]);
    expect(() => querySamples({ status: 'error', errorType: 'bad_data', error: 'parse error' })).toThrow();
  });
});

// A real Prometheus (Debian's package) scraping the service above, asked through its query API.
const PROMETHEUS = '/usr/bin/prometheus';
describe.skipIf(!hostTool(PROMETHEUS, 'prometheus'))('prometheus probe on a real Prometheus server', () => {
  let proc: ChildProcess;
  let dir: string;
  let promPort: number;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deploylab-prom-'));
    promPort = await closedPort();
    await writeFile(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: app\n    static_configs: [{ targets: ['127.0.0.1:${port}'] }]\n`,
    );
    proc = spawn(PROMETHEUS, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ], { stdio: 'ignore' });
    const until = Date.now() + 30_000;
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=up`).then((x) => x.json() as Promise<{ data?: { result?: { value: [number, string] }[] } }>, () => null);
      if (r?.data?.result?.[0]?.value[1] === '1') break;
      if (Date.now() > until) throw new Error('prometheus did not scrape the target in 30 s');
      await new Promise((res) => setTimeout(res, 300));
    }
  }, 60_000);
  afterAll(async () => {
    proc?.kill('SIGTERM');
    await new Promise((r) => proc?.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  });

  it('passes on what the server collected and fails on what it did not', async () => {
    seat.ports.set(9090, promPort);
    const target = { port: 9090 };
    const up = await run({ source: { from: 'query', target, query: 'up{job="app"}' }, expect: [{ metric: 'up', labels: { job: 'app' }, op: '==', value: 1 }] });
    expect(up.status, JSON.stringify(up)).toBe('pass');
    const sum = await run({ source: { from: 'query', target, query: 'sum(app_requests_total)' }, expect: [{ metric: 'app_requests_total', op: '==', value: 7 }] });
    expect(sum.status, JSON.stringify(sum)).toBe('pass');
    const none = await run({ source: { from: 'query', target, query: 'up{job="llama"}' }, expect: [{ metric: 'up', op: 'exists' }] });
    expect(none.status).toBe('fail');
  });
});
