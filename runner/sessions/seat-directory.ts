import { createHash, randomBytes } from 'node:crypto';
import type { SeatRef } from '../sandbox/driver.js';
import { CODE_SHAPE, digestsEqual, hashCode, normaliseCode, parseCodeKdf } from '../store/access-code.js';
import { nowIso, type DB } from '../store/db.js';
import { readDiskRows, type DiskLevel } from './disk-watch.js';
import { endsAt, type SeatStateName } from './state-machine.js';
import { sandboxesOf, type SeatSandbox } from './paper.js';
import { clockOf, Ledger, type SeatRow } from './ledger-store.js';

/**
 * What the candidate web pages need from the session store, and nothing more:
 *
 *   const dir = new SeatDirectory(db);
 *   const seat = await dir.redeemAccessCode(code);    // one-time: the code is used up here
 *   if (seat) { const token = dir.bindSeatSession(seat.ref); setCookie(token); }
 *   ...
 *   const seat = dir.seatForCookie(tokenFromCookie);  // every later request; null → log in again
 *
 * Codes are stored only as scrypt hashes (runner/store/access-code.ts). The token is random
 * (256 bits) and only its SHA-256 is stored. A seat id never comes from the
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
  /** The disk watch's latest reading of the seat; null before its first sample. */
  disk: { bytes: number; quotaBytes: number; level: DiskLevel; halted: boolean } | null;
}

const OPEN_STATES: ReadonlySet<SeatStateName> = new Set(['ready', 'running']);

const tokenHash = (t: string): string => createHash('sha256').update(t).digest('hex');

export { normaliseCode };

/** Seats a code can still log in to: unused code, seat provisioned and not removed. */
const REDEEMABLE = "access_code_hash IS NOT NULL AND code_redeemed_at IS NULL AND state NOT IN ('removed', 'failed', 'pending')";

export class SeatDirectory {
  private readonly ledger: Ledger;

  constructor(private readonly db: DB) {
    this.ledger = new Ledger(db);
  }

  private info(seat: SeatRow): SeatInfo {
    const spec = this.ledger.spec(seat.session_id);
    const end = endsAt(clockOf(seat));
    const boxes = sandboxesOf(seat.session_id, seat.seat_id, spec.tasks);
    const disk = readDiskRows(this.db, seat.session_id).get(seat.seat_id);
    return {
      sessionId: seat.session_id,
      seatId: seat.seat_id,
      ref: boxes[0]?.ref ?? { session: seat.session_id, seat: seat.seat_id },
      sandboxes: boxes,
      paperId: spec.paperId,
      taskIds: spec.tasks,
      candidateNo: seat.candidate_no,
      name: seat.name,
      state: seat.state,
      frozen: !OPEN_STATES.has(seat.state),
      endsAt: end === null ? null : new Date(end).toISOString(),
      disk: disk ? { bytes: disk.bytes, quotaBytes: disk.quota_bytes, level: disk.level, halted: disk.halted === 1 } : null,
    };
  }

  /**
   * Resolve a one-time access code and mark it used, atomically (two browsers racing with the same
   * code: one wins). Null when the code is unknown, already used, or its seat is gone.
   *
   * The code is hashed once under each session that has a seat it could open (one scrypt per
   * such session, off the event loop, whether or not an earlier one matched) and compared with
   * every such seat's hash in constant time. A code matching seats of two sessions opens neither.
   */
  async redeemAccessCode(code: string): Promise<SeatInfo | null> {
    const c = normaliseCode(code);
    if (!CODE_SHAPE.test(c)) return null;
    const sessions = this.db
      .prepare(`SELECT id, code_kdf FROM sessions WHERE id IN (SELECT DISTINCT session_id FROM seats WHERE ${REDEEMABLE}) ORDER BY id`)
      .all() as { id: string; code_kdf: string | null }[];
    const digests = await Promise.all(
      sessions.map(async (s) => {
        const kdf = parseCodeKdf(s.code_kdf, `session ${s.id}`);
        return kdf ? { session: s.id, digest: await hashCode(c, kdf) } : null;
      }),
    );
    const hits: { session: string; seat: string; hash: string }[] = [];
    const seatsOf = this.db.prepare(`SELECT seat_id, access_code_hash FROM seats WHERE session_id = ? AND ${REDEEMABLE}`);
    for (const d of digests) {
      if (!d) continue;
      for (const row of seatsOf.all(d.session) as { seat_id: string; access_code_hash: string }[]) {
        if (digestsEqual(d.digest, row.access_code_hash)) hits.push({ session: d.session, seat: row.seat_id, hash: row.access_code_hash });
      }
    }
    if (hits.length !== 1) return null;
    const hit = hits[0]!;
    return this.db
      .transaction(() => {
        // Still the same code, still unused, still open: a reissue or a racing browser may have come in between.
        const r = this.db
          .prepare(`UPDATE seats SET code_redeemed_at = ? WHERE session_id = ? AND seat_id = ? AND access_code_hash = ? AND ${REDEEMABLE}`)
          .run(nowIso(), hit.session, hit.seat, hit.hash);
        if (r.changes !== 1) return null;
        return this.info(this.ledger.seat(hit.session, hit.seat));
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
    const seat = this.ledger.findSeat(row.session_id, row.seat_id);
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

  /** Examiner: a fresh code for a seat (lost card, cleared browser); the old code and the seat's tokens stop working. */
  reissueCode(ref: SeatRef): string {
    ref = this.candidateSeat(ref);
    return this.ledger.storeNewCodes(ref.session, [this.ledger.seat(ref.session, ref.seat)])[ref.seat]!;
  }
}
