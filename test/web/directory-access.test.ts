import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createLogger } from '../../runner/core/logger.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { startServer } from '../../runner/server/http-server.js';
import { SeatDirectory } from '../../runner/sessions/seat-directory.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import { openStore, type DB } from '../../runner/store/db.js';
import { DEFAULT_TASKS_ROOT } from '../../runner/tasks/loader.js';
import { createWebApp, type WebApp } from '../../runner/web/app.js';
import { DirectoryAccess } from '../../runner/web/directory-access.js';
import { CLOSE } from '../../runner/web/terminal-bridge.js';
import { hasEngine } from '../helpers/docker-env.js';
import { requireImage } from '../helpers/images.js';

/** The web login wired to the real session store: a session opened and provisioned by the session service. */
describe.skipIf(!hasEngine)('candidate access through the session store (SeatDirectory)', () => {
  const id = `webdir-${randomBytes(3).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'dl-webdir-'));
  const driver = new DockerDriver();
  let db: DB;
  let service: SessionService;
  let server: Server;
  let url: string;
  let web: WebApp;
  let code: string;
  let seatId: string;

  beforeAll(async () => {
    db = openStore(dataDir);
    service = new SessionService({ db, driver, dataDir });
    const image = await requireImage('workspace-cpu');
    const { seats, codes } = service.open({
      paperId: 'junior-v1',
      room: 'web-test',
      roster: [{ line: 2, candidateNo: '2026001', name: '张三', idNumber: '11010519491231002X' }],
      images: { workspaceCpu: image, toolbox: null },
      baseUrl: 'http://127.0.0.1:8700/',
      id,
    });
    code = codes[seats[0]!.seat_id]!;
    seatId = seats[0]!.seat_id;
    const prov = await service.provision(id);
    expect(prov.failed).toEqual([]);
    await service.start(id);
    web = createWebApp({ access: new DirectoryAccess(new SeatDirectory(db), DEFAULT_TASKS_ROOT), driver, log: createLogger('silent'), freezeCheckMs: 500 });
    ({ server, url } = await startServer({ host: '127.0.0.1', port: 0, log: createLogger('silent'), web }));
  }, 240_000);

  afterAll(async () => {
    web?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await driver.sweep({ session: id }).catch(() => undefined);
    db?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  let cookie = '';

  it('a printed code logs in once (typed in lower case with a dash); the page shows the paper’s tasks in order', async () => {
    const typed = `${code.slice(0, 4)}-${code.slice(4)}`.toLowerCase();
    const res = await fetch(`${url}/login`, { method: 'POST', body: new URLSearchParams({ code: typed }), redirect: 'manual' });
    expect(res.status).toBe(303);
    cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const again = await fetch(`${url}/login`, { method: 'POST', body: new URLSearchParams({ code }), redirect: 'manual' });
    expect(again.status).toBe(401); // one-time code
    const html = await (await fetch(`${url}/exam`, { headers: { cookie } })).text();
    expect([...html.matchAll(/class="tab[^"]*" data-task="([a-z-]+)"/g)].map((m) => m[1])).toEqual(service.spec(id).tasks);
    expect(html).toContain('使用 llama-server 在本地提供量化模型服务');
    expect(html).toContain('2026001 张三');
    expect(html).toMatch(/data-ends-at="\d{4}-/);
  });

  it('the terminal opens in the session’s seat; pausing the seat closes it with the paused notice', async () => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws/seats/${seatId}/tasks/serve/terminal`, { headers: { cookie, origin: url } });
    let out = '';
    const statuses: { reason?: string; message?: { zh: string } }[] = [];
    ws.on('message', (d, bin) => (bin ? (out += d.toString()) : statuses.push(JSON.parse(d.toString()))));
    const closed = new Promise<number>((r) => ws.on('close', (c) => r(c)));
    await new Promise((r, j) => ws.on('open', r).on('error', j));
    ws.send(JSON.stringify({ t: 'in', d: 'echo dir-$((40+2))\r' }));
    // The seat's shell may be slow to start on a busy host: wait for its answer, bounded.
    for (const until = Date.now() + 30_000; !/dir-42/.test(out) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain('dir-42');
    await service.pause(id);
    expect(await closed).toBe(CLOSE.paused);
    expect(statuses.at(-1)?.message?.zh).toContain('暂停');
    const state = (await (await fetch(`${url}/api/candidate/state`, { headers: { cookie } })).json()) as { closed: string };
    expect(state.closed).toBe('paused');
    const page = await (await fetch(`${url}/exam`, { headers: { cookie } })).text();
    expect(page).toMatch(/<p id="frozen-banner" class="error" role="alert">.*<span data-reason="paused">监考老师已暂停/);
    await service.resume(id);
  }, 60_000);

  it('`deploylab seat shell SESSION SEAT --task ID` enters that task’s sandbox', async () => {
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      const child = execFile('node', ['bin/deploylab.js', 'seat', 'shell', id, seatId, '--task', 'quantize'], { timeout: 60_000 }, (err, stdout) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout }),
      );
      child.stdin!.end('ls /opt/models; exit 3\n');
    });
    expect(r.stdout).toContain('tiny-llama-f16.gguf');
    expect(r.code).toBe(3);
  }, 60_000);

  it('a reissued code logs in; the old code and the browser logged in with it no longer do', async () => {
    const { codes } = service.reissueCodes(id, { seat: seatId });
    expect(codes[seatId]).toMatch(/^[A-Z2-9]{8}$/);
    expect((await fetch(`${url}/api/candidate/state`, { headers: { cookie } })).status).toBe(401);
    const old = await fetch(`${url}/login`, { method: 'POST', body: new URLSearchParams({ code }), redirect: 'manual' });
    expect(old.status).toBe(401);
    const res = await fetch(`${url}/login`, { method: 'POST', body: new URLSearchParams({ code: codes[seatId]! }), redirect: 'manual' });
    expect(res.status).toBe(303);
    const fresh = res.headers.get('set-cookie')!.split(';')[0]!;
    const state = (await (await fetch(`${url}/api/candidate/state`, { headers: { cookie: fresh } })).json()) as { seat: string };
    expect(state.seat).toBe(seatId);
  });
});
