import type { ServerResponse } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import type { Logger } from '../core/logger.js';
import { asDeploylabError } from '../core/errors.js';
import type { SandboxDriver, SeatState } from '../sandbox/driver.js';
import { sandboxesOf } from '../sessions/paper.js';
import type { DiskLevel, SeatDiskRow } from '../sessions/disk-watch.js';
import { clockOf, type LatestRunRow } from '../sessions/ledger-store.js';
import type { SessionService } from '../sessions/session-service.js';
import { remainingMs, zhState, type SeatStateName, type SessionState } from '../sessions/state-machine.js';

/**
 * What the examiner's room dashboard shows, read from the session store (cheap, every poll), the
 * engine (sandbox states, on a slower cadence) and this server's own terminal bridges (who is
 * connected now). Read-only: actions go through the SessionService elsewhere.
 */

export interface SandboxView {
  task: string;
  /** The driver's view; 'unknown' when the engine could not be asked. */
  state: SeatState | 'unknown';
  containers: number;
  running: number;
}

export interface SeatView {
  seat: string;
  candidateNo: string;
  name: string;
  state: SeatStateName;
  stateZh: string;
  lastError: string | null;
  clock: { allowedMs: number; usedMs: number; runningSince: number | null; remainingMs: number; extendedMs: number };
  sandboxes: SandboxView[];
  /** Candidate terminals open through this server now. */
  terminals: number;
  /** Last keystroke or terminal connect seen by this server, or the code login if later (ISO 8601). */
  lastActivity: string | null;
  codeRedeemedAt: string | null;
  grading: { runId: number; status: 'running' | 'complete' | 'incomplete' | 'error'; done: number; total: number | null } | null;
  score: { total: number; passMark: number; passed: boolean | null; complete: boolean } | null;
  /** The disk watch's latest reading; null before its first sample. */
  disk: { bytes: number; quotaBytes: number; level: DiskLevel; halted: boolean; reason: string | null; sampledAt: number } | null;
}

export interface RoomSnapshot {
  session: { id: string; room: string; paperId: string; level: string; state: SessionState; stateZh: string; durationMs: number; practice: boolean; createdAt: string };
  tasks: string[];
  seats: SeatView[];
  /** When the engine was last asked for sandbox states (ISO), and whether that failed. */
  engine: { at: string | null; error: string | null };
  /** The server's clock when the snapshot was made (epoch ms); pages count down from it. */
  serverNow: number;
  /** Jumps of the host's wall clock the room's clock was corrected for (the supervisor notices them). */
  clockJumps: { at: string; jumpMs: number }[];
}

/** Keystrokes only: the page's resize frames are not the candidate working. */
const KEYSTROKE_PREFIX = '{"t":"in"';

/** Candidate terminals per seat, as the terminal bridge of this server sees them. */
export class TerminalPresence {
  private readonly seats = new Map<string, { open: number; lastActivity: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  attach(session: string, seat: string, ws: WebSocket): void {
    const key = `${session}/${seat}`;
    let e = this.seats.get(key);
    if (!e) {
      e = { open: 0, lastActivity: 0 };
      this.seats.set(key, e);
    }
    const entry = e;
    entry.open++;
    entry.lastActivity = this.now();
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary && Buffer.isBuffer(data) && data.subarray(0, KEYSTROKE_PREFIX.length).toString() === KEYSTROKE_PREFIX) entry.lastActivity = this.now();
    });
    // A close is not the candidate's doing (a freeze or pause closes it too): only the count changes.
    ws.once('close', () => {
      entry.open = Math.max(0, entry.open - 1);
    });
  }

  of(session: string, seat: string): { open: number; lastActivity: number | null } {
    const e = this.seats.get(`${session}/${seat}`);
    return { open: e?.open ?? 0, lastActivity: e && e.lastActivity > 0 ? e.lastActivity : null };
  }
}

type RunRow = LatestRunRow;

/** Builds snapshots; engine states and score sheets are cached so many viewers cost one read. */
export class RoomReader {
  private readonly checkTotals = new Map<string, number | null>();
  private readonly engine = new Map<string, { at: number; states: Map<string, SandboxView>; error: string | null; pending: Promise<void> | null }>();
  private readonly scores = new Map<string, { key: string; bySeat: Map<string, NonNullable<SeatView['score']>> }>();

  constructor(
    private readonly svc: SessionService,
    private readonly driver: SandboxDriver,
    private readonly presence: TerminalPresence,
    private readonly log: Logger,
    private readonly opts: { engineEveryMs: number; now: () => number },
  ) {}

  /** Ask the engine again on the next snapshot (after an examiner action). */
  invalidate(id: string): void {
    const e = this.engine.get(id);
    if (e) e.at = 0;
  }

  forget(id: string): void {
    this.engine.delete(id);
    this.scores.delete(id);
    this.checkTotals.delete(id);
  }

