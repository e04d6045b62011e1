import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import { startServer } from './http-server.js';
import { createLogger } from '../core/logger.js';
import { metrics } from '../core/metrics.js';

describe('runner HTTP server', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    ({ server, url } = await startServer({ host: '127.0.0.1', port: 0, log: createLogger('silent') }));
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('answers /healthz', async () => {
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('exposes the declared metrics in Prometheus text format', async () => {
    metrics.hostChecks.inc({ item: 'engine', status: 'ok' });
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^deploylab_host_checks_total\{item="engine",status="ok"\} [1-9]/m);
  });

  it('answers unknown paths with a JSON 404', async () => {
    const res = await fetch(`${url}/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
