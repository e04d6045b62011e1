import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import type { Logger } from '../core/logger.js';
import { metrics } from '../core/metrics.js';
import type { SandboxDriver, SeatRef } from '../sandbox/driver.js';
import type { CandidateAccess, SeatBinding } from './access.js';
import { parseCookies } from './cookies.js';
import type { Dashboard } from './dashboard.js';
import { handleExaminer } from './examiner-api.js';
import { ExaminerGate } from './examiner-auth.js';
import { examPage, loginPage, messagePage, TEXT } from './pages.js';
import { AttemptLimiter } from './rate-limit.js';
import { readBodyText, sameOrigin } from './request.js';
import { redirect, sendHtml, sendJson } from './respond.js';
import { bridgeTerminal, CLOSE, TERMINALS_PER_SEAT, tooManyTerminals } from './terminal-bridge.js';

export const SESSION_COOKIE = 'dl_session';

export interface WebAppOptions {
  access: CandidateAccess;
  driver: SandboxDriver;
  log: Logger;
  /** Bearer token of /api/examiner/*; empty or unset turns that API off. */
  examinerToken?: string;
  /** Counts wrong bearer tokens; pass the dashboard's so both share one count. Default: its own. */
  examinerGate?: ExaminerGate;
  /** Login attempts per client address. */
  loginLimit?: { max: number; windowMs: number; maxKeys: number };
  freezeCheckMs?: number;
  /** Browser terminals open at once per seat sandbox; one more is refused (each holds a shell). */
  terminalsPerSeat?: number;
  /** Pings an open terminal's browser this often; one that missed the last ping is cut off (its shell ends). */
  heartbeatMs?: number;
  /** Mark the cookie Secure (when the server sits behind TLS). */
  secureCookie?: boolean;
  now?: () => Date;
  /** The examiners' room dashboard under /examiner (runner/web/dashboard.ts); absent: not served. */
  dashboard?: Dashboard;
}

