import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { asDeploylabError, type Bilingual } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SandboxDriver } from '../sandbox/driver.js';
import type { SeatRow, SessionService } from '../sessions/session-service.js';
import { parseCookies } from './cookies.js';
import { dashboardPage, DASH_TEXT, examinerLoginPage, examinerMessagePage, sessionListPage } from './dashboard-page.js';
import { RoomFeeds, RoomReader, TerminalPresence, type FeedLimits } from './dashboard-room.js';
import { ExaminerGate, sendThrottled, tokenMatches } from './examiner-auth.js';
import { ExaminerLogins } from './examiner-logins.js';
import { readBodyText, sameOrigin } from './request.js';
import { AttemptLimiter } from './rate-limit.js';
import { redirect, sendHtml, sendJson } from './respond.js';

/**
 * The examiner's live room dashboard under /examiner: a login with the examiner token (the same
 * `server.examinerToken` as /api/examiner/*), the list of sessions, one page per room fed by a
 * Server-Sent Events stream, and the clock actions of the session service behind buttons.
 *
 * Browsers cannot put a bearer token on a page load or an EventSource, so a correct token buys an
 * examiner cookie (random, kept server-side as a hash, Path=/examiner, HttpOnly, SameSite=Strict).
 * Tools may send `Authorization: Bearer <token>` instead. A candidate's cookie counts for nothing.
 */

export const EXAMINER_COOKIE = 'dl_examiner';

export interface DashboardOptions {
  sessions: SessionService;
  driver: SandboxDriver;
  log: Logger;
  /** Empty or unset: the dashboard is off (503), like the examiner API. */
  examinerToken: string | undefined;
  secureCookie?: boolean;
  /** How long an examiner login lasts. */
  loginTtlMs?: number;
  loginLimit?: { max: number; windowMs: number; maxKeys: number };
  /** Counts wrong bearer tokens (shared with the examiner API when both are given the same). */
  gate?: ExaminerGate;
  feed?: Partial<FeedLimits> & { engineEveryMs?: number };
  now?: () => number;
}

