import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { startServer } from '../server/http-server.js';
import { webAppFromConfig } from './from-config.js';

describe('webAppFromConfig (what `deploylab serve` mounts)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dl-webcfg-'));
  let server: Server;
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const config = loadConfig({ env: { DEPLOYLAB_DATA_DIR: dataDir, DEPLOYLAB_SERVER_EXAMINER_TOKEN: 'tok-0123456789abcdef-0123456789' }, file: undefined });
    const app = webAppFromConfig(config, createLogger('silent'));
    close = app.close;
    ({ server, url } = await startServer({ host: '127.0.0.1', port: 0, log: createLogger('silent'), web: app.web }));
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves the login page, refuses an unknown code against the real (empty) store, keeps /healthz', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${url}/`)).text()).toContain('考生登录');
    const res = await fetch(`${url}/login`, { method: 'POST', body: new URLSearchParams({ code: 'ABCD2345' }), redirect: 'manual' });
    expect(res.status).toBe(401);
  });

  it('takes the examiner token from the config (DEPLOYLAB_SERVER_EXAMINER_TOKEN)', async () => {
    expect((await fetch(`${url}/api/examiner/seats`)).status).toBe(401);
    expect((await fetch(`${url}/api/examiner/seats`, { headers: { authorization: 'Bearer tok-0123456789abcdef-0123456789' } })).status).not.toBe(401);
  });
});
