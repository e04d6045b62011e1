import { log } from '../core/logger.js';
import type { SandboxDriver } from '../sandbox/driver.js';
import type { DB } from '../store/db.js';
import { gatherGpuSync } from '../host/inventory.js';
import type { GpuFacts } from '../host/types.js';
import { defaultDiskPolicy, hostFree, type DiskPolicy, type DiskStepResult, type SeatDiskRow } from './disk-watch.js';
import { archiveSession, type Archived } from './archive.js';
import { gradeRoom, type Graded } from './grading-run.js';
import { Ledger, type SeatCodes, type SeatRow, type SessionRow, type SessionSpec } from './ledger-store.js';
import type { LoadedExamPaper, SeatSandbox } from './paper.js';
import { openSession, reissueCodes, writeCards, type Opened, type OpenOptions } from './planning.js';
import { provisionSeats, type Provisioned } from './provisioning.js';
import { reconcile, type Reconciled } from './reconcile.js';
import { mark, report, scoreSheetDoc, writePrintableReport, writeReport, type SeatReport, type WrittenReport } from './reports.js';
import { resetSession, verifyClean, type ResetReport } from './reset.js';
import * as clock from './room-clock.js';
import { examinedPaper, seatSandboxes, sessionDir, type Progress, type RoomContext } from './room-context.js';
import { checkDiskReserve, diskCheck, diskHalted, diskReadings, releaseHalted, sampleDisk } from './room-disk.js';
import type { PdfWarning } from './score-sheet-pdf.js';
import type { ScoreSheetDoc } from './score-sheet.js';
import { withSessionLock } from './session-lock.js';
import type { SessionState } from './state-machine.js';
import { superviseRoom, type SuperviseOptions } from './supervisor.js';
import { SUPERVISOR_LEASE_MS, takeSupervisorLease } from './supervisor-lease.js';
import { taskDrift, type TaskDrift } from './pinned-tasks.js';

export type { Progress } from './room-context.js';
export type { ResetReport } from './reset.js';
export type { SeatReport, WrittenReport } from './reports.js';
export type { SeatCodes, SeatRow, SessionRow, SessionSpec } from './ledger-store.js';

export interface SessionDeps {
  db: DB;
  driver: SandboxDriver;
  dataDir: string;
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
  /** Free inodes there, likewise (with hostFree; without it both are measured on the filesystems). */
  hostFreeFiles?: () => Promise<number | null>;
  /** The host's GPUs; nvidia-smi by default (asked only for a paper with GPU tasks). */
  hostGpu?: () => GpuFacts;
}

const slog = log.child({ module: 'sessions' });

/**
 * The exam-room lifecycle, one method per thing an examiner or the clock does. A thin facade: each
 * phase lives in its own module along the flow (planning → provisioning → room-clock / room-disk →
 * grading-run → reports → archive → reset, with reconcile after a restart), all SQL in the ledger
 * store. Here an operation takes the session's lock and calls its phase. Every state change is a
 * transition stored BEFORE the side effect runs; after a crash, `reconcile` re-applies what the
 * stored state says and the long operations resume where they were.
 */
export class SessionService {
  readonly db: DB;
  readonly ledger: Ledger;
  readonly driver: SandboxDriver;
  readonly dataDir: string;
  readonly disk: DiskPolicy;
  private readonly ctx: RoomContext;
  private readonly lockWaitMs: number;

  constructor(deps: SessionDeps) {
    this.db = deps.db;
    this.ledger = new Ledger(deps.db);
    this.driver = deps.driver;
    this.dataDir = deps.dataDir;
    this.disk = deps.disk ?? defaultDiskPolicy();
    this.lockWaitMs = deps.lockWaitMs ?? 10_000;
    this.ctx = {
      ledger: this.ledger,
      driver: deps.driver,
      dataDir: deps.dataDir,
      progress: deps.progress ?? (() => undefined),
      now: deps.now ?? Date.now,
      monotonic: deps.monotonic ?? (() => performance.now()),
      disk: this.disk,
      hostFree: deps.hostFree
        ? async () => ({ bytes: await deps.hostFree!(), files: (await deps.hostFreeFiles?.()) ?? null })
        : async () => {
            const root = (await deps.driver.hostEngine?.dataRoot().catch(() => null)) ?? null;
            return hostFree([deps.dataDir, ...(root ? [root] : [])]);
          },
      hostGpu: deps.hostGpu ?? (() => gatherGpuSync()),
    };
  }

