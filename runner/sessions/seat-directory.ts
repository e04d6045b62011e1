import { createHash, randomBytes } from 'node:crypto';
import type { SeatRef } from '../sandbox/driver.js';
import { nowIso, type DB } from '../store/db.js';
import { endsAt, type SeatStateName } from './state-machine.js';
import { sandboxesOf, type SeatSandbox } from './paper.js';
import { clockOf, newAccessCode, type SeatRow, type SessionRow } from './session-service.js';

/**
 * What the candidate web pages need from the session store, and nothing more:
 *
 *   const dir = new SeatDirectory(db);
 *   const seat = dir.redeemAccessCode(code);          // one-time: the code is used up here
 *   if (seat) { const token = dir.bindSeatSession(seat.ref); setCookie(token); }
 *   ...
 *   const seat = dir.seatForCookie(tokenFromCookie);  // every later request; null → log in again
 *
 * The token is random (256 bits) and only its SHA-256 is stored. A seat id never comes from the
 * client. `frozen` is true once candidate access is closed (paused, time up, or graded): the page
 * must then refuse terminals; the driver refuses candidate execs on its own as well.
 */
export interface SeatInfo {
  sessionId: string;
  seatId: string;
  /** The sandbox of the first task (what the driver takes); a terminal per task uses `sandboxes`. */
  ref: SeatRef;
  /** One sandbox per task of the paper, in paper order. */
  sandboxes: SeatSandbox[];
  paperId: string;
  taskIds: string[];
  candidateNo: string;
  name: string;
  state: SeatStateName;
  /** Candidate access closed (paused, frozen, grading, graded, removed, failed). */
  frozen: boolean;
  /** When the seat's clock runs out (ISO 8601), or null while it is not running. */
  endsAt: string | null;
}

const OPEN_STATES: ReadonlySet<SeatStateName> = new Set(['ready', 'running']);

const tokenHash = (t: string): string => createHash('sha256').update(t).digest('hex');

/** Codes are printed in upper case; people type them with spaces, dashes or in lower case. */
export function normaliseCode(code: string): string {
  return code.replace(/[\s-]/g, '').toUpperCase();
}

export class SeatDirectory {
  constructor(private readonly db: DB) {}

  private info(seat: SeatRow): SeatInfo {
    const s = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(seat.session_id) as SessionRow;
    const spec = JSON.parse(s.spec) as { tasks?: string[] };
    const end = endsAt(clockOf(seat));
    const boxes = sandboxesOf(seat.session_id, seat.seat_id, spec.tasks ?? []);
    return {
      sessionId: seat.session_id,
      seatId: seat.seat_id,
      ref: boxes[0]?.ref ?? { session: seat.session_id, seat: seat.seat_id },
      sandboxes: boxes,
      paperId: s.paper_id,
      taskIds: spec.tasks ?? [],
      candidateNo: seat.candidate_no,
      name: seat.name,
      state: seat.state,
      frozen: !OPEN_STATES.has(seat.state),
      endsAt: end === null ? null : new Date(end).toISOString(),
    };
  }

  /**
   * Resolve a one-time access code and mark it used, atomically (two browsers racing with the same
   * code: one wins). Null when the code is unknown, already used, or its seat is gone.
   */
  redeemAccessCode(code: string): SeatInfo | null {
    const c = normaliseCode(code);
    if (!/^[A-Z0-9]{4,32}$/.test(c)) return null;
    return this.db
      .transaction(() => {
        const seat = this.db.prepare('SELECT * FROM seats WHERE access_code = ?').get(c) as SeatRow | undefined;
        if (!seat || seat.code_redeemed_at !== null || ['removed', 'failed', 'pending'].includes(seat.state)) return null;
        const r = this.db.prepare('UPDATE seats SET code_redeemed_at = ? WHERE session_id = ? AND seat_id = ? AND code_redeemed_at IS NULL').run(nowIso(), seat.session_id, seat.seat_id);
        return r.changes === 1 ? this.info(seat) : null;
      })
      .immediate();
  }

  /** Issue a browser session token for a seat (after a redeemed code; pass `info.ref`, or `{session, seat: seatId}`). Keep it in an HttpOnly cookie. */
  bindSeatSession(ref: SeatRef): string {
    ref = this.candidateSeat(ref);
    const token = randomBytes(32).toString('base64url');
    this.db.prepare('INSERT INTO seat_tokens (token_sha256, session_id, seat_id, created_at) VALUES (?, ?, ?, ?)').run(tokenHash(token), ref.session, ref.seat, nowIso());
    return token;
  }

  /** The seat a token is bound to, with its current state; null when unknown, revoked or the seat was removed. */
  seatForCookie(token: string): SeatInfo | null {
    if (!token || token.length > 128) return null;
    const row = this.db.prepare('SELECT session_id, seat_id FROM seat_tokens WHERE token_sha256 = ? AND revoked_at IS NULL').get(tokenHash(token)) as { session_id: string; seat_id: string } | undefined;
    if (!row) return null;
    const seat = this.db.prepare('SELECT * FROM seats WHERE session_id = ? AND seat_id = ?').get(row.session_id, row.seat_id) as SeatRow | undefined;
    if (!seat || seat.state === 'removed') return null;
    return this.info(seat);
  }

  /** A sandbox ref names `<seat>-<task>`; tokens bind to the candidate's seat. */
  private candidateSeat(ref: SeatRef): SeatRef {
    if (this.db.prepare('SELECT 1 FROM seats WHERE session_id = ? AND seat_id = ?').get(ref.session, ref.seat)) return ref;
    const seats = this.db.prepare('SELECT seat_id FROM seats WHERE session_id = ?').all(ref.session) as { seat_id: string }[];
    const hit = seats.find((s) => ref.seat.startsWith(`${s.seat_id}-`));
    if (!hit) throw new Error(`no seat for sandbox ${ref.session}/${ref.seat}`);
    return { session: ref.session, seat: hit.seat_id };
  }

  revoke(token: string): void {
    this.db.prepare('UPDATE seat_tokens SET revoked_at = ? WHERE token_sha256 = ? AND revoked_at IS NULL').run(nowIso(), tokenHash(token));
  }

  /** Examiner: a fresh code for a seat (lost card, cleared browser); old tokens of the seat are revoked. */
  reissueCode(ref: SeatRef): string {
    const code = newAccessCode();
    this.db
      .transaction(() => {
        this.db.prepare('UPDATE seats SET access_code = ?, code_redeemed_at = NULL WHERE session_id = ? AND seat_id = ?').run(code, ref.session, ref.seat);
        this.db.prepare('UPDATE seat_tokens SET revoked_at = ? WHERE session_id = ? AND seat_id = ? AND revoked_at IS NULL').run(nowIso(), ref.session, ref.seat);
      })
      .immediate();
    return code;
  }
}
