import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createLogger } from '../../runner/core/logger.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan, type SeatRef } from '../../runner/sandbox/driver.js';
import { startServer } from '../../runner/server/http-server.js';
import { loadTaskSheets } from '../../runner/web/access.js';
import { createWebApp, SESSION_COOKIE, type WebApp } from '../../runner/web/app.js';
import { CLOSE } from '../../runner/web/terminal-bridge.js';
import { DEFAULT_TASKS_ROOT } from '../../runner/tasks/loader.js';
import { hasEngine } from '../helpers/docker-env.js';
import { requireImage } from '../helpers/images.js';
import { FixtureAccess } from './fixture-access.js';

const EXAMINER_TOKEN = randomBytes(24).toString('hex');

async function login(url: string, code: string): Promise<Response> {
  return fetch(`${url}/login`, {
    method: 'POST',
    body: new URLSearchParams({ code }),
    redirect: 'manual',
  });
}

function cookieOf(res: Response): string {
  const set = res.headers.get('set-cookie') ?? '';
  return set.split(';')[0]!;
}

/** Open a terminal websocket and collect what happens: output text, status frames, close code. */
function openTerminal(url: string, seat: string, headers: Record<string, string>, task = 'serve') {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws/seats/${seat}/tasks/${task}/terminal`, { headers });
  let out = '';
  const statuses: { t: string; reason?: string; message?: { zh: string; en: string } }[] = [];
  ws.on('message', (data, isBinary) => {
    if (isBinary) out += data.toString();
    else statuses.push(JSON.parse(data.toString()));
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  const opened = new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve());
    ws.on('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
  });
  return {
    ws,
    opened,
    closed,
    statuses,
    output: () => out,
    async waitFor(re: RegExp, ms = 15_000): Promise<string> {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        if (re.test(out)) return out;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`terminal never showed ${re}; got: ${JSON.stringify(out.slice(-500))}`);
    },
    type(s: string): void {
      ws.send(JSON.stringify({ t: 'in', d: s }));
    },
  };
}

/** `deploylab seat shell` as an examiner runs it, with stdin from a pipe. */
function seatShell(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('node', ['bin/deploylab.js', 'seat', 'shell', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}

async function upgradeStatus(url: string, seat: string, headers: Record<string, string>, task = 'serve'): Promise<number> {
  const t = openTerminal(url, seat, headers, task);
  try {
    await t.opened;
    t.ws.close();
    return 101;
  } catch (e) {
    return Number(/HTTP (\d+)/.exec(String(e))?.[1] ?? 0);
  }
}

describe.skipIf(!hasEngine)('candidate web access (real seats, HTTP + websocket)', () => {
  const session = `web-${randomBytes(3).toString('hex')}`;
  const a: SeatRef = { session, seat: 'a' };
  const b: SeatRef = { session, seat: 'b' };
  const driver = new DockerDriver();
  const access = new FixtureAccess(loadTaskSheets([join(DEFAULT_TASKS_ROOT, 'junior/serve')]));
  let server: Server;
  let url: string;
  let origin: string;
  let web: WebApp;

  beforeAll(async () => {
    const image = await requireImage('workspace-cpu');
    const plan = (seat: string) => parseSeatPlan({ session, seat, task: 'serve', workspace: { image }, resources: { cpus: 0.5, memoryMiB: 256, pids: 128 } });
    await Promise.all([driver.provision(plan('a')), driver.provision(plan('b'))]);
    await driver.writeFiles(a, [{ path: '/workspace/seat.txt', content: 'i-am-seat-a\n' }]);
    await driver.writeFiles(b, [{ path: '/workspace/seat.txt', content: 'i-am-seat-b\n' }]);
    access.addSeat('AAAA-1111', { session, seat: 'a', sandboxes: [{ taskId: 'serve', ref: a }], candidate: '考生 A-01', endsAt: new Date(Date.now() + 90 * 60_000).toISOString() });
    access.addSeat('BBBB-2222', { session, seat: 'b', sandboxes: [{ taskId: 'serve', ref: b }], candidate: '考生 B-02', endsAt: null });
    web = createWebApp({ access, driver, log: createLogger('silent'), examinerToken: EXAMINER_TOKEN, loginLimit: { max: 14, windowMs: 60_000, maxKeys: 100 }, freezeCheckMs: 1000, terminalsPerSeat: 3 });
    ({ server, url } = await startServer({ host: '127.0.0.1', port: 0, log: createLogger('silent'), web }));
    origin = url;
  }, 120_000);

  afterAll(async () => {
    web?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await driver.sweep({ session }).catch(() => undefined);
  }, 60_000);

  it('keeps /healthz and /metrics', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toContain('deploylab_web_terminals_open');
  });

  it('serves the login page in Chinese with English beside it, and the terminal from our own server', async () => {
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).toContain('<html lang="zh-CN">');
    expect(html).toMatch(/准入码[\s\S]*Access code/);
    const js = await fetch(`${url}/static/xterm.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await js.text()).length).toBeGreaterThan(100_000);
    expect((await fetch(`${url}/static/../package.json`)).status).toBe(404);
  });

  it('refuses a wrong code with a bilingual message and sets no cookie', async () => {
    const res = await login(url, 'NOPE-0000');
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    const html = await res.text();
    expect(html).toContain('准入码无效');
    expect(html).toContain('The access code is not valid');
  });

  it('logs in with a code: HttpOnly SameSite=Strict cookie with a random token that names no seat', async () => {
    const res = await login(url, 'AAAA-1111');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/exam');
    const set = res.headers.get('set-cookie')!;
    expect(set).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{40,}; Path=/; HttpOnly; SameSite=Strict`));
    expect(set).not.toContain(session);
    const again = cookieOf(await login(url, 'AAAA-1111'));
    expect(again).not.toBe(cookieOf(res));
  });

  it('shows the exam page with the Chinese task sheet, the English one beside it, and the clock', async () => {
    const cookie = cookieOf(await login(url, 'AAAA-1111'));
    const html = await (await fetch(`${url}/exam`, { headers: { cookie } })).text();
    expect(html).toContain('使用 llama-server 在本地提供量化模型服务');
    expect(html).toMatch(/<section class="md en-sheet" lang="en" hidden>[\s\S]*llama-server/);
    expect(html).toContain('data-seat="a"');
    expect(html).toMatch(/data-ends-at="\d{4}-/);
    expect(html).toContain('考生 A-01');
    // Without a cookie (or with a forged one) the exam page sends the browser to the login.
    expect((await fetch(`${url}/exam`, { redirect: 'manual' })).status).toBe(303);
    expect((await fetch(`${url}/exam`, { redirect: 'manual', headers: { cookie: `${SESSION_COOKIE}=${'x'.repeat(43)}` } })).status).toBe(303);
  });

  it('a candidate cookie never reaches another seat or the examiner API', async () => {
    const cookie = cookieOf(await login(url, 'AAAA-1111'));
    expect(await upgradeStatus(url, 'b', { cookie, origin })).toBe(403);
    expect(await upgradeStatus(url, 'a', { cookie, origin }, 'quantize')).toBe(404); // not a task of this seat
    expect(await upgradeStatus(url, 'a', { cookie, origin })).toBe(101);
    expect(await upgradeStatus(url, 'a', { origin })).toBe(401);
    expect(await upgradeStatus(url, 'a', { cookie })).toBe(403); // no Origin
    expect(await upgradeStatus(url, 'a', { cookie, origin: 'http://evil.example' })).toBe(403);
    expect(await upgradeStatus(url, 'a', { cookie, origin: 'http://localhost:1' })).toBe(403);
    for (const path of ['/api/examiner/seats', '/api/examiner/anything']) {
      const res = await fetch(`${url}${path}`, { headers: { cookie } });
      expect(res.status).toBe(401);
    }
    const wrong = await fetch(`${url}/api/examiner/seats`, { headers: { cookie, authorization: `Bearer ${EXAMINER_TOKEN}x` } });
    expect(wrong.status).toBe(401);
    const state = (await (await fetch(`${url}/api/candidate/state`, { headers: { cookie } })).json()) as { seat: string };
    expect(state.seat).toBe('a');
  });

  it('the examiner API lists seats and their states with the bearer token', async () => {
    const res = await fetch(`${url}/api/examiner/seats`, { headers: { authorization: `Bearer ${EXAMINER_TOKEN}` } });
    expect(res.status).toBe(200);
    const { seats } = (await res.json()) as { seats: { session: string; seat: string; state: string }[] };
    const ours = seats.filter((s) => s.session === session).map((s) => `${s.seat}:${s.state}`).sort();
    expect(ours).toEqual(['a:running', 'b:running']);
  });

  it('the terminal runs in the cookie’s own seat, as the candidate', async () => {
    const cookie = cookieOf(await login(url, 'AAAA-1111'));
    const t = openTerminal(url, 'a', { cookie, origin });
    await t.opened;
    t.type('echo hello-$((6*7)); cat /workspace/seat.txt; id -un\r');
    const out = await t.waitFor(/i-am-seat-\w[\s\S]*candidate/);
    expect(out).toContain('hello-42');
    expect(out).toContain('i-am-seat-a');
    expect(out).not.toContain('i-am-seat-b');
    t.ws.close();
    await t.closed;
  });

  /** The seat's processes as the host sees them, their command lines only. */
  const commands = async (ref: SeatRef): Promise<string[]> => (await driver.processes(ref)).map((p) => p.command);
  const until = async (what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await ok()) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`never: ${what}`);
  };

  it('closing a page’s terminal ends its shell and jobs (a nohup one lives on), and reloads leave no shells behind: seen from the host', async () => {
    const cookie = cookieOf(await login(url, 'AAAA-1111'));
    const t = openTerminal(url, 'a', { cookie, origin });
    await t.opened;
    t.type('sleep 4101 & nohup sleep 4102 >/dev/null 2>&1 & echo started-$((2*3)); sleep 4103\r');
    await t.waitFor(/started-6/);
    await until('the three sleeps run', async () => (await commands(a)).filter((c) => /^sleep 410[123]$/.test(c)).length === 3);
    const shellsBefore = (await commands(a)).filter((c) => c === '/bin/bash -l').length;
    expect(shellsBefore).toBeGreaterThanOrEqual(1);
    t.ws.close();
    await t.closed;
    await until('the shell and its jobs are gone', async () => {
      const now = await commands(a);
      return !now.includes('sleep 4101') && !now.includes('sleep 4103') && now.filter((c) => c === '/bin/bash -l').length === shellsBefore - 1;
    });
    expect(await commands(a)).toContain('sleep 4102');

    // Twenty reloads, each closing before or after its shell came up.
    for (let i = 0; i < 20; i++) {
      const r = openTerminal(url, 'a', { cookie, origin });
      await r.opened;
      if (i % 2) await r.waitFor(/\$ $/).catch(() => undefined);
      r.ws.close();
      await r.closed;
    }
    await until('no shell is left', async () => !(await commands(a)).includes('/bin/bash -l'));
  }, 90_000);

  it('a shell that ignores the hang-up is killed after the grace, with its foreground job', async () => {
    const cookie = cookieOf(await login(url, 'AAAA-1111'));
    const t = openTerminal(url, 'a', { cookie, origin });
    await t.opened;
    t.type("trap '' HUP; echo trapped-$((3*3)); sleep 4201\r");
    await t.waitFor(/trapped-9/);
    await until('the sleep runs', async () => (await commands(a)).includes('sleep 4201'));
    t.ws.close();
    await t.closed;
    await until('shell and job are gone', async () => {
      const now = await commands(a);
      return !now.includes('sleep 4201') && !now.includes('/bin/bash -l');
    });
  }, 60_000);

  it('caps the terminals open at once on a seat: one more gets the bilingual notice, a closed one frees its place', async () => {
    const cookie = cookieOf(await login(url, 'AAAA-1111'));
    const open = [openTerminal(url, 'a', { cookie, origin }), openTerminal(url, 'a', { cookie, origin }), openTerminal(url, 'a', { cookie, origin })];
    await Promise.all(open.map((t) => t.opened));
    await Promise.all(open.map((t) => t.waitFor(/\$ $/)));
    const extra = openTerminal(url, 'a', { cookie, origin });
    await extra.opened;
    expect(await extra.closed).toBe(CLOSE.tooMany);
    expect(extra.statuses.at(-1)?.message?.zh).toContain('已打开 3 个终端');
    // Another seat is not counted against this one.
    const cookieB = cookieOf(await login(url, 'BBBB-2222'));
    const other = openTerminal(url, 'b', { cookie: cookieB, origin });
    await other.opened;
    await other.waitFor(/\$ $/);
    other.ws.close();
    open[0]!.ws.close();
    await open[0]!.closed;
    const after = openTerminal(url, 'a', { cookie, origin });
    await after.opened;
    after.type('echo back-$((4*4))\r');
    await after.waitFor(/back-16/);
    for (const t of [after, open[1]!, open[2]!]) t.ws.close();
    await Promise.all([after, open[1]!, open[2]!, other].map((t) => t.closed));
    await until('no shell is left', async () => !(await commands(a)).includes('/bin/bash -l') && !(await commands(b)).includes('/bin/bash -l'));
  }, 90_000);

  it('`deploylab seat shell SESSION SEAT` attaches to that seat and passes the exit code through', async () => {
    const r = await seatShell([session, 'a'], 'echo shell-$((2+3)); cat /workspace/seat.txt; exit 7\n');
    expect(r.stdout).toContain('shell-5');
    expect(r.stdout).toContain('i-am-seat-a');
    expect(r.code).toBe(7);
  }, 60_000);

  it('freezing the seat (from another process) closes an open terminal with the bilingual frozen message; reconnecting is refused the same way', async () => {
    const cookie = cookieOf(await login(url, 'BBBB-2222'));
    const t = openTerminal(url, 'b', { cookie, origin });
    await t.opened;
    t.type('echo ready-$((1+1))\r');
    await t.waitFor(/ready-2/);
    // Frozen from elsewhere (another runner process, the CLI): the open terminal notices on its own.
    await new DockerDriver().freeze(b);
    expect(await t.closed).toBe(CLOSE.frozen);
    const last = t.statuses.at(-1)!;
    expect(last.reason).toBe('frozen');
    expect(last.message!.zh).toContain('考位已冻结');
    expect(last.message!.en).toContain('frozen');

    const again = openTerminal(url, 'b', { cookie, origin });
    await again.opened;
    expect(await again.closed).toBe(CLOSE.frozen);
    expect(again.statuses.map((s) => s.reason)).toEqual(['frozen']);
    const html = await (await fetch(`${url}/exam`, { headers: { cookie } })).text();
    expect(html).toMatch(/id="frozen-banner" class="error" role="alert"><span data-reason="frozen">考位已冻结/);
    const shell = await seatShell([session, 'b'], 'echo never\n');
    expect(shell.code).not.toBe(0);
    expect(shell.stderr).toContain('SANDBOX_SEAT_FROZEN');
    expect(shell.stdout).not.toContain('never');
    // The examiners' root shell still gets in, to inspect the frozen seat.
    const rootShell = await seatShell([session, 'b', '--root'], 'id -u; exit 3\n');
    expect(rootShell.stdout).toMatch(/^0\r?$/m);
    expect(rootShell.code).toBe(3);
    await driver.thaw(b);
  }, 30_000);

  it('logout revokes the token and closes its open terminal (cross-origin logout refused)', async () => {
    const cookie = cookieOf(await login(url, 'AAAA-1111'));
    expect((await fetch(`${url}/logout`, { method: 'POST', headers: { cookie, origin: 'http://evil.example' }, redirect: 'manual' })).status).toBe(403);
    const t = openTerminal(url, 'a', { cookie, origin });
    await t.opened;
    const out = await fetch(`${url}/logout`, { method: 'POST', headers: { cookie, origin }, redirect: 'manual' });
    expect(out.status).toBe(303);
    // An open terminal of the revoked login is closed too, with the bilingual "log in again" notice.
    expect(await t.closed).toBe(CLOSE.loggedOut);
    expect(t.statuses.at(-1)?.message?.zh).toContain('登录已失效');
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await fetch(`${url}/api/candidate/state`, { headers: { cookie } })).status).toBe(401);
  });

  it('rate-limits login attempts per address (runs last: it uses up this address)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await login(url, `WRONG-${i}`)).status);
    expect(statuses).toContain(429);
    const limited = await login(url, 'AAAA-1111');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await limited.text()).toContain('尝试次数过多');
  });
});
