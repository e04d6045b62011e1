import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../runner/core/config.js';
import { createLogger } from '../../runner/core/logger.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { startServer } from '../../runner/server/http-server.js';
import { SeatDirectory } from '../../runner/sessions/seat-directory.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import { openStore, type DB } from '../../runner/store/db.js';
import { createWebApp, SESSION_COOKIE, type WebApp } from '../../runner/web/app.js';
import { createDashboard, type Dashboard } from '../../runner/web/dashboard.js';
import type { RoomSnapshot } from '../../runner/web/dashboard-room.js';
import { DirectoryAccess } from '../../runner/web/directory-access.js';
import { webAppFromConfig } from '../../runner/web/from-config.js';
import { hasEngine } from '../helpers/docker-env.js';
import { images, MINI_PAPER, MINI_TASKS, miniTasksRoot } from '../sessions/helpers.js';
import { hasChromium, launchChromium } from './chromium.js';

const TOKEN = randomBytes(24).toString('hex');
const HOSTILE_NAME = '测试甲<img src=x onerror="window.__pwned=1">';
const HOSTILE_ROOM = 'A101<script>window.__pwned=2</script>';
const ID_NUMBER = '11010519491231002X';

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The examiners' room dashboard on a real two-seat session of the four-task mini paper. */
describe.skipIf(!hasEngine || !hasChromium)('examiner room dashboard', () => {
  const id = `dash-${randomBytes(3).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'dl-dash-'));
  const tasksRoot = miniTasksRoot();
  const driver = new DockerDriver();
  const log = createLogger('silent');
  const shots = mkdtempSync(join(tmpdir(), 'dl-dash-shots-'));
  let db: DB;
  let svc: SessionService;
  let dashboard: Dashboard;
  let web: WebApp;
  let server: Server;
  let url: string;
  let candidateCookie: string;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  let page: Page;
  const bearer = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    db = openStore(dataDir);
    svc = new SessionService({ db, driver, dataDir });
    svc.open({
      id,
      paperId: MINI_PAPER,
      tasksRoot,
      room: HOSTILE_ROOM,
      roster: [
        { line: 2, candidateNo: 'T0001', name: HOSTILE_NAME, idNumber: ID_NUMBER },
        { line: 3, candidateNo: 'T0002', name: '测试乙', idNumber: '110105194912310038' },
      ],
      images: await images(),
      baseUrl: 'http://127.0.0.1:8700/',
    });
    const t0 = Date.now();
    expect(await svc.provision(id, { concurrency: 2 })).toEqual({ ready: ['s01', 's02'], failed: [] });
    process.stderr.write(`dashboard test: 2 seats x ${MINI_TASKS.length} tasks provisioned in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    await svc.start(id);
    dashboard = createDashboard({ sessions: svc, driver, log, examinerToken: TOKEN, feed: { pollMs: 500, engineEveryMs: 1000, maxStreams: 3 } });
    web = createWebApp({ access: new DirectoryAccess(new SeatDirectory(db), tasksRoot), driver, log, examinerToken: TOKEN, dashboard });
    ({ server, url } = await startServer({ host: '127.0.0.1', port: 0, log, web }));
    // A real candidate login of seat s01, as the login page issues it.
    candidateCookie = `${SESSION_COOKIE}=${new SeatDirectory(db).bindSeatSession({ session: id, seat: 's01' })}`;
  }, 300_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    web?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await driver.sweep({ session: id }).catch(() => undefined);
    db?.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(tasksRoot, { recursive: true, force: true });
  }, 120_000);

  it('refuses a candidate’s session cookie on the page, the state, the event stream and the actions', async () => {
    // The cookie is a live candidate login…
    expect((await fetch(`${url}/api/candidate/state`, { headers: { cookie: candidateCookie } })).status).toBe(200);
    // …and counts for nothing under /examiner.
    const pageRes = await fetch(`${url}/examiner/sessions/${id}`, { headers: { cookie: candidateCookie } });
    expect(pageRes.status).toBe(401);
    const html = await pageRes.text();
    expect(html).toContain('监考登录');
    expect(html).not.toContain('测试乙');
    for (const kind of ['state', 'events']) {
      const r = await fetch(`${url}/examiner/sessions/${id}/${kind}`, { headers: { cookie: candidateCookie } });
      expect(r.status, kind).toBe(401);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('EXAMINER_UNAUTHORIZED');
    }
    const act = await fetch(`${url}/examiner/sessions/${id}/actions`, {
      method: 'POST',
      headers: { cookie: candidateCookie, origin: url, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'pause', seat: 's01' }),
    });
    expect(act.status).toBe(401);
    expect(svc.seat(id, 's01').state).toBe('running');
    // A wrong token is no better, on the login form or as a bearer.
    expect((await fetch(`${url}/examiner/login`, { method: 'POST', body: new URLSearchParams({ token: 'not-the-token' }), redirect: 'manual' })).status).toBe(401);
    expect((await fetch(`${url}/examiner/sessions/${id}/state`, { headers: { authorization: 'Bearer not-the-token' } })).status).toBe(401);

    // The examiner's own cookie acts only from this origin.
    const login = await fetch(`${url}/examiner/login`, { method: 'POST', body: new URLSearchParams({ token: TOKEN }), redirect: 'manual' });
    expect(login.status).toBe(303);
    const set = login.headers.get('set-cookie')!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Path=\/examiner/);
    const examinerCookie = set.split(';')[0]!;
    expect(examinerCookie).not.toContain(TOKEN);
    const cross = await fetch(`${url}/examiner/sessions/${id}/actions`, {
      method: 'POST',
      headers: { cookie: examinerCookie, origin: 'http://elsewhere.example', 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'pause', seat: 's01' }),
    });
    expect(cross.status).toBe(403);
    expect(svc.seat(id, 's01').state).toBe('running');
    expect((await fetch(`${url}/examiner/sessions/${id}/state`, { headers: { cookie: examinerCookie } })).status).toBe(200);
    // The list of sessions links this one; the room name is escaped there too.
    const list = await (await fetch(`${url}/examiner`, { headers: { cookie: examinerCookie } })).text();
    expect(list).toContain(`href="/examiner/sessions/${id}"`);
    expect(list).toContain('A101&lt;script&gt;');
    expect(list).not.toContain('<script>window');
  });

  it('the state for tools (bearer): every seat with its task sandboxes, and no ID number or access code', async () => {
    const r = await fetch(`${url}/examiner/sessions/${id}/state`, { headers: bearer });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).not.toContain(ID_NUMBER);
    expect(text).not.toMatch(/access_code|id_number/);
    const snap = JSON.parse(text) as RoomSnapshot;
    expect(snap.session).toMatchObject({ id, room: HOSTILE_ROOM, state: 'running' });
    expect(snap.seats.map((s) => [s.seat, s.candidateNo, s.name, s.state])).toEqual([
      ['s01', 'T0001', HOSTILE_NAME, 'running'],
      ['s02', 'T0002', '测试乙', 'running'],
    ]);
    expect(snap.seats[0]!.sandboxes.map((b) => [b.task, b.state])).toEqual(MINI_TASKS.map((t) => [t, 'running']));
    expect(snap.seats[0]!.clock.remainingMs).toBeGreaterThan(89 * 60_000);
    expect(snap.seats[0]!.clock.runningSince).not.toBeNull();
  });

  it('logs in with the token in Chromium, lists the seats as text, and follows a pause made elsewhere without a reload', async () => {
    ({ context, profile } = await launchChromium());
    page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${url}/examiner/sessions/${id}`);
    expect(await page.locator('h1').innerText()).toContain('监考登录');
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    await page.waitForURL(`${url}/examiner/sessions/${id}`);
    const rows = page.locator('#seats tbody tr');
    await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(2);
    await expect.poll(() => page.locator('#live').getAttribute('data-live')).toBe('live');

    // Roster and room strings are shown as text: nothing of them runs or becomes markup.
    expect(await page.locator('tr[data-seat=s01] td.cand-name').innerText()).toBe(HOSTILE_NAME);
    expect(await page.locator('#room-name').innerText()).toBe(HOSTILE_ROOM);
    expect(await page.locator('#dashboard img, #dashboard script').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();

    expect(await page.locator('#room-state').innerText()).toContain('考试中');
    expect(await page.locator('.room-actions button[data-action=pause]').isVisible()).toBe(true);
    expect(await page.locator('.room-actions button[data-action=resume]').isVisible()).toBe(false);
    expect(await page.locator('tr[data-seat=s02] td.state').innerText()).toContain('考试中');
    expect(await page.locator('tr[data-seat=s01] td.boxes .box').count()).toBe(MINI_TASKS.length);
    expect(await page.locator('tr[data-seat=s01] td.term').innerText()).toContain('未连接');
    process.stderr.write(`dashboard test screenshots: ${shots}\n`);
    await page.screenshot({ path: join(shots, '1-running.png') });
    const before = await page.locator('tr[data-seat=s02] td.clock .time').innerText();
    expect(before).toMatch(/^01:(29|30):\d\d$/);

    // Marks this document: a reload would lose it.
    await page.evaluate(() => ((window as unknown as { __same?: string }).__same = 'yes'));
    // As the CLI or another tool would: pause s02 through the service, not through this page.
    await svc.pause(id, 's02');
    await expect.poll(() => page.locator('tr[data-seat=s02] td.state').innerText(), { timeout: 10_000 }).toContain('已暂停');
    expect(await page.locator('tr[data-seat=s02]').getAttribute('data-state')).toBe('paused');
    expect(await page.evaluate(() => (window as unknown as { __same?: string }).__same)).toBe('yes');
    // A paused clock stands still on the page.
    const paused = await page.locator('tr[data-seat=s02] td.clock .time').innerText();
    await new Promise((r) => setTimeout(r, 1500));
    expect(await page.locator('tr[data-seat=s02] td.clock .time').innerText()).toBe(paused);
  }, 90_000);

  it('a seat the disk watch stops is shown to the examiner and to the candidate; resume lets it go on', async () => {
    // The same store under a 64 MiB quota: s01 writes 70 MiB, one sample stops it.
    const watch = new SessionService({ db, driver, dataDir, disk: { ...svc.disk, seatQuotaMiB: 64, reserveGiB: 0 } });
    const box = svc.sandboxes(id, 's01')[0]!.ref;
    expect((await driver.exec(box, { cmd: ['sh', '-c', 'head -c 73400320 /dev/zero > /workspace/fill && sync'] })).exitCode).toBe(0);
    expect((await watch.diskCheck(id)).halted.map((h) => [h.seat, h.reason])).toEqual([['s01', 'quota']]);
    await expect.poll(() => page.locator('tr[data-seat=s01] td.state .disk-halted').count(), { timeout: 10_000 }).toBe(1);
    expect(await page.locator('tr[data-seat=s01] td.state').innerText()).toMatch(/已暂停[\s\S]*磁盘 \d+\/64 MiB：进程已暂停/);
    expect(await page.locator('tr[data-seat=s02] td.state .disk').count()).toBe(0);
    const state = (await (await fetch(`${url}/api/candidate/state`, { headers: { cookie: candidateCookie } })).json()) as { closed: string; disk: { halted: boolean; level: string; quotaBytes: number } };
    expect(state).toMatchObject({ closed: 'paused', disk: { halted: true, level: 'over', quotaBytes: 64 << 20 } });
    await page.screenshot({ path: join(shots, '1b-disk-halted.png') });
    await svc.resume(id, 's01');
    expect((await driver.exec(box, { cmd: ['rm', '-f', '/workspace/fill'] })).exitCode).toBe(0);
    await watch.diskCheck(id);
    await expect.poll(() => page.locator('tr[data-seat=s01] td.state .disk').count(), { timeout: 10_000 }).toBe(0);
    expect(await page.locator('tr[data-seat=s01] td.state').innerText()).toContain('考试中');
  }, 90_000);

  it('the buttons act through the dashboard: resume, extend and end a seat; End needs a second click', async () => {
    await page.locator('tr[data-seat=s02] button[data-action=resume]').click();
    await expect.poll(() => page.locator('tr[data-seat=s02] td.state').innerText(), { timeout: 10_000 }).toContain('考试中');
    expect(svc.seat(id, 's02').state).toBe('running');
    // The answer to the button's request may land after the stream's update.
    await expect.poll(() => page.locator('#notice').innerText(), { timeout: 10_000 }).toContain('已执行');

    await page.fill('#room-minutes', '7');
    await page.locator('tr[data-seat=s01] button[data-action=extend]').click();
    await expect.poll(() => page.locator('tr[data-seat=s01] td.clock').innerText(), { timeout: 10_000 }).toContain('+7 分钟');
    expect(svc.seat(id, 's01').allowed_ms).toBe(97 * 60_000);
    expect(await page.locator('tr[data-seat=s02] td.clock').innerText()).not.toContain('分钟');

    // A candidate terminal shows up as connected; its keystrokes as activity.
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws/seats/s01/tasks/serve/terminal`, { headers: { cookie: candidateCookie, origin: url } });
    await new Promise((r, j) => ws.on('open', r).on('error', j));
    await expect.poll(() => page.locator('tr[data-seat=s01] td.term').innerText(), { timeout: 10_000 }).toContain('已连接');
    ws.close();
    await expect.poll(() => page.locator('tr[data-seat=s01] td.term').innerText(), { timeout: 10_000 }).toContain('未连接');
    expect(await page.locator('tr[data-seat=s01] td.activity').innerText()).toMatch(/刚刚|分钟前/);

    // One seat hands in: its own End, confirmed by a second click, freezes it alone.
    const endSeat = page.locator('tr[data-seat=s02] button[data-action=end]');
    await endSeat.click();
    expect(await page.locator('#notice').innerText()).toContain('考位 s02 将被冻结');
    expect(svc.seat(id, 's02').state).toBe('running');
    await page.locator('tr[data-seat=s02] button[data-action=end]').click();
    await expect.poll(() => page.locator('tr[data-seat=s02] td.state').innerText(), { timeout: 30_000 }).toContain('已冻结');
    expect(svc.seats(id).map((s) => s.state)).toEqual(['running', 'frozen']);
    expect(svc.session(id).state).toBe('running');
    expect(await page.locator('tr[data-seat=s02] button[data-action=end]').count()).toBe(0);

    const end = page.locator('.room-actions button[data-action=end]');
    await end.click();
    expect(await page.locator('#notice').innerText()).toContain('再次点击');
    await new Promise((r) => setTimeout(r, 600));
    expect(svc.session(id).state).toBe('running');
    await end.click();
    // The answer comes once every seat is frozen; the page may show the seats freezing one by one before.
    await expect.poll(() => page.locator('#notice').innerText(), { timeout: 30_000 }).toContain('已执行');
    expect(svc.seats(id).map((s) => s.state)).toEqual(['frozen', 'frozen']);
    await expect.poll(() => page.locator('#room-state').innerText(), { timeout: 10_000 }).toContain('已冻结');
    expect(await page.locator('.room-actions button[data-action=pause]').isVisible()).toBe(false);
    for (const seat of ['s01', 's02']) await expect.poll(() => page.locator(`tr[data-seat=${seat}] td.state`).innerText(), { timeout: 10_000 }).toContain('已冻结');
    // The engine's view follows: the sandboxes carry the freeze marker.
    await expect.poll(() => page.locator('tr[data-seat=s02] td.boxes .sb-frozen').count(), { timeout: 10_000 }).toBe(MINI_TASKS.length);
  }, 90_000);

  it('grading shows progress, then the score', async () => {
    const t0 = Date.now();
    const g = await svc.grade(id);
    expect(g.errors).toEqual([]);
    process.stderr.write(`dashboard test: 2 untouched seats graded in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    const cell = page.locator('tr[data-seat=s01] td.grading');
    // The stream may still be showing a snapshot from during grading: wait for every check counted.
    await expect.poll(() => cell.innerText(), { timeout: 10_000 }).toMatch(/(\d+)\/\1/);
    expect(await cell.innerText()).toMatch(/已完成|未完成/);
    await expect.poll(() => page.locator('tr[data-seat=s01] td.score').innerText(), { timeout: 10_000 }).toContain('不合格');
    expect(await page.locator('tr[data-seat=s01] td.score strong').innerText()).toBe('0.0');
    await page.screenshot({ path: join(shots, '2-graded.png') });
  }, 300_000);

  it('the event stream is bounded: a limit of open streams, and it closes when the page closes', async () => {
    expect(dashboard.streams).toBe(1);
    await context!.close();
    context = undefined;
    await until('the page’s stream to close', async () => dashboard.streams === 0, 10_000);

    const aborts: AbortController[] = [];
    const open = async (): Promise<number> => {
      const a = new AbortController();
      aborts.push(a);
      const r = await fetch(`${url}/examiner/sessions/${id}/events`, { headers: bearer, signal: a.signal });
      if (r.status === 200) {
        expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
        const reader = r.body!.getReader();
        const first = new TextDecoder().decode((await reader.read()).value);
        expect(first).toMatch(/event: snapshot\ndata: \{/);
        reader.releaseLock();
      } else await r.text();
      return r.status;
    };
    expect([await open(), await open(), await open()]).toEqual([200, 200, 200]);
    expect(await open()).toBe(503);
    aborts[0]!.abort();
    await until('an aborted stream to be let go', async () => dashboard.streams === 2, 5000);
    expect(await open()).toBe(200);
    for (const a of aborts) a.abort();
    await until('every stream to be let go', async () => dashboard.streams === 0, 5000);
  }, 60_000);

  it('a stream ends after its lifetime (the page’s EventSource reconnects)', async () => {
    const short = createDashboard({ sessions: svc, driver, log, examinerToken: TOKEN, feed: { maxStreamMs: 400 } });
    const shortWeb = createWebApp({ access: new DirectoryAccess(new SeatDirectory(db), tasksRoot), driver, log, dashboard: short });
    const s = await startServer({ host: '127.0.0.1', port: 0, log, web: shortWeb });
    try {
      const t0 = Date.now();
      const r = await fetch(`${s.url}/examiner/sessions/${id}/events`, { headers: bearer });
      const body = await r.text(); // resolves only when the server ends the stream
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(body).toMatch(/^retry: \d+\n\nevent: snapshot\n/);
      expect(short.streams).toBe(0);
    } finally {
      shortWeb.close();
      await new Promise<void>((r) => s.server.close(() => r()));
    }
  });
});

describe('the dashboard as `deploylab serve` mounts it', () => {
  async function served(token: string, fn: (url: string) => Promise<void>): Promise<void> {
    const dataDir = mkdtempSync(join(tmpdir(), 'dl-dashcfg-'));
    const config = loadConfig({ env: { DEPLOYLAB_DATA_DIR: dataDir, DEPLOYLAB_SERVER_EXAMINER_TOKEN: token }, file: undefined });
    const app = webAppFromConfig(config, createLogger('silent'));
    const s = await startServer({ host: '127.0.0.1', port: 0, log: createLogger('silent'), web: app.web });
    try {
      await fn(s.url);
    } finally {
      await new Promise<void>((r) => s.server.close(() => r()));
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  it('asks for the examiner token from the config, and lists the (empty) store once given it', async () => {
    await served('tok-dash-0123456789abcdefgh', async (url) => {
      expect(await (await fetch(`${url}/examiner`)).text()).toContain('监考登录');
      const login = await fetch(`${url}/examiner/login`, { method: 'POST', body: new URLSearchParams({ token: 'tok-dash-0123456789abcdefgh' }), redirect: 'manual' });
      expect(login.status).toBe(303);
      const list = await fetch(`${url}/examiner`, { headers: { cookie: login.headers.get('set-cookie')!.split(';')[0]! } });
      expect(await list.text()).toContain('还没有场次');
      expect((await fetch(`${url}/examiner/sessions/none-such/state`, { headers: { authorization: 'Bearer tok-dash-0123456789abcdefgh' } })).status).toBe(404);
    });
  });

  it('wrong bearer tokens are counted per address across the examiner API and the dashboard: past 10, even the right one waits', async () => {
    const token = randomBytes(24).toString('hex');
    await served(token, async (url) => {
      const seats = (t: string) => fetch(`${url}/api/examiner/seats`, { headers: { authorization: `Bearer ${t}` } });
      const state = (t: string) => fetch(`${url}/examiner/sessions/none-such/state`, { headers: { authorization: `Bearer ${t}` } });
      expect((await state(token)).status).toBe(404); // the right token gets through and uses up nothing
      const wrong: number[] = [];
      for (let i = 0; i < 6; i++) wrong.push((await seats(`${token.slice(0, -2)}z${i}`)).status);
      for (let i = 0; i < 4; i++) wrong.push((await state(`guess-${i}-${token}`)).status);
      expect(wrong).toEqual(Array(10).fill(401));
      const late = await seats(`guess-10-${token}`);
      expect(late.status).toBe(429);
      const right = await state(token);
      expect(right.status).toBe(429);
      expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await right.json()) as { error: { code: string } }).error.code).toBe('EXAMINER_THROTTLED');
      expect((await seats(token)).status).toBe(429);
      // The login form keeps its own count, and the candidate side is not touched.
      expect((await fetch(`${url}/login`)).status).toBe(200);
    });
  });

  it('is off without a token', async () => {
    await served('', async (url) => {
      expect((await fetch(`${url}/examiner`)).status).toBe(503);
      expect((await fetch(`${url}/examiner/sessions/x/events`)).status).toBe(503);
    });
  });
});