  private async engineStates(id: string): Promise<{ states: Map<string, SandboxView>; at: number | null; error: string | null }> {
    let e = this.engine.get(id);
    if (!e) {
      e = { at: 0, states: new Map(), error: null, pending: null };
      this.engine.set(id, e);
    }
    const entry = e;
    if (this.opts.now() - entry.at >= this.opts.engineEveryMs && !entry.pending) {
      entry.pending = this.driver
        .list({ session: id })
        .then(
          (list) => {
            entry.states = new Map(
              list.map((s) => [s.ref.seat, { task: s.task, state: s.state, containers: s.containers.length, running: s.containers.filter((c) => c.running).length }]),
            );
            entry.error = null;
          },
          (err: unknown) => {
            const d = asDeploylabError(err);
            entry.error = `${d.code}: ${d.message}`;
            this.log.warn({ err, session: id }, 'dashboard: engine listing failed');
          },
        )
        .finally(() => {
          entry.at = this.opts.now();
          entry.pending = null;
        });
    }
    if (entry.pending) await entry.pending;
    return { states: entry.states, at: entry.at || null, error: entry.error };
  }

  private checkTotal(id: string): number | null {
    if (!this.checkTotals.has(id)) {
      let total: number | null = null;
      try {
        total = this.svc.paper(id).tasks.reduce((a, t) => a + t.task.checks.length, 0);
      } catch (err) {
        this.log.warn({ err, session: id }, 'dashboard: cannot count the paper’s checks');
      }
      this.checkTotals.set(id, total);
    }
    return this.checkTotals.get(id)!;
  }

  /** Latest grading run per seat with the checks recorded so far. */
  private runs(id: string): Map<string, RunRow> {
    return new Map(this.svc.ledger.latestRuns(id).map((r) => [r.seat_id, r]));
  }

  /** Score sheets only change when a run ends or an examiner marks: recompute on that, not per poll. */
  private scoreViews(id: string): Map<string, NonNullable<SeatView['score']>> {
    const k = this.svc.ledger.scoreVersion(id);
    const key = `${k.ends}/${k.marks}`;
    const cached = this.scores.get(id);
    if (cached?.key === key) return cached.bySeat;
    const bySeat = new Map<string, NonNullable<SeatView['score']>>();
    if (k.ends > 0) {
      try {
        for (const r of this.svc.report(id)) {
          if (r.sheet) bySeat.set(r.seat, { total: r.sheet.totalShown, passMark: r.sheet.passMark, passed: r.sheet.passed, complete: r.sheet.complete });
        }
      } catch (err) {
        this.log.warn({ err, session: id }, 'dashboard: score sheet failed');
      }
    }
    this.scores.set(id, { key, bySeat });
    return bySeat;
  }

  async snapshot(id: string): Promise<RoomSnapshot> {
    const s = this.svc.session(id);
    const tasks = this.svc.spec(id).tasks;
    const engine = await this.engineStates(id);
    const now = this.opts.now();
    const runs = this.runs(id);
    const scores = this.scoreViews(id);
    const total = this.checkTotal(id);
    const disk = this.svc.diskReadings(id);
    const seats = this.svc.seats(id).map((row): SeatView => {
      const clock = clockOf(row);
      const p = this.presence.of(id, row.seat_id);
      const run = runs.get(row.seat_id);
      const redeemed = row.code_redeemed_at ? Date.parse(row.code_redeemed_at) : null;
      const last = Math.max(p.lastActivity ?? 0, redeemed ?? 0);
      return {
        seat: row.seat_id,
        candidateNo: row.candidate_no,
        name: row.name,
        state: row.state,
        stateZh: zhState(row.state),
        lastError: row.last_error,
        clock: { ...clock, remainingMs: remainingMs(clock, now), extendedMs: clock.allowedMs - s.duration_ms },
        sandboxes: sandboxesOf(id, row.seat_id, tasks).map(
          (b) => engine.states.get(b.ref.seat) ?? { task: b.taskId, state: engine.error ? 'unknown' : 'missing', containers: 0, running: 0 },
        ),
        terminals: p.open,
        lastActivity: last > 0 ? new Date(last).toISOString() : null,
        codeRedeemedAt: row.code_redeemed_at,
        grading: run ? { runId: run.id, status: (run.status ?? 'running') as NonNullable<SeatView['grading']>['status'], done: run.done, total } : null,
        score: scores.get(row.seat_id) ?? null,
        disk: diskView(disk.get(row.seat_id)),
      };
    });
    return {
      session: {
        id: s.id, room: s.room, paperId: s.paper_id, level: s.level, state: s.state, stateZh: zhState(s.state),
        durationMs: s.duration_ms, practice: s.practice === 1, createdAt: s.created_at,
      },
      tasks,
      seats,
      engine: { at: engine.at ? new Date(engine.at).toISOString() : null, error: engine.error },
      serverNow: now,
      clockJumps: this.svc.clockJumps(id),
    };
  }
}

