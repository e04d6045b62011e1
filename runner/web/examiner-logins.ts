import { createHash, randomBytes } from 'node:crypto';
import type { DB } from '../store/db.js';

/**
 * The examiner dashboard's logins, kept in the store so that a runner restarted after a crash
 * keeps the examiners logged in (their pages reconnect on their own). Only a SHA-256 of each
 * cookie is stored: the cookie is 32 random bytes, so a plain hash is enough and a copy of the
 * store logs nobody in. Bounded: expired logins go on every new one, and beyond `max` the oldest.
 */
export class ExaminerLogins {
  constructor(
    private readonly db: DB,
    private readonly opts: { ttlMs: number; max: number; now: () => number },
  ) {}

  static readonly COOKIE_SHAPE = /^[A-Za-z0-9_-]{43}$/;

  /** A new login: the cookie value to hand to the browser. */
  create(): string {
    const t = this.opts.now();
    const token = randomBytes(32).toString('base64url');
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM examiner_logins WHERE expires_at <= ?').run(t);
      this.db
        .prepare('DELETE FROM examiner_logins WHERE token_hash IN (SELECT token_hash FROM examiner_logins ORDER BY created_at, rowid LIMIT max(0, (SELECT count(*) FROM examiner_logins) - ? + 1))')
        .run(this.opts.max);
      this.db.prepare('INSERT INTO examiner_logins (token_hash, expires_at, created_at) VALUES (?, ?, ?)').run(hashOf(token), t + this.opts.ttlMs, t);
    })();
    return token;
  }

  /** The login a cookie value stands for (its hash), or null when unknown or expired. */
  check(cookie: string | undefined): string | null {
    if (!cookie || !ExaminerLogins.COOKIE_SHAPE.test(cookie)) return null;
    const h = hashOf(cookie);
    const row = this.db.prepare('SELECT expires_at FROM examiner_logins WHERE token_hash = ?').get(h) as { expires_at: number } | undefined;
    if (!row) return null;
    if (row.expires_at <= this.opts.now()) {
      this.revoke(h);
      return null;
    }
    return h;
  }

  revoke(tokenHash: string): void {
    this.db.prepare('DELETE FROM examiner_logins WHERE token_hash = ?').run(tokenHash);
  }

  get size(): number {
    return (this.db.prepare('SELECT count(*) n FROM examiner_logins').get() as { n: number }).n;
  }
}

function hashOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