export interface WebApp {
  /** Answers the request and returns true when the path is ours; false leaves it to the caller. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Takes a websocket upgrade when the path is ours. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): void;
}

const require = createRequire(import.meta.url);

/** The only files served under /static: the terminal from node_modules (no CDN), our page script and style. */
function staticFiles(): Map<string, { file: string; type: string }> {
  const xterm = (p: string): string => require.resolve(`@xterm/xterm/${p}`);
  const fit = (p: string): string => require.resolve(`@xterm/addon-fit/${p}`);
  const own = (p: string): string => new URL(`./static/${p}`, import.meta.url).pathname;
  const js = 'text/javascript; charset=utf-8';
  const css = 'text/css; charset=utf-8';
  return new Map([
    ['/static/xterm.js', { file: xterm('lib/xterm.js'), type: js }],
    ['/static/xterm.css', { file: xterm('css/xterm.css'), type: css }],
    ['/static/addon-fit.js', { file: fit('lib/addon-fit.js'), type: js }],
    ['/static/exam.js', { file: own('exam.js'), type: js }],
    ['/static/exam.css', { file: own('exam.css'), type: css }],
  ]);
}

const LoginForm = z.object({ code: z.string().trim().min(1).max(64) });
const MAX_FORM_BYTES = 4096;
const TERMINAL_PATH = /^\/ws\/seats\/([a-z0-9-]{1,40})\/tasks\/([a-z0-9-]{1,48})\/terminal$/;

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

export function createWebApp(opts: WebAppOptions): WebApp {
  const { access, driver, log } = opts;
  const now = opts.now ?? (() => new Date());
  const files = staticFiles();
  const cache = new Map<string, Buffer>();
  const limiter = new AttemptLimiter(opts.loginLimit ?? { max: 10, windowMs: 60_000, maxKeys: 10_000 });
  const examinerGate = opts.examinerGate ?? new ExaminerGate(opts.examinerToken);
  const wss = new WebSocketServer({ noServer: true, maxPayload: 128 * 1024 });
  const cookieAttrs = `Path=/; HttpOnly; SameSite=Strict${opts.secureCookie ? '; Secure' : ''}`;

  async function binding(req: IncomingMessage): Promise<{ token: string; binding: SeatBinding } | null> {
    const token = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (!token || !/^[A-Za-z0-9_-]{16,128}$/.test(token)) return null;
    const b = await access.bySessionToken(token);
    return b ? { token, binding: b } : null;
  }

  /** Access is closed when the session says so, or when the seat carries the driver's freeze marker. */
  async function closedReason(b: SeatBinding, only?: SeatRef): Promise<'frozen' | 'paused' | null> {
    if (b.closed) return b.closed;
    const refs = only ? [only] : b.sandboxes.map((s) => s.ref);
    if (refs.length === 0) return null;
    const states = await Promise.all(refs.map(async (r) => (await driver.status(r)).state));
    return states.every((st) => st === 'frozen') ? 'frozen' : null;
  }

  async function route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    if (path.startsWith('/api/examiner/') || path === '/api/examiner') {
      await handleExaminer(req, res, path, { driver, gate: examinerGate });
      return;
    }
    if (opts.dashboard && (path === '/examiner' || path.startsWith('/examiner/'))) {
      await opts.dashboard.handle(req, res, path);
      return;
    }
    if (method === 'GET' && files.has(path)) {
      const f = files.get(path)!;
      let body = cache.get(path);
      if (!body) {
        body = readFileSync(f.file);
        cache.set(path, body);
      }
      res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
      res.end(body);
      return;
    }
    if (method === 'GET' && (path === '/' || path === '/login')) {
      if (await binding(req)) redirect(res, '/exam');
      else sendHtml(res, 200, loginPage());
      return;
    }
    if (method === 'POST' && path === '/login') {
      const ip = req.socket.remoteAddress ?? 'unknown';
      const wait = limiter.hit(ip);
      if (wait > 0) {
        metrics.webLogins.inc({ result: 'rate_limited' });
        sendHtml(res, 429, loginPage(TEXT.tooMany), { 'retry-after': String(Math.ceil(wait / 1000)) });
        return;
      }
      const text = await readBodyText(req, MAX_FORM_BYTES);
      const form = text === null ? null : new URLSearchParams(text);
      const parsed = LoginForm.safeParse(form ? Object.fromEntries(form) : {});
      const redeemed = parsed.success ? await access.redeem(parsed.data.code) : null;
      if (!redeemed) {
        metrics.webLogins.inc({ result: 'bad_code' });
        log.info({ ip }, 'login refused');
        sendHtml(res, 401, loginPage(TEXT.badCode));
        return;
      }
      metrics.webLogins.inc({ result: 'ok' });
      log.info({ ip, session: redeemed.binding.session, seat: redeemed.binding.seat }, 'candidate logged in');
      redirect(res, '/exam', { 'set-cookie': `${SESSION_COOKIE}=${redeemed.token}; ${cookieAttrs}` });
      return;
    }
    if (method === 'POST' && path === '/logout') {
      if (!sameOrigin(req)) {
        sendJson(res, 403, { error: { code: 'WEB_CROSS_ORIGIN', message: { zh: '拒绝跨站请求', en: 'cross-origin request refused' } } });
        return;
      }
      const b = await binding(req);
      if (b) await access.revoke(b.token);
      redirect(res, '/', { 'set-cookie': `${SESSION_COOKIE}=; ${cookieAttrs}; Max-Age=0` });
      return;
    }
    if (method === 'GET' && path === '/exam') {
      const b = await binding(req);
      if (!b) {
        redirect(res, '/');
        return;
      }
      const [sheets, closed] = await Promise.all([access.taskSheets(b.binding), closedReason(b.binding)]);
      sendHtml(res, 200, examPage({ binding: b.binding, sheets, closed, now: now() }));
      return;
    }
    if (method === 'GET' && path === '/api/candidate/state') {
      const b = await binding(req);
      if (!b) {
        sendJson(res, 401, { error: { code: 'WEB_NOT_LOGGED_IN', message: TEXT.loggedOut } });
        return;
      }
      const closed = await closedReason(b.binding);
      sendJson(res, 200, { seat: b.binding.seat, endsAt: b.binding.endsAt, now: now().toISOString(), frozen: closed !== null, closed, disk: b.binding.disk ?? null });
      return;
    }
    sendJson(res, 404, { error: { code: 'NOT_FOUND', message: { zh: '未找到', en: 'not found' } } });
  }

