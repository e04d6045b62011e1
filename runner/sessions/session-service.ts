import { createHash } from 'node:crypto';
import { mapLimit } from '../core/concurrency.js';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type Docker from 'dockerode';
import { z } from 'zod';
import type { SeatHandle } from '../../graders/probe.js';
import { asDeploylabError, DeploylabError, type Bilingual } from '../core/errors.js';
import { log } from '../core/logger.js';
import { metrics } from '../core/metrics.js';
import { parseOrThrow } from '../core/validation.js';
import { seatHandleFor, sweepToolboxes } from '../grading/seat-handle.js';
import { applySetup, gradeSeat, type CheckGrade, type DockerInSeatImages } from '../grading/task-runner.js';
import type { SandboxDriver, SeatRef } from '../sandbox/driver.js';
import { LABEL } from '../sandbox/labels.js';
import { scoreFromCatalogue, type CheckResult, type Outcome, type ScoreSheet } from '../scoring/score.js';
import { levelOf, loadCatalogue, type Level } from '../tasks/catalogue.js';
import { DEFAULT_TASKS_ROOT } from '../tasks/loader.js';
import { distinctCodes, hashCodeSync, newCodeKdf, parseCodeKdf, type CodeKdf } from '../store/access-code.js';
import { acquireLock, nowIso, type DB } from '../store/db.js';
import { loadExamPaper, planForSeatTask, sandboxesOf, type LoadedExamPaper, type SeatSandbox } from './paper.js';
import { checkCapacity, roomDemand } from './capacity.js';
import type { RosterEntry } from './roster.js';
import { WallClockWatch } from './wall-clock-watch.js';
import { defaultDiskPolicy, diskStep, hostFreeBytes, readDiskRows, reserveCheck, writeDiskRow, type DiskPolicy, type DiskStepResult, type SeatDiskRow } from './disk-watch.js';
import { htmlToPdf, type PdfWarning } from './score-sheet-pdf.js';
import { renderScoreSheetHtml, type ExaminerMarkLine, type ScoreSheetDoc } from './score-sheet.js';
import {
  endsAt,
  extendClock,
  illegal,
  remainingMs,
  seatStep,
  sessionStep,
  shiftClock,
  startClock,
  stopClock,
  type SeatClock,
  type SeatEvent,
  type SeatStateName,
  type SessionEvent,
  type SessionState,
} from './state-machine.js';

const slog = log.child({ module: 'sessions' });

/** Fixed when the session is opened; stored as JSON and validated when read back. */
export const SessionSpecSchema = z.strictObject({
  paperId: z.string(),
  tasks: z.array(z.string()),
  tasksRoot: z.string(),
  workspaceImage: z.string(),
  toolboxImage: z.string().nullable(),
  /** The docker-in-seat sidecar and what is preloaded into it, pinned when the session opened. */
  dockerInSeat: z.strictObject({ dind: z.string(), preload: z.array(z.string()) }).nullable().default(null),
  /** Base URL of the candidate pages printed on the seat cards. */
  baseUrl: z.string().url(),
  /** MiB used per GPU when the session was opened; null where there is no nvidia-smi. */
  gpuBaselineMiB: z.array(z.number()).nullable(),
});
export type SessionSpec = z.output<typeof SessionSpecSchema>;

export interface SessionRow {
  id: string;
  paper_id: string;
  level: Level;
  room: string;
  state: SessionState;
  duration_ms: number;
  practice: number;
  created_at: string;
  spec: string;
  /** JSON: the scrypt parameters and salt of the session's access-code hashes (runner/store/access-code.ts). */
  code_kdf: string | null;
}

export interface SeatRow {
  session_id: string;
  seat_id: string;
  ordinal: number;
  candidate_no: string;
  name: string;
  id_number: string;
  state: SeatStateName;
  /** Only the hash is stored: the code itself is printed on the seat card and nowhere else. Null: no code logs in. */
  access_code_hash: string | null;
  code_redeemed_at: string | null;
  allowed_ms: number;
  used_ms: number;
  running_since: number | null;
  last_error: string | null;
}

export const clockOf = (s: SeatRow): SeatClock => ({ allowedMs: s.allowed_ms, usedMs: s.used_ms, runningSince: s.running_since });

export type Progress = (line: Bilingual) => void;

export interface SessionDeps {
  db: DB;
  driver: SandboxDriver;
  dataDir: string;
  /** Engine for the trusted toolbox (model-load checks); without it such checks are `error`. */
  docker?: Docker;
  progress?: Progress;
  now?: () => number;
  /** Monotonic milliseconds (performance.now by default): how wall-clock jumps are noticed. */
  monotonic?: () => number;
  /**
   * How long an operation waits for a session that another process holds (the clock's tick, a
   * dashboard action in the web server) before it is refused with SESSION_LOCKED.
   */
  lockWaitMs?: number;
  /** The disk watch's quota, reserve and cadence (config `disk`). */
  disk?: DiskPolicy;
  /** Free bytes on the host where seats and the store live; null where it cannot be measured. */
  hostFree?: () => Promise<number | null>;
}

export { newAccessCode } from '../store/access-code.js';

/** Seat id → one-time access code, as printed on the seat cards; returned once and never stored. */
export type SeatCodes = Readonly<Record<string, string>>;

/** A seat row as shown to examiners' tools: the code hash stays in the store. */
export type SeatView = Omit<SeatRow, 'access_code_hash'>;
export const seatView = ({ access_code_hash: _hash, ...rest }: SeatRow): SeatView => rest;

/**
 * Fresh codes for these seats of a session, stored hashed in one transaction: each seat's old code
 * stops working and its browser sessions are revoked. The plaintext codes are returned, once.
 */