  private locked<T>(id: string, fn: () => Promise<T> | T): Promise<T> {
    this.ledger.session(id);
    return withSessionLock(this.db, id, this.lockWaitMs, async () => fn());
  }

  // ---- reading (no engine) -----------------------------------------------------------------

  session(id: string): SessionRow {
    return this.ledger.session(id);
  }

  spec(id: string): SessionSpec {
    return this.ledger.spec(id);
  }

  seats(id: string): SeatRow[] {
    return this.ledger.seats(id);
  }

  seat(id: string, seatId: string): SeatRow {
    return this.ledger.seat(id, seatId);
  }

  list(): SessionRow[] {
    return this.ledger.list();
  }

  sandboxes(id: string, seatId: string): SeatSandbox[] {
    return seatSandboxes(this.ctx, id, seatId);
  }

  sessionDir(id: string): string {
    return sessionDir(this.ctx, id);
  }

  clockJumps(id: string): { at: string; jumpMs: number }[] {
    return this.ledger.clockJumps(id);
  }

  diskReadings(id: string): Map<string, SeatDiskRow> {
    return diskReadings(this.ctx, id);
  }

  /** The paper and tasks the session examines: the copy pinned at open. */
  paper(id: string): LoadedExamPaper {
    return examinedPaper(this.ctx, id);
  }

  /** Tasks edited on disk since the session pinned them (graded from the pinned copy regardless). */
  taskDrift(id: string): TaskDrift[] {
    return taskDrift(this.ledger.spec(id));
  }

  // ---- planning ----------------------------------------------------------------------------

  open(opts: OpenOptions): Opened {
    return openSession(this.ctx, opts);
  }

  /**
   * HOST_DISK_RESERVE unless the host keeps its disk reserve with `seats` more seats at their
   * quota: what `session open` asks before anything is hashed or stored (provisioning asks again).
   */
  checkDiskReserve(seats: number): Promise<void> {
    return checkDiskReserve(this.ctx, seats);
  }

  reissueCodes(id: string, opts: { seat?: string } = {}): { codes: SeatCodes; cards: { html: string; csv: string } } {
    return reissueCodes(this.ctx, id, opts);
  }

  writeCards(id: string, codes: SeatCodes, name?: string): { html: string; csv: string } {
    return writeCards(this.ctx, id, codes, name);
  }

  // ---- provisioning ------------------------------------------------------------------------

  provision(id: string, opts: { concurrency?: number; retries?: number; backoffMs?: number } = {}): Promise<Provisioned> {
    return this.locked(id, () => provisionSeats(this.ctx, id, opts));
  }

  // ---- the room's clock --------------------------------------------------------------------

  start(id: string, seatId?: string): Promise<SeatRow[]> {
    return this.locked(id, () => clock.start(this.ctx, id, seatId));
  }

  pause(id: string, seatId?: string): Promise<SeatRow[]> {
    return this.locked(id, () => clock.pause(this.ctx, id, seatId));
  }

  resume(id: string, seatId?: string): Promise<SeatRow[]> {
    return this.locked(id, () => clock.resume(this.ctx, id, seatId));
  }

  extend(id: string, ms: number, seatId?: string): Promise<SeatRow[]> {
    return this.locked(id, () => clock.extend(this.ctx, id, ms, seatId));
  }

  end(id: string, seatId?: string): Promise<SeatRow[]> {
    return this.locked(id, () => clock.end(this.ctx, id, seatId));
  }

  tick(id: string, wallJumpMs = 0): Promise<SessionState> {
    return this.locked(id, () => clock.tick(this.ctx, id, wallJumpMs));
  }