export interface Dashboard {
  /** The terminal bridge reports candidate terminals here (connected now, last keystroke). */
  readonly presence: TerminalPresence;
  /** Open event streams (all rooms). */
  readonly streams: number;
  /** Paths under /examiner. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
  close(): void;
}

const SESSION_ID = '[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?';
const ROOM_PATH = new RegExp(`^/examiner/sessions/(${SESSION_ID})(/state|/events|/actions)?$`);
const NEXT_PATH = new RegExp(`^/examiner(?:/sessions/${SESSION_ID})?$`);
const MAX_BODY_BYTES = 4096;
const MAX_LOGINS = 1000;

const LoginForm = z.object({ token: z.string().min(1).max(512), next: z.string().max(200).optional() });

export const DashboardAction = z
  .strictObject({
    action: z.enum(['start', 'pause', 'resume', 'extend', 'end']),
    seat: z.string().regex(/^[a-z0-9-]{1,40}$/).optional(),
    minutes: z.number().int().min(1).max(600).optional(),
  })
  .refine((a) => (a.action === 'extend') === (a.minutes !== undefined), { message: 'minutes goes with extend, and only with extend' });
export type DashboardAction = z.output<typeof DashboardAction>;

const STATIC: Record<string, { file: string; type: string }> = {
  '/examiner/static/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/examiner/static/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

const UNAUTHORISED = { code: 'EXAMINER_UNAUTHORIZED', message: { zh: '需要监考令牌', en: 'examiner token required' } };

/** HTTP status for an error the session service raised on an examiner action. */
function statusOf(code: string, fault: string): number {
  if (code === 'SESSION_NOT_FOUND' || code === 'SEAT_NOT_FOUND') return 404;
  if (code === 'SESSION_LOCKED' || code === 'SESSION_ILLEGAL_TRANSITION') return 409;
  if (fault === 'config' || fault === 'candidate') return 400;
  if (fault === 'infrastructure') return 502;
  return 500;
}

export function createDashboard(opts: DashboardOptions): Dashboard {
  const { sessions, log } = opts;
  const now = opts.now ?? Date.now;
  const ttl = opts.loginTtlMs ?? 12 * 3600_000;
  const presence = new TerminalPresence(now);
  const reader = new RoomReader(sessions, opts.driver, presence, log, { engineEveryMs: opts.feed?.engineEveryMs ?? 10_000, now });
  const feeds = new RoomFeeds(reader, log, {
    pollMs: opts.feed?.pollMs ?? 2000,
    keepAliveMs: opts.feed?.keepAliveMs ?? 15_000,
    maxStreams: opts.feed?.maxStreams ?? 64,
    maxStreamMs: opts.feed?.maxStreamMs ?? 30 * 60_000,
    maxQueuedBytes: opts.feed?.maxQueuedBytes ?? 1 << 20,
  });
  const limiter = new AttemptLimiter(opts.loginLimit ?? { max: 10, windowMs: 60_000, maxKeys: 10_000 });
  const logins = new ExaminerLogins(sessions.db, { ttlMs: ttl, max: MAX_LOGINS, now });
  const cache = new Map<string, Buffer>();
  const cookieAttrs = `Path=/examiner; HttpOnly; SameSite=Strict${opts.secureCookie ? '; Secure' : ''}`;

  const gate = opts.gate ?? new ExaminerGate(opts.examinerToken);

  function cookieLogin(req: IncomingMessage): string | null {
    return logins.check(parseCookies(req.headers.cookie).get(EXAMINER_COOKIE));
  }

  async function act(id: string, a: DashboardAction): Promise<SeatRow[]> {
    const ms = (a.minutes ?? 0) * 60_000;
    switch (a.action) {
      case 'start':
        return sessions.start(id, a.seat);
      case 'pause':
        return sessions.pause(id, a.seat);
      case 'resume':
        return sessions.resume(id, a.seat);
      case 'extend':
        return sessions.extend(id, ms, a.seat);
      case 'end':
        if (a.seat) return sessions.end(id, a.seat);
        await sessions.end(id);
        return sessions.seats(id);
    }
  }

  function sendError(res: ServerResponse, err: unknown): void {
    const d = asDeploylabError(err);
    const status = statusOf(d.code, d.fault);
    if (status >= 500) log.error({ err }, 'dashboard request failed');
    sendJson(res, status, { error: { code: d.code, message: { zh: d.zh, en: d.message }, ...(d.hint ? { hint: d.hint } : {}) } });
  }

  async function handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    const file = STATIC[path];
    if (file && method === 'GET') {
      let body = cache.get(path);
      if (!body) {
        body = readFileSync(new URL(`./static/${file.file}`, import.meta.url));
        cache.set(path, body);
      }
      res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
      res.end(body);
      return;
    }
    const room = ROOM_PATH.exec(path);
    const isApi = Boolean(room?.[2]);
    if (!opts.examinerToken) {
      if (isApi) sendJson(res, 503, { error: { code: 'EXAMINER_API_DISABLED', message: DASH_TEXT.disabled } });
      else sendHtml(res, 503, examinerMessagePage(DASH_TEXT.disabled));
      return;
    }

    if (method === 'POST' && path === '/examiner/login') {
      const ip = req.socket.remoteAddress ?? 'unknown';
      const wait = limiter.hit(ip);
      if (wait > 0) {
        sendHtml(res, 429, examinerLoginPage(DASH_TEXT.tooMany), { 'retry-after': String(Math.ceil(wait / 1000)) });
        return;
      }
      const body = await readBodyText(req, MAX_BODY_BYTES);
      const form = LoginForm.safeParse(body === null ? {} : Object.fromEntries(new URLSearchParams(body)));
      const next = form.success && form.data.next && NEXT_PATH.test(form.data.next) ? form.data.next : '/examiner';
      if (!form.success || !tokenMatches(form.data.token, opts.examinerToken)) {
        log.info({ ip }, 'examiner login refused');
        sendHtml(res, 401, examinerLoginPage(DASH_TEXT.badToken, next));
        return;
      }
      log.info({ ip }, 'examiner logged in');
      redirect(res, next, { 'set-cookie': `${EXAMINER_COOKIE}=${logins.create()}; ${cookieAttrs}; Max-Age=${Math.floor(ttl / 1000)}` });
      return;
    }
    if (method === 'POST' && path === '/examiner/logout') {
      if (!sameOrigin(req)) {
        sendJson(res, 403, { error: { code: 'WEB_CROSS_ORIGIN', message: { zh: '拒绝跨站请求', en: 'cross-origin request refused' } } });
        return;
      }
      const h = cookieLogin(req);
      if (h) logins.revoke(h);
      redirect(res, '/examiner', { 'set-cookie': `${EXAMINER_COOKIE}=; ${cookieAttrs}; Max-Age=0` });
      return;
    }

    const viaCookie = cookieLogin(req) !== null;
    const verdict = gate.bearer(req);
    const viaBearer = verdict.kind === 'ok';
    if (verdict.kind === 'throttled' && !viaCookie) {
      if (isApi || !room) sendThrottled(res, verdict.waitMs);
      else sendHtml(res, 429, examinerLoginPage(DASH_TEXT.tooMany), { 'retry-after': String(Math.ceil(verdict.waitMs / 1000)) });
      return;
    }
    const authorised = viaCookie || viaBearer;
    if (method === 'GET' && (path === '/examiner' || path === '/examiner/')) {
      if (!authorised) sendHtml(res, 200, examinerLoginPage());
      else sendHtml(res, 200, sessionListPage(sessions.list()));
      return;
    }
    if (!room) {
      sendJson(res, 404, { error: { code: 'NOT_FOUND', message: { zh: '未找到', en: 'not found' } } });
      return;
    }
    const id = room[1]!;
    if (!authorised) {
      res.setHeader('www-authenticate', 'Bearer realm="deploylab-examiner"');
      if (isApi) sendJson(res, 401, { error: UNAUTHORISED });
      else sendHtml(res, 401, examinerLoginPage(undefined, `/examiner/sessions/${id}`));
      return;
    }

    const kind = room[2];
    if (method === 'GET' && !kind) {
      let row;
      try {
        row = sessions.session(id);
      } catch {
        sendHtml(res, 404, examinerMessagePage({ zh: `没有场次 ${id}`, en: `no session ${id}` }));
        return;
      }
      sendHtml(res, 200, dashboardPage(row));
      return;
    }
    if (method === 'GET' && kind === '/state') {
      try {
        sendJson(res, 200, await reader.snapshot(id));
      } catch (e) {
        sendError(res, e);
      }
      return;
    }
    if (method === 'GET' && kind === '/events') {
      let first;
      try {
        first = await reader.snapshot(id);
      } catch (e) {
        sendError(res, e);
        return;
      }
      if (!feeds.subscribe(id, res, first)) {
        sendJson(res, 503, { error: { code: 'DASHBOARD_TOO_MANY_STREAMS', message: { zh: '监考台连接过多，请关闭多余的页面。', en: 'too many dashboard connections; close unused pages' } } });
      }
      return;
    }
    if (method === 'POST' && kind === '/actions') {
      // The cookie rides along on any request the browser makes: only this origin may use it to act.
      if (viaCookie && !viaBearer && !sameOrigin(req)) {
        sendJson(res, 403, { error: { code: 'WEB_CROSS_ORIGIN', message: { zh: '拒绝跨站请求', en: 'cross-origin request refused' } } });
        return;
      }
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
        sendJson(res, 415, { error: { code: 'DASHBOARD_ACTION_INVALID', message: { zh: '请求须为 JSON', en: 'the request must be JSON' } } });
        return;
      }
      const body = await readBodyText(req, MAX_BODY_BYTES);
      let parsed: ReturnType<typeof DashboardAction.safeParse> | null;
      try {
        parsed = body === null ? null : DashboardAction.safeParse(JSON.parse(body));
      } catch {
        parsed = null;
      }
      if (!parsed?.success) {
        const detail = parsed && !parsed.success ? parsed.error.issues.map((i) => i.message).join('; ') : 'not JSON';
        sendJson(res, 400, { error: { code: 'DASHBOARD_ACTION_INVALID', message: { zh: `操作无效：${detail}`, en: `invalid action: ${detail}` } } });
        return;
      }
      const a = parsed.data;
      try {
        // One clock action at a time per room, in arrival order: the session's own lock queues them.
        const rows = await act(id, a);
        log.info({ session: id, seat: a.seat ?? null, action: a.action, minutes: a.minutes ?? null, ip: req.socket.remoteAddress, changed: rows.length }, 'examiner action from the dashboard');
        const message: Bilingual =
          rows.length === 0 && (a.action !== 'end' || a.seat)
            ? { zh: '没有考位发生变化（状态不适用）。', en: 'No seat changed (not applicable in its state).' }
            : { zh: '已执行。', en: 'Done.' };
        sendJson(res, 200, { ok: true, action: a.action, seat: a.seat ?? null, changed: rows.map((r) => ({ seat: r.seat_id, state: r.state })), message });
      } catch (e) {
        sendError(res, e);
      } finally {
        feeds.refresh(id);
      }
      return;
    }
    sendJson(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: { zh: '不支持的请求方法', en: 'method not allowed' } } });
  }

  return {
    presence,
    get streams() {
      return feeds.streams;
    },
    handle,
    close() {
      feeds.close();
    },
  };
}
