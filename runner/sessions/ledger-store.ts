import { z } from 'zod';
import { DeploylabError } from '../core/errors.js';
import { metrics } from '../core/metrics.js';
import { parseOrThrow } from '../core/validation.js';
import { distinctCodes, hashCodeSync, newCodeKdf, parseCodeKdf, type CodeKdf } from '../store/access-code.js';
import { nowIso, type DB } from '../store/db.js';
import { LevelSchema } from '../tasks/catalogue.js';
import { OutcomeSchema } from '../scoring/score.js';
import {
  illegal,
  seatStep,
  sessionStep,
  SEAT_STATES,
  SESSION_STATES,
  type SeatClock,
  type SeatEvent,
  type SessionEvent,
  type SessionState,
} from './state-machine.js';

/**
 * All SQL over a session's rows and its ledger (transitions, grading runs, check results, examiner
 * marks, archives) lives here; everything above it works on parsed rows. Rows are parsed with zod
 * when read: a store edited by hand or by a newer program fails with STORE_CORRUPT naming the row,
 * not deep inside a report.
 */

/** The tasks a session examines, frozen when it opened: see pinned-tasks.ts. */
export const PinnedTasksSchema = z.strictObject({
  /** Folder, relative to the session's folder, holding the copy the session grades from. */
  root: z.string(),
  /** Task id → sha256 of its folder's content at open. */
  hashes: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
  /** sha256 of the paper file at open. */
  paperSha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type PinnedTasks = z.output<typeof PinnedTasksSchema>;

/** Fixed when the session is opened; stored as JSON and validated when read back. */
export const SessionSpecSchema = z.strictObject({
  paperId: z.string(),
  tasks: z.array(z.string()),
  /** Where the tasks were read from at open (the pinned copy is what is graded). */
  tasksRoot: z.string(),
  /** Null only for sessions opened before tasks were pinned: those read `tasksRoot`. */
  pinned: PinnedTasksSchema.nullable().default(null),
  workspaceImage: z.string(),
  toolboxImage: z.string().nullable(),
  /** The docker-in-seat sidecar and what is preloaded into it, pinned when the session opened. */
  dockerInSeat: z.strictObject({ dind: z.string(), preload: z.array(z.string()) }).nullable().default(null),
  /** Base URL of the candidate pages printed on the seat cards. */
  baseUrl: z.string().url(),
  /** MiB used per GPU when the session was opened; null where there is no nvidia-smi. */
  gpuBaselineMiB: z.array(z.number()).nullable(),
  /** The bank and seed the paper was drawn with (`session open --bank`); null for a fixed paper. */
  draw: z.strictObject({ bank: z.string(), seed: z.number().int(), bankSha256: z.string().regex(/^[0-9a-f]{64}$/) }).nullable().default(null),
});
export type SessionSpec = z.output<typeof SessionSpecSchema>;

export const SessionRowSchema = z.object({
  id: z.string(),
  paper_id: z.string(),
  level: LevelSchema,
  room: z.string(),
  state: z.enum(SESSION_STATES),
  duration_ms: z.number(),
  practice: z.number().int(),
  created_at: z.string(),
  spec: z.string(),
  /** JSON: the scrypt parameters and salt of the session's access-code hashes (runner/store/access-code.ts). */
  code_kdf: z.string().nullable(),
});
export type SessionRow = z.output<typeof SessionRowSchema>;

export const SeatRowSchema = z.object({
  session_id: z.string(),
  seat_id: z.string(),
  ordinal: z.number().int(),
  candidate_no: z.string(),
  name: z.string(),
  id_number: z.string(),
  state: z.enum(SEAT_STATES),
  /** Only the hash is stored: the code itself is printed on the seat card and nowhere else. Null: no code logs in. */
  access_code_hash: z.string().nullable(),
  code_redeemed_at: z.string().nullable(),
  allowed_ms: z.number(),
  used_ms: z.number(),
  running_since: z.number().nullable(),
  last_error: z.string().nullable(),
});
export type SeatRow = z.output<typeof SeatRowSchema>;

const CheckResultRowSchema = z.object({
  task_id: z.string(),
  check_id: z.string(),
  skill: z.string(),
  points: z.number(),
  outcome: OutcomeSchema,
  earned: z.number(),
  evidence_file: z.string().nullable(),
});
export type CheckResultRow = z.output<typeof CheckResultRowSchema>;

const MarkRowSchema = z.object({
  task_id: z.string(),
  check_id: z.string(),
  earned: z.number(),
  examiner: z.string(),
  reason: z.string(),
  at: z.string(),
});
export type MarkRow = z.output<typeof MarkRowSchema>;

const LatestRunRowSchema = z.object({ seat_id: z.string(), id: z.number(), status: z.string().nullable(), done: z.number() });
export type LatestRunRow = z.output<typeof LatestRunRowSchema>;

export const clockOf = (s: SeatRow): SeatClock => ({ allowedMs: s.allowed_ms, usedMs: s.used_ms, runningSince: s.running_since });

/** Seat id → one-time access code, as printed on the seat cards; returned once and never stored. */
export type SeatCodes = Readonly<Record<string, string>>;

/** What a grading run ended as: every check recorded, some could not run, or the run itself failed. */
export type RunStatus = 'complete' | 'incomplete' | 'error';

export interface CheckResultInsert {
  runId: number;
  session: string;
  seat: string;
  taskId: string;
  checkId: string;
  skill: string;
  points: number;
  outcome: string;
  score: number;
  earned: number;
  summary: string;
  evidenceFile: string;
  evidenceSha256: string;
}

/** The archive's ledger export: file name → the session's rows of one table, in order. */
const EXPORTS: Readonly<Record<string, string>> = {
  'transitions.jsonl': 'SELECT * FROM transitions WHERE session_id = ? ORDER BY seq',
  'grading_runs.jsonl': 'SELECT r.*, e.ended_at, e.status FROM grading_runs r LEFT JOIN grading_run_ends e ON e.run_id = r.id WHERE r.session_id = ? ORDER BY r.id',
  'check_results.jsonl': 'SELECT * FROM check_results WHERE session_id = ? ORDER BY id',
  'examiner_marks.jsonl': 'SELECT * FROM examiner_marks WHERE session_id = ? ORDER BY id',
  'seats.jsonl': 'SELECT session_id, seat_id, candidate_no, name, id_number, state, allowed_ms, used_ms FROM seats WHERE session_id = ? ORDER BY ordinal',
};

function parseRow<T extends z.ZodTypeAny>(schema: T, row: unknown, where: string): z.output<T> {
  return parseOrThrow(schema, row, { source: where, code: 'STORE_CORRUPT', what: { zh: '数据库记录', en: 'store row' } });
}

export class Ledger {
  constructor(readonly db: DB) {}

  // ---- sessions and seats ------------------------------------------------------------------

  session(id: string): SessionRow {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id);
    if (!row) {
      throw new DeploylabError({
        code: 'SESSION_NOT_FOUND',
        fault: 'config',
        message: { zh: `没有场次 ${id}`, en: `no session ${id}` },
        hint: { zh: '运行 deploylab session ls 查看场次', en: 'run deploylab session ls to list sessions' },
      });
    }
    return parseRow(SessionRowSchema, row, `sessions/${id}`);
  }

  exists(id: string): boolean {
    return this.db.prepare('SELECT 1 FROM sessions WHERE id = ?').get(id) !== undefined;
  }

  spec(id: string): SessionSpec {
    return parseOrThrow(SessionSpecSchema, JSON.parse(this.session(id).spec), { source: `session ${id}`, code: 'STORE_CORRUPT', what: { zh: '场次记录', en: 'session record' } });
  }

  list(): SessionRow[] {
    return this.db.prepare('SELECT * FROM sessions ORDER BY created_at').all().map((r, i) => parseRow(SessionRowSchema, r, `sessions[${i}]`));
  }

  seats(id: string): SeatRow[] {
    return this.db
      .prepare('SELECT * FROM seats WHERE session_id = ? ORDER BY ordinal')
      .all(id)
      .map((r, i) => parseRow(SeatRowSchema, r, `seats/${id}[${i}]`));
  }

  /** The seat, or null when the session has none of that id. */
  findSeat(id: string, seatId: string): SeatRow | null {
    const row = this.db.prepare('SELECT * FROM seats WHERE session_id = ? AND seat_id = ?').get(id, seatId);
    return row ? parseRow(SeatRowSchema, row, `seats/${id}/${seatId}`) : null;
  }

  seat(id: string, seatId: string): SeatRow {
    const row = this.findSeat(id, seatId);
    if (!row) throw new DeploylabError({ code: 'SEAT_NOT_FOUND', fault: 'config', message: { zh: `场次 ${id} 没有考位 ${seatId}`, en: `session ${id} has no seat ${seatId}` } });
    return row;
  }

  /** A planned session and its seats, with the hashes of their one-time codes, in one transaction. */
  createSession(row: Omit<SessionRow, 'created_at' | 'state'>, seats: { seatId: string; candidateNo: string; name: string; idNumber: string; codeHash: string }[]): void {
    this.db
      .transaction(() => {
        if (this.exists(row.id)) {
          throw new DeploylabError({ code: 'SESSION_EXISTS', fault: 'config', message: { zh: `场次 ${row.id} 已存在`, en: `session ${row.id} already exists` } });
        }
        this.db
          .prepare('INSERT INTO sessions (id, paper_id, level, room, state, duration_ms, practice, created_at, spec, code_kdf) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(row.id, row.paper_id, row.level, row.room, 'planned', row.duration_ms, row.practice, nowIso(), row.spec, row.code_kdf);
        const ins = this.db.prepare(
          'INSERT INTO seats (session_id, seat_id, ordinal, candidate_no, name, id_number, state, access_code_hash, allowed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        );
        seats.forEach((c, i) => {
          ins.run(row.id, c.seatId, i + 1, c.candidateNo, c.name, c.idNumber, 'pending', c.codeHash, row.duration_ms);
        });
        this.db
          .prepare('INSERT INTO transitions (session_id, seat_id, event, from_state, to_state, at, data) VALUES (?, NULL, ?, ?, ?, ?, ?)')
          .run(row.id, 'open', 'none', 'planned', nowIso(), JSON.stringify({ paper: row.paper_id, room: row.room, seats: seats.length }));
      })
      .immediate();
  }

  // ---- transitions (stored before acted on) ----------------------------------------------

  moveSession(id: string, event: SessionEvent, data?: Record<string, unknown>): SessionState {
    return this.db
      .transaction(() => {
        const s = this.session(id);
        const step = sessionStep(s.state, event);
        if (!step.ok) throw illegal('session', id, s.state, event);
        this.db.prepare('UPDATE sessions SET state = ? WHERE id = ?').run(step.to, id);
        this.db
          .prepare('INSERT INTO transitions (session_id, seat_id, event, from_state, to_state, at, data) VALUES (?, NULL, ?, ?, ?, ?, ?)')
          .run(id, event, s.state, step.to, nowIso(), data ? JSON.stringify(data) : null);
        metrics.sessionTransitions.inc({ kind: 'session', event });
        return step.to;
      })
      .immediate();
  }

  moveSeat(id: string, seatId: string, event: SeatEvent, patch: { clock?: SeatClock; error?: string | null } = {}, data?: Record<string, unknown>): SeatRow {
    return this.db
      .transaction(() => {
        const s = this.seat(id, seatId);
        const step = seatStep(s.state, event);
        if (!step.ok) throw illegal('seat', `${id}/${seatId}`, s.state, event);
        const c = patch.clock ?? clockOf(s);
        const err = patch.error === undefined ? s.last_error : patch.error;
        this.db
          .prepare('UPDATE seats SET state = ?, allowed_ms = ?, used_ms = ?, running_since = ?, last_error = ? WHERE session_id = ? AND seat_id = ?')
          .run(step.to, c.allowedMs, c.usedMs, c.runningSince, err, id, seatId);
        this.db
          .prepare('INSERT INTO transitions (session_id, seat_id, event, from_state, to_state, at, data) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run(id, seatId, event, s.state, step.to, nowIso(), data ? JSON.stringify(data) : null);
        metrics.sessionTransitions.inc({ kind: 'seat', event });
        return this.seat(id, seatId);
      })
      .immediate();
  }

  /** Wall-clock jumps this session's clock was corrected for, oldest first. */
  clockJumps(id: string): { at: string; jumpMs: number }[] {
    const rows = this.db.prepare("SELECT at, data FROM transitions WHERE session_id = ? AND seat_id IS NULL AND event = 'clock-jump' ORDER BY seq").all(id);
    return rows.map((r, i) => {
      const row = parseRow(z.object({ at: z.string(), data: z.string().nullable() }), r, `transitions/${id}/clock-jump[${i}]`);
      return { at: row.at, jumpMs: parseRow(z.object({ jumpMs: z.number() }), JSON.parse(row.data ?? '{}'), `transitions/${id}/clock-jump[${i}].data`).jumpMs };
    });
  }

  /** When the room's clock first started; null before it did. */
  startedAt(id: string): string | null {
    const r = this.db.prepare("SELECT at FROM transitions WHERE session_id = ? AND seat_id IS NULL AND event = 'start' ORDER BY seq LIMIT 1").get(id);
    return r ? parseRow(z.object({ at: z.string() }), r, `transitions/${id}/start`).at : null;
  }

  // ---- access codes ------------------------------------------------------------------------

  /**
   * Fresh codes for these seats of a session, stored hashed in one transaction: each seat's old code
   * stops working and its browser sessions are revoked. The plaintext codes are returned, once.
   */
  storeNewCodes(id: string, seats: readonly SeatRow[], opts: { onlyUnused?: boolean } = {}): SeatCodes {
    const row = this.db.prepare('SELECT code_kdf FROM sessions WHERE id = ?').get(id) as { code_kdf: string | null } | undefined;
    const kdf: CodeKdf = parseCodeKdf(row?.code_kdf ?? null, `session ${id}`) ?? newCodeKdf();
    const plain = distinctCodes(seats.length);
    const hashes = plain.map((c) => hashCodeSync(c, kdf));
    const at = nowIso();
    const issued: string[] = [];
    this.db
      .transaction(() => {
        this.db.prepare('UPDATE sessions SET code_kdf = ? WHERE id = ?').run(JSON.stringify(kdf), id);
        seats.forEach((x, i) => {
          // A candidate who logged in since the seats were read keeps working.
          const unused = opts.onlyUnused ? ' AND code_redeemed_at IS NULL' : '';
          const r = this.db.prepare(`UPDATE seats SET access_code_hash = ?, code_redeemed_at = NULL WHERE session_id = ? AND seat_id = ?${unused}`).run(hashes[i]!, id, x.seat_id);
          if (r.changes !== 1) return;
          issued.push(x.seat_id);
          this.db.prepare('UPDATE seat_tokens SET revoked_at = ? WHERE session_id = ? AND seat_id = ? AND revoked_at IS NULL').run(at, id, x.seat_id);
          // The ledger keeps when a seat's code changed (the state did not).
          this.db
            .prepare('INSERT INTO transitions (session_id, seat_id, event, from_state, to_state, at, data) VALUES (?, ?, ?, ?, ?, ?, ?)')
            .run(id, x.seat_id, 'code-reissued', x.state, x.state, at, JSON.stringify({ wasRedeemed: x.code_redeemed_at !== null }));
        });
      })
      .immediate();
    return Object.fromEntries(seats.flatMap((x, i) => (issued.includes(x.seat_id) ? [[x.seat_id, plain[i]!]] : [])));
  }

  /** Every browser login of the session ends (reset). */
  revokeSeatLogins(id: string): void {
    this.db.prepare('UPDATE seat_tokens SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL').run(nowIso(), id);
  }

  // ---- grading runs ------------------------------------------------------------------------

  /** A new grading run of one seat; `taskHashes` says which content of each task it graded. */
  startRun(id: string, seatId: string, reason: string, taskHashes: Readonly<Record<string, string>> | null): number {
    return Number(
      this.db
        .prepare('INSERT INTO grading_runs (session_id, seat_id, started_at, reason, task_hashes) VALUES (?, ?, ?, ?, ?)')
        .run(id, seatId, nowIso(), reason, taskHashes ? JSON.stringify(taskHashes) : null).lastInsertRowid,
    );
  }

  recordCheck(c: CheckResultInsert): void {
    this.db
      .prepare(
        `INSERT INTO check_results (run_id, session_id, seat_id, task_id, check_id, skill, points, outcome, score, earned, summary, evidence_file, evidence_sha256, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(c.runId, c.session, c.seat, c.taskId, c.checkId, c.skill, c.points, c.outcome, c.score, c.earned, c.summary, c.evidenceFile, c.evidenceSha256, nowIso());
  }

  /** Whether some check of the run could not be judged (error) or is still pending. */
  runHasUnjudged(runId: number): boolean {
    return this.db.prepare("SELECT 1 FROM check_results WHERE run_id = ? AND outcome IN ('error', 'pending')").get(runId) !== undefined;
  }

  endRun(runId: number, status: RunStatus): void {
    this.db.prepare('INSERT INTO grading_run_ends (run_id, ended_at, status) VALUES (?, ?, ?)').run(runId, nowIso(), status);
  }

  /** The seat's latest finished run that did not fail as a whole; null when there is none. */
  latestGradedRun(id: string, seatId: string): { id: number; taskHashes: Record<string, string> | null } | null {
    const r = this.db
      .prepare(
        `SELECT r.id, r.task_hashes FROM grading_runs r JOIN grading_run_ends e ON e.run_id = r.id
         WHERE r.session_id = ? AND r.seat_id = ? AND e.status != 'error' ORDER BY r.id DESC LIMIT 1`,
      )
      .get(id, seatId);
    if (!r) return null;
    const row = parseRow(z.object({ id: z.number(), task_hashes: z.string().nullable() }), r, `grading_runs/${id}/${seatId}`);
    return { id: row.id, taskHashes: row.task_hashes ? parseRow(z.record(z.string(), z.string()), JSON.parse(row.task_hashes), `grading_runs/${row.id}.task_hashes`) : null };
  }

  checkResults(runId: number): CheckResultRow[] {
    return this.db
      .prepare('SELECT * FROM check_results WHERE run_id = ? ORDER BY id')
      .all(runId)
      .map((r, i) => parseRow(CheckResultRowSchema, r, `check_results/run-${runId}[${i}]`));
  }

  /** Latest grading run per seat with the checks recorded so far (the dashboard's progress). */
  latestRuns(id: string): LatestRunRow[] {
    return this.db
      .prepare(
        `SELECT r.seat_id, r.id, e.status, (SELECT count(*) FROM check_results c WHERE c.run_id = r.id) AS done
         FROM grading_runs r LEFT JOIN grading_run_ends e ON e.run_id = r.id
         WHERE r.session_id = ? AND r.id = (SELECT max(id) FROM grading_runs x WHERE x.session_id = r.session_id AND x.seat_id = r.seat_id)`,
      )
      .all(id)
      .map((r, i) => parseRow(LatestRunRowSchema, r, `grading_runs/${id}[${i}]`));
  }

  /** Changes whenever a run ends or an examiner marks: what a cached score sheet is keyed on. */
  scoreVersion(id: string): { ends: number; marks: number } {
    return parseRow(
      z.object({ ends: z.number(), marks: z.number() }),
      this.db
        .prepare(
          `SELECT (SELECT count(*) FROM grading_run_ends e JOIN grading_runs r ON r.id = e.run_id WHERE r.session_id = ?) AS ends,
                  (SELECT count(*) FROM examiner_marks WHERE session_id = ?) AS marks`,
        )
        .get(id, id),
      `score version of ${id}`,
    );
  }

  // ---- examiner marks ----------------------------------------------------------------------

  marks(id: string, seatId: string): MarkRow[] {
    return this.db
      .prepare('SELECT task_id, check_id, earned, examiner, reason, at FROM examiner_marks WHERE session_id = ? AND seat_id = ? ORDER BY id')
      .all(id, seatId)
      .map((r, i) => parseRow(MarkRowSchema, r, `examiner_marks/${id}/${seatId}[${i}]`));
  }

  /** The points a check is worth, from any run of the seat; null when the seat never had it graded. */
  checkPoints(id: string, seatId: string, taskId: string, checkId: string): number | null {
    const r = this.db.prepare('SELECT points FROM check_results WHERE session_id = ? AND seat_id = ? AND task_id = ? AND check_id = ? LIMIT 1').get(id, seatId, taskId, checkId);
    return r ? parseRow(z.object({ points: z.number() }), r, `check_results/${id}/${seatId}/${taskId}/${checkId}`).points : null;
  }

  addMark(id: string, seatId: string, taskId: string, checkId: string, examiner: string, earned: number, reason: string): void {
    this.db.prepare('INSERT INTO examiner_marks (session_id, seat_id, task_id, check_id, examiner, earned, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(id, seatId, taskId, checkId, examiner, earned, reason, nowIso());
  }

  // ---- archive -----------------------------------------------------------------------------

  /** The session's ledger as JSON lines, one file per table. */
  exportLedger(id: string): Record<string, string> {
    return Object.fromEntries(Object.entries(EXPORTS).map(([file, sql]) => [file, this.db.prepare(sql).all(id).map((r) => JSON.stringify(r)).join('\n') + '\n']));
  }

  recordArchive(id: string, dir: string, manifestSha256: string, files: number): void {
    this.db.prepare('INSERT INTO archives (session_id, dir, manifest_sha256, files, at) VALUES (?, ?, ?, ?, ?)').run(id, dir, manifestSha256, files, nowIso());
  }
}

/** A seat row as shown to examiners' tools: the code hash stays in the store. */
export type SeatView = Omit<SeatRow, 'access_code_hash'>;
export const seatView = ({ access_code_hash: _hash, ...rest }: SeatRow): SeatView => rest;