  /**
   * Keeps the room's clock (supervisor.ts) while holding its supervisor lease, renewed on a timer
   * so a long tick or grade does not let it lapse; SESSION_SUPERVISED when another process holds
   * it. Losing the lease later (this process stalled past its expiry and another took over) stops
   * supervising without grading.
   */
  async supervise(id: string, opts: SuperviseOptions & { leaseMs?: number } = {}): Promise<SessionState> {
    this.ledger.session(id);
    const lease = takeSupervisorLease(this.db, id, opts.leaseMs ? { ttlMs: opts.leaseMs } : {});
    const lost = new AbortController();
    const gone = (): void => {
      if (lost.signal.aborted) return;
      slog.warn({ session: id }, 'supervisor lease taken over by another process; this one stops supervising');
      this.ctx.progress({ zh: `场次 ${id} 的看管已由另一个进程接手，本进程停止看管`, en: `another process took over supervising session ${id}; this one stops` });
      lost.abort();
    };
    const heartbeat = setInterval(() => {
      if (!lease.renew()) gone();
    }, Math.max(100, Math.floor((opts.leaseMs ?? SUPERVISOR_LEASE_MS) / 3)));
    heartbeat.unref();
    const signal = opts.signal ? AbortSignal.any([opts.signal, lost.signal]) : lost.signal;
    // Checked before each step too: between two heartbeats a taken-over supervisor must not tick.
    const stillSupervising = (): boolean => {
      if (lease.held()) return true;
      gone();
      return false;
    };
    try {
      return await superviseRoom(this.ctx, this, id, { ...opts, signal, stillSupervising });
    } finally {
      clearInterval(heartbeat);
      lease.release();
    }
  }

  // ---- disk --------------------------------------------------------------------------------

  /** One sample of the disk watch over the room: see disk-watch.ts. */
  async diskCheck(id: string): Promise<DiskStepResult> {
    const sample = await sampleDisk(this.ctx, id);
    return this.locked(id, () => diskCheck(this.ctx, id, sample));
  }

  /**
   * An examiner lets a seat the disk watch stopped go on (to delete what filled it): its processes
   * run again, its state and access stay as they are (resume gives access back), and it is not
   * stopped again for the grace period.
   */
  releaseDisk(id: string, seatId: string): Promise<SeatDiskRow | null> {
    return this.locked(id, async () => {
      this.ledger.seat(id, seatId);
      return diskHalted(this.ctx, id, seatId) ? releaseHalted(this.ctx, id, seatId) : null;
    });
  }

  // ---- after a restart, grading, reports ---------------------------------------------------

  reconcile(id: string): Promise<Reconciled> {
    return reconcile(this.ctx, id);
  }

  grade(id: string, opts: { concurrency?: number; reason?: string } = {}): Promise<Graded> {
    return this.locked(id, () => gradeRoom(this.ctx, id, opts));
  }

  report(id: string): SeatReport[] {
    return report(this.ledger, id);
  }

  mark(id: string, seatId: string, taskId: string, checkId: string, examiner: string, earned: number, reason: string): void {
    mark(this.ledger, id, seatId, taskId, checkId, examiner, earned, reason);
  }

  scoreSheetDoc(id: string, seats?: SeatReport[]): ScoreSheetDoc {
    return scoreSheetDoc(this.ctx, id, seats);
  }

  writeReport(id: string, dir?: string): WrittenReport {
    return writeReport(this.ctx, id, dir);
  }

  writePrintableReport(id: string, dir?: string, opts: { chromium?: string | null } = {}): Promise<WrittenReport & { pdf: string | null; warnings: PdfWarning[] }> {
    return writePrintableReport(this.ctx, id, dir, opts);
  }

  // ---- archive and reset -------------------------------------------------------------------

  archive(id: string): Promise<Archived> {
    return this.locked(id, () => archiveSession(this.ctx, id));
  }

  reset(id: string, opts: { force?: boolean } = {}): Promise<ResetReport> {
    return this.locked(id, () => resetSession(this.ctx, id, opts));
  }

  verifyClean(id: string, removed = 0): Promise<Omit<ResetReport, 'cardsRemoved'>> {
    return verifyClean(this.ctx, id, removed);
  }
}