function diskView(r: SeatDiskRow | undefined): SeatView['disk'] {
  if (!r) return null;
  return { bytes: r.bytes, quotaBytes: r.quota_bytes, level: r.level, halted: r.halted === 1, reason: r.halted_reason, sampledAt: r.sampled_at };
}

/** Everything in a snapshot that changes only when something happens (not the passing of time). */
function changeKey(s: RoomSnapshot): string {
  return JSON.stringify({ ...s, serverNow: 0, engine: { ...s.engine, at: null }, seats: s.seats.map((x) => ({ ...x, clock: { ...x.clock, remainingMs: 0 }, disk: x.disk && { ...x.disk, sampledAt: 0 } })) });
}

export interface FeedLimits {
  /** How often the store is read for changes. */
  pollMs: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  keepAliveMs: number;
  /** Open event streams across all rooms; more are refused with 503. */
  maxStreams: number;
  /** A stream is closed after this long; the page's EventSource reconnects on its own. */
  maxStreamMs: number;
  /** A viewer this far behind (bytes queued) is dropped rather than buffered. */
  maxQueuedBytes: number;
}

interface Viewer {
  res: ServerResponse;
  timer: NodeJS.Timeout;
}

/**
 * One poller per room with viewers, fanned out to every open event stream of that room; it stops
 * when the last viewer leaves. A snapshot is sent when it differs from the last one sent.
 */
export class RoomFeeds {
  private readonly rooms = new Map<string, { viewers: Set<Viewer>; timer: NodeJS.Timeout; last: string; busy: boolean; again: boolean; sinceSent: number }>();
  private open = 0;

  constructor(
    private readonly reader: RoomReader,
    private readonly log: Logger,
    private readonly limits: FeedLimits,
  ) {}

  get streams(): number {
    return this.open;
  }

  /** False when the limit of open streams is reached (the caller answers 503). */
  subscribe(id: string, res: ServerResponse, first: RoomSnapshot): boolean {
    if (this.open >= this.limits.maxStreams) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // Tell a buffering reverse proxy (nginx) to pass events through at once.
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 3000\n\n${frame(first)}`);
    let room = this.rooms.get(id);
    if (!room) {
      const r = { viewers: new Set<Viewer>(), timer: setInterval(() => this.poll(id), this.limits.pollMs), last: changeKey(first), busy: false, again: false, sinceSent: Date.now() };
      r.timer.unref();
      this.rooms.set(id, r);
      room = r;
    }
    const viewer: Viewer = { res, timer: setTimeout(() => res.end(), this.limits.maxStreamMs) };
    viewer.timer.unref();
    room.viewers.add(viewer);
    this.open++;
    const leave = (): void => {
      clearTimeout(viewer.timer);
      const r = this.rooms.get(id);
      if (!r?.viewers.delete(viewer)) return;
      this.open--;
      if (r.viewers.size === 0) {
        clearInterval(r.timer);
        this.rooms.delete(id);
        this.reader.forget(id);
      }
    };
    res.once('close', leave);
    return true;
  }

  /** Read now rather than at the next tick (an examiner action just changed the room). */
  refresh(id: string): void {
    this.reader.invalidate(id);
    if (this.rooms.has(id)) this.poll(id);
  }

  private poll(id: string): void {
    const room = this.rooms.get(id);
    if (!room) return;
    if (room.busy) {
      room.again = true;
      return;
    }
    room.busy = true;
    this.reader
      .snapshot(id)
      .then(
        (snap) => {
          const key = changeKey(snap);
          if (key !== room.last) {
            room.last = key;
            this.broadcast(room, frame(snap));
          } else if (Date.now() - room.sinceSent >= this.limits.keepAliveMs) {
            this.broadcast(room, ': keep-alive\n\n');
          }
        },
        (err: unknown) => {
          const d = asDeploylabError(err);
          this.log.warn({ err, session: id }, 'dashboard: snapshot failed');
          this.broadcast(room, `event: problem\ndata: ${JSON.stringify({ code: d.code, message: { zh: d.zh, en: d.message } })}\n\n`);
        },
      )
      .finally(() => {
        room.busy = false;
        if (room.again) {
          room.again = false;
          this.poll(id);
        }
      });
  }

  private broadcast(room: { viewers: Set<Viewer>; sinceSent: number }, text: string): void {
    room.sinceSent = Date.now();
    for (const v of room.viewers) {
      if (v.res.writableLength > this.limits.maxQueuedBytes) {
        v.res.destroy();
        continue;
      }
      v.res.write(text);
    }
  }

  close(): void {
    for (const [, r] of this.rooms) {
      clearInterval(r.timer);
      for (const v of r.viewers) {
        clearTimeout(v.timer);
        v.res.end();
      }
    }
    this.rooms.clear();
    this.open = 0;
  }
}

function frame(s: RoomSnapshot): string {
  return `event: snapshot\ndata: ${JSON.stringify(s)}\n\n`;
}