export function storeNewCodes(db: DB, id: string, seats: readonly SeatRow[], opts: { onlyUnused?: boolean } = {}): SeatCodes {
  const row = db.prepare('SELECT code_kdf FROM sessions WHERE id = ?').get(id) as { code_kdf: string | null } | undefined;
  const kdf: CodeKdf = parseCodeKdf(row?.code_kdf ?? null, `session ${id}`) ?? newCodeKdf();
  const plain = distinctCodes(seats.length);
  const hashes = plain.map((c) => hashCodeSync(c, kdf));
  const at = nowIso();
  const issued: string[] = [];
  db.transaction(() => {
    db.prepare('UPDATE sessions SET code_kdf = ? WHERE id = ?').run(JSON.stringify(kdf), id);
    seats.forEach((x, i) => {
      // A candidate who logged in since the seats were read keeps working.
      const unused = opts.onlyUnused ? ' AND code_redeemed_at IS NULL' : '';
      const r = db.prepare(`UPDATE seats SET access_code_hash = ?, code_redeemed_at = NULL WHERE session_id = ? AND seat_id = ?${unused}`).run(hashes[i]!, id, x.seat_id);
      if (r.changes !== 1) return;
      issued.push(x.seat_id);
      db.prepare('UPDATE seat_tokens SET revoked_at = ? WHERE session_id = ? AND seat_id = ? AND revoked_at IS NULL').run(at, id, x.seat_id);
      // The ledger keeps when a seat's code changed (the state did not).
      db.prepare('INSERT INTO transitions (session_id, seat_id, event, from_state, to_state, at, data) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
        id, x.seat_id, 'code-reissued', x.state, x.state, at, JSON.stringify({ wasRedeemed: x.code_redeemed_at !== null }),
      );
    });
  }).immediate();
  return Object.fromEntries(seats.flatMap((x, i) => (issued.includes(x.seat_id) ? [[x.seat_id, plain[i]!]] : [])));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Run fn over items with at most `limit` at once; results in input order. */
export { mapLimit };

export function sessionIdFor(room: string, at: Date = new Date()): string {
  const slug = room.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 20) || 'room';
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${slug}-${at.getFullYear()}${p(at.getMonth() + 1)}${p(at.getDate())}-${p(at.getHours())}${p(at.getMinutes())}${p(at.getSeconds())}`;
}

/** Transient: the engine or the network hiccuped; a retry may succeed. Config/candidate faults are not retried. */
function transient(e: DeploylabError): boolean {
  return e.fault === 'infrastructure' && !['SANDBOX_IMAGE_MISSING', 'IMAGES_MISSING', 'SESSION_PROFILE_UNAVAILABLE'].includes(e.code);
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

export const MANIFEST = 'SHA256SUMS';

/** Files whose bytes differ from the manifest (or are missing / unlisted). Empty: the archive is intact. */
export function verifyManifest(dir: string): string[] {
  const listed = new Map<string, string>();
  for (const line of readFileSync(join(dir, MANIFEST), 'utf8').split('\n')) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (m) listed.set(m[2]!, m[1]!);
  }
  const bad: string[] = [];
  for (const [rel, hash] of listed) {
    const f = join(dir, rel);
    if (!existsSync(f) || sha256File(f) !== hash) bad.push(rel);
  }
  for (const f of walk(dir)) {
    const rel = relative(dir, f);
    if (rel !== MANIFEST && !listed.has(rel)) bad.push(rel);
  }
  return bad;
}

/** GPU memory used per GPU in MiB, or null where nvidia-smi is absent. */
export function gpuMemoryUsedMiB(): number[] | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 15_000 });
    return out.split('\n').filter((l) => l.trim()).map((l) => Number(l.trim()));
  } catch {
    return null;
  }
}

const csvCell = (v: unknown): string => {
  let s = String(v ?? '');
  // A cell a spreadsheet would run as a formula gets a leading apostrophe.
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};
export const toCsv = (rows: unknown[][]): string => '\uFEFF' + rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export interface SeatReport {
  seat: string;
  candidateNo: string;
  name: string;
  state: SeatStateName;
  runId: number | null;
  sheet: ScoreSheet | null;
  checks: (CheckResult & { evidenceFile: string | null; marked: boolean })[];
  /** Examiner marks in force (the latest per check), with who gave them and why. */
  marks: ExaminerMarkLine[];
}

export interface WrittenReport {
  csv: string;
  json: string;
  /** The printable score sheet. */
  html: string;
  seats: SeatReport[];
}

export interface ResetReport {
  session: string;
  clean: boolean;
  removed: number;
  /** Seat-card files deleted: the only place the access codes were written in clear. */
  cardsRemoved: number;
  leftovers: { kind: string; name: string }[];
  portsHeld: string[];
  gpu: { baselineMiB: number[]; nowMiB: number[]; ok: boolean } | null;
}

/** Per store file and session: the tail of this process's queue of operations (see `locked`). */
const inProcessQueue = new Map<string, Promise<void>>();

/**
 * The exam-room lifecycle over the store and a sandbox driver. Every state change goes through
 * `moveSession`/`moveSeat`, which store the transition (and the new state) in one SQLite
 * transaction BEFORE the side effect runs; after a crash, `reconcile` re-applies what the stored
 * state says (freeze markers, leftovers) and the long operations resume where they were.
 */
export class SessionService {
  readonly db: DB;
  readonly driver: SandboxDriver;
  readonly dataDir: string;
  private readonly docker: Docker | undefined;
  private readonly progress: Progress;
  private readonly now: () => number;
  private readonly monotonic: () => number;
  private readonly lockWaitMs: number;
  readonly disk: DiskPolicy;
  private readonly hostFree: () => Promise<number | null>;

  constructor(deps: SessionDeps) {
    this.db = deps.db;
    this.driver = deps.driver;
    this.dataDir = deps.dataDir;
    this.docker = deps.docker;
    this.progress = deps.progress ?? (() => undefined);
    this.now = deps.now ?? Date.now;
    this.monotonic = deps.monotonic ?? (() => performance.now());
    this.lockWaitMs = deps.lockWaitMs ?? 10_000;
    this.disk = deps.disk ?? defaultDiskPolicy();
    const docker = deps.docker;
    this.hostFree =
      deps.hostFree ??
      (async () => {
        const root = docker ? await docker.info().then((i: { DockerRootDir?: string }) => i.DockerRootDir ?? null, () => null) : null;
        return hostFreeBytes([this.dataDir, ...(root ? [root] : [])]);
      });
  }

  // ---- reading ----------------------------------------------------------------------------

  session(id: string): SessionRow {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    if (!row) {
      throw new DeploylabError({
        code: 'SESSION_NOT_FOUND',
        fault: 'config',
        message: { zh: `没有场次 ${id}`, en: `no session ${id}` },
        hint: { zh: '运行 deploylab session ls 查看场次', en: 'run deploylab session ls to list sessions' },
      });
    }
    return row;
  }

  spec(id: string): SessionSpec {
    return parseOrThrow(SessionSpecSchema, JSON.parse(this.session(id).spec), { source: `session ${id}`, code: 'STORE_CORRUPT', what: { zh: '场次记录', en: 'session record' } });
  }

  seats(id: string): SeatRow[] {
    return this.db.prepare('SELECT * FROM seats WHERE session_id = ? ORDER BY ordinal').all(id) as SeatRow[];
  }

  seat(id: string, seatId: string): SeatRow {
    const row = this.db.prepare('SELECT * FROM seats WHERE session_id = ? AND seat_id = ?').get(id, seatId) as SeatRow | undefined;
    if (!row) throw new DeploylabError({ code: 'SEAT_NOT_FOUND', fault: 'config', message: { zh: `场次 ${id} 没有考位 ${seatId}`, en: `session ${id} has no seat ${seatId}` } });
    return row;
  }

  list(): SessionRow[] {
    return this.db.prepare('SELECT * FROM sessions ORDER BY created_at').all() as SessionRow[];
  }

  /** The sandboxes (one per task) of a candidate's seat. */
  sandboxes(id: string, seatId: string): SeatSandbox[] {
    return sandboxesOf(id, seatId, this.spec(id).tasks);
  }

  sessionDir(id: string): string {
    return join(this.dataDir, 'sessions', id);
  }

  private paper(id: string): LoadedExamPaper {
    const spec = this.spec(id);
    return loadExamPaper(spec.paperId, spec.tasksRoot);
  }

  // ---- transitions (stored before acted on) ----------------------------------------------

  private moveSession(id: string, event: SessionEvent, data?: Record<string, unknown>): SessionState {
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

  private moveSeat(id: string, seatId: string, event: SeatEvent, patch: { clock?: SeatClock; error?: string | null } = {}, data?: Record<string, unknown>): SeatRow {
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

  /** The store's lock, waiting up to lockWaitMs for another process's brief hold to end. */
  private async acquireWaiting(id: string): Promise<() => void> {
    const end = Date.now() + this.lockWaitMs;
    for (;;) {
      try {
        return acquireLock(this.db, id);
      } catch (e) {
        if (!(e instanceof DeploylabError && e.code === 'SESSION_LOCKED') || Date.now() >= end) throw e;
        await sleep(Math.min(100, Math.max(1, end - Date.now())));
      }
    }
  }

  /**
   * One operation on a session at a time. Across processes the store's lock row holds a second
   * runner off (it waits up to lockWaitMs, then is refused); within this process (the web server's
   * examiner actions beside the clock, grading) operations queue here, because the row names only
   * the process and would let them overlap.
   */
  private async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    this.session(id);
    const key = `${this.db.name}\0${id}`;
    const before = inProcessQueue.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = before.then(() => new Promise<void>((resolve) => (done = resolve)));
    inProcessQueue.set(key, mine);
    await before;
    try {
      const release = await this.acquireWaiting(id);
      try {
        return await fn();
      } finally {
        release();
      }
    } finally {
      done();
      if (inProcessQueue.get(key) === mine) inProcessQueue.delete(key);
    }
  }

  // ---- open --------------------------------------------------------------------------------

  /**
   * Plan a session: paper checked, seats and the hashes of their one-time codes stored, seat cards
   * written. No engine work yet. The codes are in the result and on the cards only: the store
   * cannot give them back (a lost card: `reissueCodes`).
   */
  open(opts: {
    paperId: string;
    room: string;
    roster: RosterEntry[];
    images: { workspaceCpu: string; toolbox: string | null; dockerInSeat?: DockerInSeatImages };
    baseUrl: string;
    id?: string;
    durationMinutes?: number;
    tasksRoot?: string;
  }): { session: SessionRow; seats: SeatRow[]; codes: SeatCodes; cards: { html: string; csv: string }; warnings: Bilingual[] } {
    const tasksRoot = opts.tasksRoot ?? DEFAULT_TASKS_ROOT;
    const p = loadExamPaper(opts.paperId, tasksRoot);
    const id = opts.id ?? sessionIdFor(opts.room);
    if (!/^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$/.test(id)) {
      throw new DeploylabError({ code: 'SESSION_ID_INVALID', fault: 'config', message: { zh: `场次编号无效：${id}`, en: `invalid session id: ${id}` }, hint: { zh: '小写字母、数字和 -，最多 30 个字符', en: 'lower-case letters, digits and "-", at most 30 characters' } });
    }
    const spec: SessionSpec = {
      paperId: p.paper.id,
      tasks: p.paper.tasks,
      tasksRoot,
      workspaceImage: opts.images.workspaceCpu,
      toolboxImage: opts.images.toolbox,
      dockerInSeat: opts.images.dockerInSeat ?? null,
      baseUrl: opts.baseUrl,
      gpuBaselineMiB: gpuMemoryUsedMiB(),
    };
    // Before the codes are hashed (about 50 ms each) and before any seat is made.
    const warnings = checkCapacity(roomDemand(opts.roster.length, p.tasks), { sandboxesPerSession: this.driver.sandboxesPerSession });
    const durationMs = (opts.durationMinutes ?? p.paper.durationMinutes) * 60_000;
    const width = String(opts.roster.length).length < 2 ? 2 : String(opts.roster.length).length;
    const seatIds = opts.roster.map((_, i) => `s${String(i + 1).padStart(width, '0')}`);
    const kdf = newCodeKdf();
    const plain = distinctCodes(opts.roster.length);
    // Hashed before the transaction: ~50 ms a code must not hold the store's write lock.
    const hashes = plain.map((c) => hashCodeSync(c, kdf));
    this.db
      .transaction(() => {
        if (this.db.prepare('SELECT 1 FROM sessions WHERE id = ?').get(id)) {
          throw new DeploylabError({ code: 'SESSION_EXISTS', fault: 'config', message: { zh: `场次 ${id} 已存在`, en: `session ${id} already exists` } });
        }
        this.db
          .prepare('INSERT INTO sessions (id, paper_id, level, room, state, duration_ms, practice, created_at, spec, code_kdf) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(id, p.paper.id, p.paper.level, opts.room, 'planned', durationMs, p.paper.practice ? 1 : 0, nowIso(), JSON.stringify(spec), JSON.stringify(kdf));
        const ins = this.db.prepare(
          'INSERT INTO seats (session_id, seat_id, ordinal, candidate_no, name, id_number, state, access_code_hash, allowed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        );
        opts.roster.forEach((c, i) => {
          ins.run(id, seatIds[i]!, i + 1, c.candidateNo, c.name, c.idNumber, 'pending', hashes[i]!, durationMs);
        });
        this.db
          .prepare('INSERT INTO transitions (session_id, seat_id, event, from_state, to_state, at, data) VALUES (?, NULL, ?, ?, ?, ?, ?)')
          .run(id, 'open', 'none', 'planned', nowIso(), JSON.stringify({ paper: p.paper.id, room: opts.room, seats: opts.roster.length }));
      })
      .immediate();
    const codes: SeatCodes = Object.fromEntries(seatIds.map((seat, i) => [seat, plain[i]!]));
    const cards = this.writeCards(id, codes);
    return { session: this.session(id), seats: this.seats(id), codes, cards, warnings };
  }

  /**
   * New one-time codes (a lost card, a cleared browser, cards to reprint): the old code of each
   * seat stops working at once and the seat's logged-in browsers are logged out. One seat, or
   * every seat whose code has not been used yet (candidates already working are left alone).
   * New cards are written; the codes are in the result and on the cards only.
   */
  reissueCodes(id: string, opts: { seat?: string } = {}): { codes: SeatCodes; cards: { html: string; csv: string } } {
    const targets = opts.seat ? [this.seat(id, opts.seat)] : this.seats(id).filter((x) => x.code_redeemed_at === null);
    const live = targets.filter((x) => x.state !== 'removed');
    if (live.length === 0) {
      throw new DeploylabError({
        code: 'SESSION_NO_CODES_TO_REISSUE',
        fault: 'config',
        message: opts.seat
          ? { zh: `考位 ${opts.seat} 已移除，不能再登录`, en: `seat ${opts.seat} is removed; nobody can log in to it` }
          : { zh: `场次 ${id} 没有尚未使用登录码的考位`, en: `session ${id} has no seat whose code is still unused` },
        hint: { zh: '为某个考位重发：加 --seat', en: 'to reissue a used code, name the seat with --seat' },
      });
    }
    const codes = storeNewCodes(this.db, id, live, { onlyUnused: !opts.seat });
    const stamp = nowIso().replace(/[:.]/g, '-');
    // Every unused code replaced: the new cards take the usual name. One seat: a card of its own beside the old ones.
    const cards = this.writeCards(id, codes, opts.seat ? `seat-cards-${opts.seat}-${stamp}` : 'seat-cards');
    const n = Object.keys(codes).length;
    this.progress({ zh: `已为 ${n} 个考位重发登录码，旧码作废`, en: `new access codes for ${n} seat(s); the old ones no longer work` });
    return { codes, cards };
  }

  /** Seat cards (URL + one-time access code) of the seats in `codes`, as printable HTML and CSV (owner-only files). */
  writeCards(id: string, codes: SeatCodes, name = 'seat-cards'): { html: string; csv: string } {
    const s = this.session(id);
    const spec = this.spec(id);
    const seats = this.seats(id).filter((x) => codes[x.seat_id] !== undefined);
    const dir = this.sessionDir(id);
    mkdirSync(dir, { recursive: true });
    const csv = join(dir, `${name}.csv`);
    writeFileSync(csv, toCsv([['seat', 'candidate_no', 'name', 'url', 'access_code'], ...seats.map((x) => [x.seat_id, x.candidate_no, x.name, spec.baseUrl, codes[x.seat_id]!])]), { mode: 0o600 });
    const cards = seats
      .map(
        (x) => `<section class="card"><h2>考位 Seat ${esc(x.seat_id)}</h2>
<p>准考证号 Candidate No.: <b>${esc(x.candidate_no)}</b></p><p>姓名 Name: <b>${esc(x.name)}</b></p>
<p>网址 URL: <code>${esc(spec.baseUrl)}</code></p><p>一次性登录码 One-time access code: <code class="code">${esc(codes[x.seat_id]!)}</code></p>
<p class="small">登录码仅可使用一次，请勿外传。The code works once; keep it to yourself.</p></section>`,
      )
      .join('\n');
    const html = join(dir, `${name}.html`);
    writeFileSync(
      html,
      `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>考位卡 Seat cards — ${esc(s.id)}</title>
<style>body{font-family:sans-serif}.card{border:1px dashed #444;padding:12px;margin:8px;width:340px;display:inline-block;vertical-align:top;page-break-inside:avoid}.code{font-size:1.6em;letter-spacing:.15em}.small{font-size:.8em;color:#555}</style></head>
<body><h1>${esc(s.room)} · ${esc(s.paper_id)} · ${esc(s.id)}</h1>
${cards}
</body></html>
`,
      { mode: 0o600 },
    );
    return { html, csv };
  }

  // ---- provisioning ------------------------------------------------------------------------

  /**
   * Provision every seat not yet ready, `concurrency` at a time, retrying transient engine errors.
   * Resumable: a seat found in `provisioning` (a crash mid-way) is destroyed and provisioned again.
   */
  async provision(id: string, opts: { concurrency?: number; retries?: number } = {}): Promise<{ ready: string[]; failed: { seat: string; error: string }[] }> {
    return this.locked(id, async () => {
      const todo = this.seats(id).filter((s) => ['pending', 'provisioning', 'failed'].includes(s.state));
      await this.checkDiskReserve(todo.length);
      this.moveSession(id, 'provision');
      const spec = this.spec(id);
      const paper = this.paper(id);
      const total = this.seats(id).length;
      let done = total - todo.length;
      const retries = opts.retries ?? 2;
      await mapLimit(todo, opts.concurrency ?? 3, async (seat) => {
        const boxes = this.sandboxes(id, seat.seat_id);
        const destroyAll = (): Promise<unknown> => Promise.all(boxes.map((b) => this.driver.destroy(b.ref).catch(() => undefined)));
        for (let attempt = 0; ; attempt++) {
          this.moveSeat(id, seat.seat_id, 'provision', { error: null }, { attempt });
          const t0 = Date.now();
          try {
            await destroyAll();
            for (const [i, t] of paper.tasks.entries()) {
              const ref = boxes[i]!.ref;
              await this.driver.provision(planForSeatTask(t, ref, seat.seat_id, { workspaceCpu: spec.workspaceImage, ...(spec.dockerInSeat ? { dockerInSeat: spec.dockerInSeat } : {}) }));
              await applySetup(this.driver, ref, t);
            }
            this.moveSeat(id, seat.seat_id, 'provisioned', {}, { seconds: (Date.now() - t0) / 1000 });
            metrics.seatProvisionSeconds.observe({ result: 'ok' }, (Date.now() - t0) / 1000);
            done++;
            this.progress({ zh: `[${done}/${total}] 考位 ${seat.seat_id} 就绪（${((Date.now() - t0) / 1000).toFixed(1)} 秒）`, en: `[${done}/${total}] seat ${seat.seat_id} ready (${((Date.now() - t0) / 1000).toFixed(1)} s)` });
            return;
          } catch (e) {
            const err = asDeploylabError(e);
            if (transient(err) && attempt < retries) {
              slog.warn({ seat: seat.seat_id, attempt, code: err.code }, 'seat provisioning failed, retrying');
              this.progress({ zh: `考位 ${seat.seat_id} 准备失败（${err.code}），第 ${attempt + 1} 次重试`, en: `seat ${seat.seat_id} failed (${err.code}), retry ${attempt + 1}` });
              await sleep(1000 * 2 ** attempt);
              continue;
            }
            metrics.seatProvisionSeconds.observe({ result: 'failed' }, (Date.now() - t0) / 1000);
            this.moveSeat(id, seat.seat_id, 'fail', { error: `${err.code}: ${err.message}` });
            await destroyAll();
            this.progress({ zh: `考位 ${seat.seat_id} 准备失败：${err.code}`, en: `seat ${seat.seat_id} failed: ${err.code}` });
            return;
          }
        }
      });
      const seats = this.seats(id);
      const failed = seats.filter((s) => s.state === 'failed').map((s) => ({ seat: s.seat_id, error: s.last_error ?? '' }));
      if (failed.length === 0) this.moveSession(id, 'provisioned');
      return { ready: seats.filter((s) => s.state === 'ready').map((s) => s.seat_id), failed };
    });
  }

  // ---- clock -------------------------------------------------------------------------------

  private targetSeats(id: string, seatId: string | undefined, states: SeatStateName[]): SeatRow[] {
    if (seatId) {
      const s = this.seat(id, seatId);
      return states.includes(s.state) ? [s] : [];
    }
    return this.seats(id).filter((s) => states.includes(s.state));
  }

  /** Start the clock of the room (every ready seat) or of one seat that was ready later. */
  async start(id: string, seatId?: string): Promise<SeatRow[]> {
    return this.locked(id, async () => {
      this.moveSession(id, 'start');
      const now = this.now();
      return this.targetSeats(id, seatId, ['ready']).map((s) => this.moveSeat(id, s.seat_id, 'start', { clock: startClock(clockOf(s), now) }));
    });
  }

  /** Pause: the clock stops and candidate access closes until resumed. */
  async pause(id: string, seatId?: string): Promise<SeatRow[]> {
    return this.locked(id, async () => {
      if (!seatId) this.moveSession(id, 'pause');
      const now = this.now();
      const out: SeatRow[] = [];
      for (const s of this.targetSeats(id, seatId, ['running'])) {
        out.push(this.moveSeat(id, s.seat_id, 'pause', { clock: stopClock(clockOf(s), now) }));
        await this.freezeBoxes(id, s.seat_id);
      }
      return out;
    });
  }

  async resume(id: string, seatId?: string): Promise<SeatRow[]> {
    return this.locked(id, async () => {
      if (!seatId) this.moveSession(id, 'resume');
      const now = this.now();
      const out: SeatRow[] = [];
      for (const s of this.targetSeats(id, seatId, ['paused'])) {
        out.push(this.moveSeat(id, s.seat_id, 'resume', { clock: startClock(clockOf(s), now) }));
        await this.thawBoxes(id, s.seat_id);
      }
      return out;
    });
  }

  /** More time for the room or one seat. A seat frozen by its clock gets access back while the room still runs. */
  async extend(id: string, ms: number, seatId?: string): Promise<SeatRow[]> {
    return this.locked(id, async () => {
      const room = this.session(id);
      if (!seatId) this.moveSession(id, 'extend', { ms });
      const out: SeatRow[] = [];
      for (const s of this.targetSeats(id, seatId, ['ready', 'running', 'paused', 'frozen'])) {
        let row = this.moveSeat(id, s.seat_id, 'extend', { clock: extendClock(clockOf(s), ms) }, { ms });
        if (row.state === 'frozen' && room.state === 'running' && remainingMs(clockOf(row), this.now()) > 0) {
          row = this.moveSeat(id, s.seat_id, 'resume', { clock: startClock(clockOf(row), this.now()) });
          await this.thawBoxes(id, s.seat_id);
        }
        out.push(row);
      }
      return out;
    });
  }

  private async freezeBoxes(id: string, seatId: string): Promise<void> {
    for (const b of this.sandboxes(id, seatId)) await this.driver.freeze(b.ref);
  }

  private async thawBoxes(id: string, seatId: string): Promise<void> {
    // A seat the disk watch stopped gets its processes back with its access.
    if (readDiskRows(this.db, id).get(seatId)?.halted === 1) await this.releaseHalted(id, seatId);
    for (const b of this.sandboxes(id, seatId)) await this.driver.thaw(b.ref);
  }

  // ---- disk --------------------------------------------------------------------------------

  /** Seats are opened only while the host keeps its reserve after each filled its quota. */
  private async checkDiskReserve(seats: number): Promise<void> {
    if (seats === 0) return;
    const free = await this.hostFree();
    if (free === null) return;
    const c = reserveCheck(free, seats, this.disk);
    if (c.ok) return;
    const gib = (b: number): string => (b / 1024 ** 3).toFixed(1);
    throw new DeploylabError({
      code: 'HOST_DISK_RESERVE',
      fault: 'infrastructure',
      message: {
        zh: `主机可用磁盘 ${gib(c.freeBytes)} GiB，不足以开设 ${seats} 个考位（每个配额 ${this.disk.seatQuotaMiB} MiB）并保留 ${this.disk.reserveGiB} GiB：需要 ${gib(c.requiredBytes)} GiB`,
        en: `the host has ${gib(c.freeBytes)} GiB free, not enough for ${seats} seat(s) at ${this.disk.seatQuotaMiB} MiB each plus the ${this.disk.reserveGiB} GiB reserve: ${gib(c.requiredBytes)} GiB needed`,
      },
      hint: { zh: '清理磁盘，或调低配置 disk.seatQuotaMiB / disk.reserveGiB，或分批开设考位', en: 'free disk space, or lower config disk.seatQuotaMiB / disk.reserveGiB, or open fewer seats at a time' },
      details: { freeBytes: c.freeBytes, requiredBytes: c.requiredBytes, seats },
    });
  }

  /** One sample of the disk watch over the room: see disk-watch.ts. */
  async diskCheck(id: string): Promise<DiskStepResult> {
    const [free, sampled] = await Promise.all([this.hostFree(), this.driver.diskUsage({ session: id })]);
    return this.locked(id, () =>
      diskStep(this.db, this.driver, id, sampled, this.disk, {
        seats: () => this.seats(id).map((s) => ({ seat: s.seat_id, state: s.state, refs: this.sandboxes(id, s.seat_id).map((b) => b.ref) })),
        pauseRunning: async (seat, reason) => {
          this.moveSeat(id, seat, 'pause', { clock: stopClock(clockOf(this.seat(id, seat)), this.now()) }, { reason });
          await Promise.all(this.sandboxes(id, seat).map((b) => this.driver.freeze(b.ref)));
        },
        record: (seat, event, data) => this.moveSeat(id, seat, event, {}, data),
        say: this.progress,
      }, free, this.now()),
    );
  }

  /** The disk watch's latest reading per seat. */
  diskReadings(id: string): Map<string, SeatDiskRow> {
    return readDiskRows(this.db, id);
  }

  /**
   * An examiner lets a seat the disk watch stopped go on (to delete what filled it): its processes
   * run again, its state and access stay as they are (resume gives access back), and it is not
   * stopped again for the grace period.
   */
  async releaseDisk(id: string, seatId: string): Promise<SeatDiskRow | null> {
    return this.locked(id, async () => {
      this.seat(id, seatId);
      if (readDiskRows(this.db, id).get(seatId)?.halted !== 1) return null;
      return this.releaseHalted(id, seatId);
    });
  }

  private async releaseHalted(id: string, seatId: string): Promise<SeatDiskRow> {
    for (const b of this.sandboxes(id, seatId)) await this.driver.release(b.ref);
    const row = { ...readDiskRows(this.db, id).get(seatId)!, halted: 0, halted_reason: null, released_at: this.now() };
    writeDiskRow(this.db, row);
    this.moveSeat(id, seatId, 'disk-release', {}, { bytes: row.bytes, quotaBytes: row.quota_bytes });
    this.progress({ zh: `考位 ${seatId} 的进程已恢复运行`, en: `seat ${seatId}: its processes run again` });
    return row;
  }

  private async freezeSeat(id: string, s: SeatRow, reason: string): Promise<void> {
    this.moveSeat(id, s.seat_id, 'freeze', { clock: stopClock(clockOf(s), this.now()) }, { reason });
    await this.freezeBoxes(id, s.seat_id);
    this.progress({ zh: `考位 ${s.seat_id} 已冻结（${reason}）`, en: `seat ${s.seat_id} frozen (${reason})` });
  }

  /**
   * End now: the whole room, or one seat (a candidate who hands in early). Ended seats are frozen:
   * candidate access closed, services keep running. When the last working seat ends, the room is
   * frozen too. An ended seat with time left gets access back through `extend`.
   */
  async end(id: string, seatId?: string): Promise<SeatRow[]> {
    return this.locked(id, async () => {
      if (!seatId) this.moveSession(id, 'freeze', { reason: 'ended by examiner' });
      const ended: SeatRow[] = [];
      for (const s of this.targetSeats(id, seatId, ['ready', 'running', 'paused'])) {
        await this.freezeSeat(id, s, seatId ? 'seat ended by examiner' : 'end');
        ended.push(this.seat(id, s.seat_id));
      }
      if (seatId) this.freezeRoomIfDone(id, 'every seat ended');
      return ended;
    });
  }

  /** A running or paused room with no seat left working is frozen; its state either way. */
  private freezeRoomIfDone(id: string, reason: string): SessionState {
    const room = this.session(id);
    const working = this.seats(id).some((s) => ['running', 'paused', 'ready'].includes(s.state));
    if ((room.state === 'running' || room.state === 'paused') && !working) return this.moveSession(id, 'freeze', { reason });
    return room.state;
  }

  /**
   * One clock step: seats whose time is up are frozen; when no seat is left working the room is
   * frozen. `wallJumpMs`, a jump of the host's wall clock seen since the last step, first moves
   * every running clock with it (and is recorded), so no candidate loses or gains that time.
   */
  async tick(id: string, wallJumpMs = 0): Promise<SessionState> {
    return this.locked(id, async () => {
      if (wallJumpMs !== 0) this.clockJumped(id, wallJumpMs);
      const now = this.now();
      for (const s of this.targetSeats(id, undefined, ['running'])) {
        if (remainingMs(clockOf(s), now) <= 0) await this.freezeSeat(id, s, 'time up');
      }
      return this.freezeRoomIfDone(id, 'all seats out of time');
    });
  }

  private clockJumped(id: string, jumpMs: number): void {
    const running = this.targetSeats(id, undefined, ['running']);
    log.warn({ session: id, jumpMs, seats: running.length }, 'the wall clock jumped; running seat clocks moved with it');
    this.progress({
      zh: `主机时钟跳变 ${(jumpMs / 1000).toFixed(1)} 秒：${running.length} 个计时中考位的剩余时间已保持不变`,
      en: `the host's wall clock jumped by ${(jumpMs / 1000).toFixed(1)} s: the remaining time of ${running.length} running seat(s) was kept`,
    });
    if (this.session(id).state === 'running') this.moveSession(id, 'clock-jump', { jumpMs, seats: running.length });
    for (const s of running) this.moveSeat(id, s.seat_id, 'clock-jump', { clock: shiftClock(clockOf(s), jumpMs) }, { jumpMs });
  }

  /** Wall-clock jumps this session's clock was corrected for, oldest first. */
  clockJumps(id: string): { at: string; jumpMs: number }[] {
    const rows = this.db
      .prepare("SELECT at, data FROM transitions WHERE session_id = ? AND seat_id IS NULL AND event = 'clock-jump' ORDER BY seq")
      .all(id) as { at: string; data: string | null }[];
    return rows.map((r) => ({ at: r.at, jumpMs: z.object({ jumpMs: z.number() }).parse(JSON.parse(r.data ?? '{}')).jumpMs }));
  }

  /**
   * Keep the clock until the room is frozen, then grade. Safe to kill and start again: the clock
   * lives in the store (time keeps running while the runner is down) and a seat whose time ran
   * out meanwhile is frozen on the first tick.
   */
  async supervise(id: string, opts: { pollMs?: number; grade?: boolean; concurrency?: number } = {}): Promise<SessionState> {
    await this.reconcile(id);
    let waiting = false;
    let announced = false;
    const watch = new WallClockWatch({ wall: this.now, monotonic: this.monotonic });
    let jump = 0;
    let diskDue = 0;
    let diskWatched = true;
    for (;;) {
      let state: SessionState;
      // A jump seen while another process held the room is kept for the next step.
      jump += watch.check();
      try {
        state = await this.tick(id, jump);
        jump = 0;
        waiting = false;
      } catch (e) {
        // Another process holds the room for longer than a tick waits (grading, a long action):
        // the clock lives in the store, so the next tick catches up.
        if (!(e instanceof DeploylabError && e.code === 'SESSION_LOCKED')) throw e;
        if (!waiting) this.progress({ zh: `场次 ${id} 正由另一个进程操作，稍后继续看管`, en: `session ${id} is held by another process; supervising resumes when it lets go` });
        waiting = true;
        await sleep(opts.pollMs ?? 1000);
        continue;
      }
      if (!['ready', 'running', 'paused'].includes(state)) break;
      if (diskWatched && this.monotonic() >= diskDue) {
        diskDue = this.monotonic() + this.disk.sampleSeconds * 1000;
        diskWatched = await this.diskCheck(id).then(
          () => true,
          (e: unknown) => {
            const err = asDeploylabError(e);
            // An engine with its own quotas (Kubernetes' ephemeral-storage) is not sampled; a failed
            // sample is tried again next time, the clock does not wait for it.
            slog.warn({ session: id, code: err.code, err: err.message }, 'disk watch sample failed');
            return err.code !== 'SANDBOX_UNSUPPORTED';
          },
        );
      }
      const next = Math.min(
        ...this.seats(id)
          .map((s) => endsAt(clockOf(s)))
          .filter((x): x is number => x !== null),
      );
      if (!announced) {
        announced = true;
        const at = Number.isFinite(next) ? new Date(next).toLocaleTimeString('zh-CN', { hour12: false }) : null;
        this.progress(
          at
            ? { zh: `看管场次 ${id}：最早的考位于 ${at} 到时`, en: `supervising session ${id}: the first seat's time ends at ${at}` }
            : { zh: `看管场次 ${id}：计时尚未开始`, en: `supervising session ${id}: no clock is running yet` },
        );
      }
      await sleep(Math.max(50, Math.min(opts.pollMs ?? 1000, Number.isFinite(next) ? next - this.now() : Infinity)));
    }
    if (opts.grade !== false && ['frozen', 'grading'].includes(this.session(id).state)) await this.grade(id, opts.concurrency ? { concurrency: opts.concurrency } : {});
    return this.session(id).state;
  }

  // ---- reconcile ---------------------------------------------------------------------------

  /**
   * Bring the engine in line with the store after a restart: seats the store says are closed to
   * the candidate get their freeze marker (a crash may have come between storing and acting), seats
   * the store does not know are removed, seats the engine lost are reported.
   */
  async reconcile(id: string): Promise<{ refrozen: string[]; thawed: string[]; orphans: string[]; missing: string[] }> {
    const engine = new Map((await this.driver.list({ session: id })).map((s) => [s.ref.seat, s]));
    const out = { refrozen: [] as string[], thawed: [] as string[], orphans: [] as string[], missing: [] as string[] };
    const known = new Set<string>();
    for (const s of this.seats(id)) {
      for (const b of this.sandboxes(id, s.seat_id)) {
        const name = b.ref.seat;
        known.add(name);
        const e = engine.get(name);
        if (['ready', 'running', 'paused', 'frozen', 'grading', 'graded'].includes(s.state) && (!e || e.state === 'missing')) {
          out.missing.push(name);
          continue;
        }
        if (!e) continue;
        if (['paused', 'frozen', 'grading', 'graded'].includes(s.state) && e.state !== 'frozen') {
          await this.driver.freeze(b.ref);
          out.refrozen.push(name);
        } else if (s.state === 'running' && e.state === 'frozen') {
          await this.driver.thaw(b.ref);
          out.thawed.push(name);
        }
      }
    }
    for (const seat of engine.keys()) {
      if (!known.has(seat)) {
        await this.driver.destroy({ session: id, seat });
        out.orphans.push(seat);
      }
    }
    if (this.docker) await sweepToolboxes(this.docker, id).catch(() => 0);
    if (out.missing.length + out.orphans.length + out.refrozen.length + out.thawed.length > 0) slog.warn({ session: id, ...out }, 'reconciled with the engine');
    return out;
  }

  // ---- grading -----------------------------------------------------------------------------

  private handleFor(id: string, ref: SeatRef, taskId: string): SeatHandle {
    const spec = this.spec(id);
    return seatHandleFor({
      driver: this.driver,
      ref,
      task: taskId,
      ...(this.docker && spec.toolboxImage ? { toolbox: { docker: this.docker, image: spec.toolboxImage } } : {}),
    });
  }

  /**
   * Grade every frozen seat; each seat gets a new grading run in the ledger, every check's outcome
   * and evidence file appended as it finishes. Seats run one at a time on a host without spare
   * cores (fewer than 4), so latency probes of different seats never overlap; within a seat the
   * grading module keeps latency probes alone.
   */
  async grade(id: string, opts: { concurrency?: number; reason?: string } = {}): Promise<{ graded: string[]; errors: { seat: string; error: string }[] }> {
    return this.locked(id, async () => {
      const regrade = this.session(id).state === 'graded';
      this.moveSession(id, 'grade', { regrade });
      await this.reconcile(id);
      const paper = this.paper(id);
      const seatConcurrency = opts.concurrency ?? (availableParallelism() < 4 ? 1 : Math.floor(availableParallelism() / 2));
      const todo = this.seats(id).filter((s) => s.state === 'frozen' || s.state === 'grading' || (regrade && s.state === 'graded'));
      const errors: { seat: string; error: string }[] = [];
      const graded: string[] = [];
      let n = 0;
      await mapLimit(todo, seatConcurrency, async (s) => {
        const resumed = s.state === 'grading';
        this.moveSeat(id, s.seat_id, 'grade');
        const runId = Number(
          this.db
            .prepare('INSERT INTO grading_runs (session_id, seat_id, started_at, reason) VALUES (?, ?, ?, ?)')
            .run(id, s.seat_id, nowIso(), opts.reason ?? (resumed ? 'resumed after interruption' : regrade ? 'regrade' : 'end of exam')).lastInsertRowid,
        );
        const evDir = join(this.sessionDir(id), 'evidence', s.seat_id, `run-${runId}`);
        mkdirSync(evDir, { recursive: true });
        const boxes = this.sandboxes(id, s.seat_id);
        const insert = this.db.prepare(
          `INSERT INTO check_results (run_id, session_id, seat_id, task_id, check_id, skill, points, outcome, score, earned, summary, evidence_file, evidence_sha256, at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        let status = 'complete';
        try {
          for (const [i, t] of paper.tasks.entries()) {
            await gradeSeat(t.task, this.handleFor(id, boxes[i]!.ref, t.task.id), {
              concurrency: 2,
              onCheck: (g: CheckGrade) => {
                const file = join(evDir, `${t.task.id}--${g.checkId}.json`);
                writeFileSync(file, JSON.stringify({ task: t.task.id, check: g.checkId, kind: g.kind, result: g.result, blockedBy: g.blockedBy, outcome: g.outcome }, null, 2));
                insert.run(
                  runId, id, s.seat_id, t.task.id, g.checkId, g.result.skill, g.points, g.result.outcome, g.outcome?.score ?? 0, g.result.earned,
                  JSON.stringify(g.outcome?.summary ?? { zh: `依赖未通过：${(g.blockedBy ?? []).join(', ')}`, en: `blocked by: ${(g.blockedBy ?? []).join(', ')}` }),
                  relative(this.dataDir, file), sha256File(file), nowIso(),
                );
              },
            });
          }
          if (this.db.prepare("SELECT 1 FROM check_results WHERE run_id = ? AND outcome IN ('error', 'pending')").get(runId)) status = 'incomplete';
        } catch (e) {
          const err = asDeploylabError(e);
          status = 'error';
          errors.push({ seat: s.seat_id, error: `${err.code}: ${err.message}` });
        }
        this.db.prepare('INSERT INTO grading_run_ends (run_id, ended_at, status) VALUES (?, ?, ?)').run(runId, nowIso(), status);
        if (status !== 'error') {
          this.moveSeat(id, s.seat_id, 'graded', {}, { runId, status });
          graded.push(s.seat_id);
        }
        n++;
        this.progress({ zh: `[${n}/${todo.length}] 考位 ${s.seat_id} 评分${status === 'error' ? '失败' : '完成'}（第 ${runId} 次评分）`, en: `[${n}/${todo.length}] seat ${s.seat_id} ${status === 'error' ? 'grading failed' : 'graded'} (run ${runId})` });
      });
      if (errors.length === 0) this.moveSession(id, 'graded');
      return { graded, errors };
    });
  }

  // ---- report (derived from the ledger) ----------------------------------------------------

  /** Per seat: the latest finished, non-error run's checks, with examiner marks applied (latest mark wins). */
  report(id: string): SeatReport[] {
    const s = this.session(id);
    const catalogue = loadCatalogue();
    return this.seats(id).map((seat) => {
      const run = this.db
        .prepare(
          `SELECT r.id FROM grading_runs r JOIN grading_run_ends e ON e.run_id = r.id
           WHERE r.session_id = ? AND r.seat_id = ? AND e.status != 'error' ORDER BY r.id DESC LIMIT 1`,
        )
        .get(id, seat.seat_id) as { id: number } | undefined;
      if (!run) return { seat: seat.seat_id, candidateNo: seat.candidate_no, name: seat.name, state: seat.state, runId: null, sheet: null, checks: [], marks: [] };
      const rows = this.db.prepare('SELECT * FROM check_results WHERE run_id = ? ORDER BY id').all(run.id) as {
        task_id: string; check_id: string; skill: string; points: number; outcome: Outcome; earned: number; evidence_file: string | null;
      }[];
      const marks = this.db.prepare('SELECT task_id, check_id, earned, examiner, reason, at FROM examiner_marks WHERE session_id = ? AND seat_id = ? ORDER BY id').all(id, seat.seat_id) as {
        task_id: string; check_id: string; earned: number; examiner: string; reason: string; at: string;
      }[];
      const latest = new Map(marks.map((m) => [`${m.task_id}/${m.check_id}`, m]));
      const mark = new Map([...latest].map(([k, m]) => [k, m.earned]));
      const markLines: ExaminerMarkLine[] = rows.flatMap((r) => {
        const m = latest.get(`${r.task_id}/${r.check_id}`);
        return m ? [{ taskId: r.task_id, checkId: r.check_id, points: r.points, earned: m.earned, autoEarned: r.earned, examiner: m.examiner, reason: m.reason, at: m.at }] : [];
      });
      const checks = rows.map((r) => {
        const m = mark.get(`${r.task_id}/${r.check_id}`);
        const earned = m ?? r.earned;
        const outcome: Outcome = m === undefined ? r.outcome : m >= r.points ? 'pass' : m <= 0 ? 'fail' : 'partial';
        return { taskId: r.task_id, checkId: r.check_id, skill: r.skill, points: r.points, earned, outcome, evidenceFile: r.evidence_file, marked: m !== undefined };
      });
      const sheet = scoreFromCatalogue(catalogue, { level: s.level, practice: s.practice === 1, checks });
      return { seat: seat.seat_id, candidateNo: seat.candidate_no, name: seat.name, state: seat.state, runId: run.id, sheet, checks, marks: markLines };
    });
  }

  /** An examiner's mark for one check, appended to the ledger (the report uses the latest). */
  mark(id: string, seatId: string, taskId: string, checkId: string, examiner: string, earned: number, reason: string): void {
    this.seat(id, seatId);
    const c = this.db.prepare('SELECT points FROM check_results WHERE session_id = ? AND seat_id = ? AND task_id = ? AND check_id = ? LIMIT 1').get(id, seatId, taskId, checkId) as { points: number } | undefined;
    if (!c || !(earned >= 0 && earned <= c.points) || !reason.trim()) {
      throw new DeploylabError({ code: 'MARK_INVALID', fault: 'config', message: { zh: '评分无效：检查项不存在、分数越界或缺少理由', en: 'invalid mark: unknown check, earned out of range, or no reason' }, details: { taskId, checkId, earned, points: c?.points } });
    }
    this.db.prepare('INSERT INTO examiner_marks (session_id, seat_id, task_id, check_id, examiner, earned, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(id, seatId, taskId, checkId, examiner, earned, reason, nowIso());
  }

  /** What the printable score sheet shows (pure data; rendering is score-sheet.ts). */
  scoreSheetDoc(id: string, seats: SeatReport[] = this.report(id)): ScoreSheetDoc {
    const s = this.session(id);
    const catalogue = loadCatalogue();
    const level = levelOf(catalogue, s.level);
    let title: ScoreSheetDoc['paper']['title'] = null;
    try {
      title = this.paper(id).paper.title;
    } catch {
      // The paper's folder may be gone (a report made elsewhere); its id is enough on the sheet.
    }
    const started = this.db.prepare("SELECT at FROM transitions WHERE session_id = ? AND seat_id IS NULL AND event = 'start' ORDER BY seq LIMIT 1").get(id) as { at: string } | undefined;
    const day = new Date(started?.at ?? s.created_at);
    const p = (n: number): string => String(n).padStart(2, '0');
    const weights = catalogue.weights.practical[s.level];
    return {
      session: id,
      room: s.room,
      paper: { id: s.paper_id, title },
      level: { code: s.level, zh: level.zh, en: level.en },
      practice: s.practice === 1,
      date: `${day.getFullYear()}-${p(day.getMonth() + 1)}-${p(day.getDate())}`,
      generatedAt: nowIso(),
      passMark: catalogue.exam.passMark,
      functions: catalogue.functions.map((f) => ({ code: f.code, zh: f.zh, en: f.en, weight: weights[f.code] })),
      examinerLines: catalogue.exam.examiners.min,
      rows: seats.map((r) => ({ seat: r.seat, candidateNo: r.candidateNo, name: r.name, sheet: r.sheet, marks: r.marks })),
    };
  }

  /** Scores as JSON and CSV, and the printable score sheet (HTML), in `dir`. */
  writeReport(id: string, dir = join(this.sessionDir(id), 'report')): WrittenReport {
    const seats = this.report(id);
    const s = this.session(id);
    mkdirSync(dir, { recursive: true });
    const json = join(dir, 'scores.json');
    writeFileSync(json, JSON.stringify({ session: id, paper: s.paper_id, level: s.level, room: s.room, practice: s.practice === 1, generatedAt: nowIso(), seats }, null, 2));
    const csv = join(dir, 'scores.csv');
    writeFileSync(
      csv,
      toCsv([
        ['seat', 'candidate_no', 'name', 'f1', 'f2', 'f3', 'f4', 'total', 'passed', 'complete', 'run'],
        ...seats.map((r) => [
          r.seat, r.candidateNo, r.name,
          ...(r.sheet ? r.sheet.functions.map((f) => f.marks.toFixed(2)) : ['', '', '', '']),
          r.sheet ? r.sheet.totalShown.toFixed(1) : '',
          r.sheet ? (r.sheet.passed === null ? 'pending' : r.sheet.passed ? 'pass' : 'fail') : 'not graded',
          r.sheet ? String(r.sheet.complete) : 'false',
          r.runId ?? '',
        ]),
      ]),
    );
    const html = join(dir, 'score-sheet.html');
    writeFileSync(html, renderScoreSheetHtml(this.scoreSheetDoc(id, seats)));
    return { csv, json, html, seats };
  }

  /**
   * `writeReport` and the score sheet's PDF beside it, printed by the host's headless Chromium.
   * Without Chromium (or when it fails) the PDF is skipped with a warning: the HTML prints too.
   */
  async writePrintableReport(id: string, dir?: string, opts: { chromium?: string | null } = {}): Promise<WrittenReport & { pdf: string | null; warnings: PdfWarning[] }> {
    const r = dir === undefined ? this.writeReport(id) : this.writeReport(id, dir);
    const pdf = await htmlToPdf(r.html, join(dirname(r.html), 'score-sheet.pdf'), opts.chromium === undefined ? {} : { chromium: opts.chromium });
    for (const w of pdf.warnings) slog.warn({ session: id, code: w.code }, w.message.en);
    return { ...r, ...pdf };
  }

  // ---- archive and reset -------------------------------------------------------------------

  /** Workspace archives, evidence, report and ledger export, with a SHA-256 manifest. */
  async archive(id: string): Promise<{ dir: string; files: number; manifestSha256: string }> {
    return this.locked(id, async () => {
      this.moveSession(id, 'archive');
      const dir = join(this.sessionDir(id), `archive-${new Date().toISOString().replace(/[:.]/g, '-')}`);
      mkdirSync(join(dir, 'workspaces'), { recursive: true });
      for (const s of this.seats(id)) {
        if (['pending', 'failed', 'removed'].includes(s.state)) continue;
        for (const b of this.sandboxes(id, s.seat_id)) {
          try {
            await this.driver.captureEvidence(b.ref, join(dir, 'workspaces', `${b.ref.seat}.tar.gz`));
          } catch (e) {
            const err = asDeploylabError(e);
            writeFileSync(join(dir, 'workspaces', `${b.ref.seat}.MISSING.txt`), `${err.code}: ${err.message}\n`);
          }
        }
      }
      const ev = join(this.sessionDir(id), 'evidence');
      if (existsSync(ev)) cpSync(ev, join(dir, 'evidence'), { recursive: true });
      await this.writePrintableReport(id, join(dir, 'report'));
      const dump = (sql: string): string => (this.db.prepare(sql).all(id) as unknown[]).map((r) => JSON.stringify(r)).join('\n') + '\n';
      mkdirSync(join(dir, 'ledger'), { recursive: true });
      writeFileSync(join(dir, 'ledger', 'transitions.jsonl'), dump('SELECT * FROM transitions WHERE session_id = ? ORDER BY seq'));
      writeFileSync(join(dir, 'ledger', 'grading_runs.jsonl'), dump('SELECT r.*, e.ended_at, e.status FROM grading_runs r LEFT JOIN grading_run_ends e ON e.run_id = r.id WHERE r.session_id = ? ORDER BY r.id'));
      writeFileSync(join(dir, 'ledger', 'check_results.jsonl'), dump('SELECT * FROM check_results WHERE session_id = ? ORDER BY id'));
      writeFileSync(join(dir, 'ledger', 'examiner_marks.jsonl'), dump('SELECT * FROM examiner_marks WHERE session_id = ? ORDER BY id'));
      writeFileSync(join(dir, 'ledger', 'seats.jsonl'), dump('SELECT session_id, seat_id, candidate_no, name, id_number, state, allowed_ms, used_ms FROM seats WHERE session_id = ? ORDER BY ordinal'));
      const files = walk(dir);
      const manifest = files.map((f) => `${sha256File(f)}  ${relative(dir, f)}`).join('\n') + '\n';
      writeFileSync(join(dir, MANIFEST), manifest);
      const manifestSha256 = createHash('sha256').update(manifest).digest('hex');
      this.db.prepare('INSERT INTO archives (session_id, dir, manifest_sha256, files, at) VALUES (?, ?, ?, ?, ?)').run(id, dir, manifestSha256, files.length, nowIso());
      this.progress({ zh: `已归档 ${files.length} 个文件到 ${dir}`, en: `archived ${files.length} file(s) to ${dir}` });
      return { dir, files: files.length, manifestSha256 };
    });
  }

  /** Remove everything labelled for the session and prove it: nothing labelled left, no host ports held, GPU memory back to its baseline. */
  async reset(id: string, opts: { force?: boolean } = {}): Promise<ResetReport> {
    return this.locked(id, async () => {
      const state = this.session(id).state;
      if (state !== 'archived' && state !== 'reset' && !opts.force) {
        throw new DeploylabError({
          code: 'SESSION_NOT_ARCHIVED',
          fault: 'config',
          message: { zh: `场次 ${id} 尚未归档（当前：${state}），复位会丢失证据`, en: `session ${id} is not archived (it is ${state}); a reset would lose its evidence` },
          hint: { zh: '先运行 deploylab session archive，或加 --force', en: 'run deploylab session archive first, or pass --force' },
        });
      }
      this.moveSession(id, state === 'archived' || state === 'reset' ? 'reset' : 'force-reset');
      for (const s of this.seats(id)) if (s.state !== 'removed') this.moveSeat(id, s.seat_id, 'remove');
      this.db.prepare('UPDATE seat_tokens SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL').run(nowIso(), id);
      let removed = (await this.driver.sweep({ session: id })).length;
      if (this.docker) removed += await sweepToolboxes(this.docker, id);
      return { ...(await this.verifyClean(id, removed)), cardsRemoved: this.removeSeatCards(id) };
    });
  }

  /** The seat cards (and reissued ones) of a session; the archive never holds them. */
  private removeSeatCards(id: string): number {
    const dir = this.sessionDir(id);
    if (!existsSync(dir)) return 0;
    const cards = readdirSync(dir).filter((f) => /^seat-cards.*\.(html|csv)$/.test(f));
    for (const f of cards) rmSync(join(dir, f), { force: true });
    return cards.length;
  }

  async verifyClean(id: string, removed = 0): Promise<Omit<ResetReport, 'cardsRemoved'>> {
    const leftovers: { kind: string; name: string }[] = [];
    const portsHeld: string[] = [];
    const label = [`${LABEL.session}=${id}`];
    if (this.docker) {
      for (const c of await this.docker.listContainers({ all: true, filters: { label } })) {
        leftovers.push({ kind: 'container', name: c.Names[0] ?? c.Id });
        for (const p of c.Ports ?? []) if (p.PublicPort) portsHeld.push(`${p.IP ?? ''}:${p.PublicPort}`);
      }
      for (const n of await this.docker.listNetworks({ filters: { label } })) leftovers.push({ kind: 'network', name: n.Name });
      for (const v of (await this.docker.listVolumes({ filters: { label } })).Volumes ?? []) leftovers.push({ kind: 'volume', name: v.Name });
    } else {
      for (const s of await this.driver.list({ session: id })) leftovers.push({ kind: 'seat', name: s.ref.seat });
    }
    const baseline = this.spec(id).gpuBaselineMiB;
    let gpu: ResetReport['gpu'] = null;
    const now = baseline ? gpuMemoryUsedMiB() : null;
    // Allow driver-level jitter (a few MiB of context on an idle GPU).
    if (baseline && now) gpu = { baselineMiB: baseline, nowMiB: now, ok: now.every((m, i) => m <= (baseline[i] ?? 0) + 64) };
    return { session: id, clean: leftovers.length === 0 && portsHeld.length === 0 && (gpu?.ok ?? true), removed, leftovers, portsHeld, gpu };
  }
}

/** Size in bytes of a directory tree (for the archive summary). */
export function treeBytes(dir: string): number {
  return walk(dir).reduce((a, f) => a + statSync(f).size, 0);
}