  const terminalsPerSeat = opts.terminalsPerSeat ?? TERMINALS_PER_SEAT;
  const terminalsOpen = new Map<string, number>();
  // A browser that vanished without closing (laptop lid, network cut) never sends a close: the
  // missed pong ends its terminal, so its shell does not stay behind holding a slot.
  const alive = new WeakMap<WebSocket, boolean>();
  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, opts.heartbeatMs ?? 30_000);
  heartbeat.unref();

  return {
    handle(req, res) {
      const path = (req.url ?? '/').split('?')[0]!;
      // /healthz and /metrics stay the server's own.
      if (path === '/healthz' || path === '/metrics') return false;
      route(req, res, path).catch((err: unknown) => {
        log.error({ err, path }, 'web request failed');
        if (!res.headersSent) {
          const isPage = !path.startsWith('/api/');
          if (isPage) sendHtml(res, 500, messagePage(TEXT.product, { zh: '服务器内部错误，请联系监考老师。', en: 'Server error; ask the examiner.' }));
          else sendJson(res, 500, { error: { code: 'INTERNAL', message: { zh: '内部错误', en: 'internal error' } } });
        } else res.destroy();
      });
      return true;
    },

    upgrade(req, socket, head) {
      const path = (req.url ?? '/').split('?')[0]!;
      const m = TERMINAL_PATH.exec(path);
      if (!m) return false;
      if (!sameOrigin(req)) {
        rejectUpgrade(socket, 403, 'Forbidden');
        return true;
      }
      binding(req).then(
        (b) => {
          if (!b) return rejectUpgrade(socket, 401, 'Unauthorized');
          // The cookie decides the seat; a URL naming another seat is refused, never followed.
          if (m[1] !== b.binding.seat) return rejectUpgrade(socket, 403, 'Forbidden');
          const sandbox = b.binding.sandboxes.find((x) => x.taskId === m[2]);
          if (!sandbox) return rejectUpgrade(socket, 404, 'Not Found');
          const u = new URL(req.url ?? '/', 'http://x');
          const cols = Number(u.searchParams.get('cols')) || 80;
          const rows = Number(u.searchParams.get('rows')) || 24;
          wss.handleUpgrade(req, socket, head, (ws) => {
            opts.dashboard?.presence.attach(b.binding.session, b.binding.seat, ws);
            const key = `${sandbox.ref.session}/${sandbox.ref.seat}`;
            const open = terminalsOpen.get(key) ?? 0;
            if (open >= terminalsPerSeat) {
              ws.send(JSON.stringify({ t: 'closed', reason: 'tooMany', message: tooManyTerminals(terminalsPerSeat) }));
              ws.close(CLOSE.tooMany, 'tooMany');
              return;
            }
            terminalsOpen.set(key, open + 1);
            alive.set(ws, true);
            ws.on('pong', () => alive.set(ws, true));
            ws.once('close', () => {
              const left = (terminalsOpen.get(key) ?? 1) - 1;
              if (left > 0) terminalsOpen.set(key, left);
              else terminalsOpen.delete(key);
            });
            void bridgeTerminal(ws, {
              driver,
              ref: sandbox.ref,
              log,
              cols: Math.min(Math.max(cols, 2), 1000),
              rows: Math.min(Math.max(rows, 2), 500),
              freezeCheckMs: opts.freezeCheckMs ?? 5000,
              // Re-read the binding each time: the examiner may pause or freeze the seat meanwhile.
              closedReason: async () => {
                const now = await access.bySessionToken(b.token);
                return now ? closedReason(now, sandbox.ref) : 'loggedOut';
              },
            }).catch((err: unknown) => log.error({ err }, 'terminal bridge failed'));
          });
        },
        (err: unknown) => {
          log.error({ err }, 'terminal upgrade failed');
          rejectUpgrade(socket, 500, 'Internal Server Error');
        },
      );
      return true;
    },

    close() {
      clearInterval(heartbeat);
      opts.dashboard?.close();
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
