import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AttemptLimiter } from './rate-limit.js';
import { sendJson } from './respond.js';

/** Compare digests so neither the length nor the content of the token leaks through timing. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export type BearerVerdict = { kind: 'none' } | { kind: 'ok' } | { kind: 'bad' } | { kind: 'throttled'; waitMs: number };

export interface BearerLimit {
  /** Wrong tokens per client address and window before every bearer request of it is refused. */
  max: number;
  windowMs: number;
  maxKeys: number;
}

/**
 * `Authorization: Bearer <server.examinerToken>` on the examiner API and dashboard, with wrong
 * tokens counted per client address: past the limit even the right token is refused (429) until the
 * window ends, so guessing gains nothing from speed. One gate serves both, so they share the count.
 */
export class ExaminerGate {
  private readonly failures: AttemptLimiter;

  constructor(
    readonly token: string | undefined,
    limit: BearerLimit = { max: 10, windowMs: 60_000, maxKeys: 10_000 },
    now?: () => number,
  ) {
    this.failures = new AttemptLimiter({ ...limit, now });
  }

  bearer(req: IncomingMessage): BearerVerdict {
    const header = req.headers.authorization;
    if (header === undefined || !this.token) return { kind: 'none' };
    const ip = req.socket.remoteAddress ?? 'unknown';
    const pending = this.failures.pending(ip);
    if (pending > 0) return { kind: 'throttled', waitMs: pending };
    const m = /^Bearer ([\x21-\x7e]+)$/.exec(header);
    if (m && tokenMatches(m[1]!, this.token)) return { kind: 'ok' };
    this.failures.hit(ip);
    return { kind: 'bad' };
  }
}

/** The 429 of a throttled bearer request, with the seconds to wait. */
export function sendThrottled(res: ServerResponse, waitMs: number): void {
  res.setHeader('retry-after', String(Math.ceil(waitMs / 1000)));
  sendJson(res, 429, {
    error: { code: 'EXAMINER_THROTTLED', message: { zh: '错误令牌过多，请稍后再试', en: 'too many wrong examiner tokens from this address; wait and try again' } },
  });
}
