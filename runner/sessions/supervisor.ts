import { setTimeout as sleep } from 'node:timers/promises';
import { asDeploylabError, DeploylabError } from '../core/errors.js';
import { log } from '../core/logger.js';
import { clockOf } from './ledger-store.js';
import type { RoomContext } from './room-context.js';
import { endsAt, type SessionState } from './state-machine.js';
import { WallClockWatch } from './wall-clock-watch.js';

const slog = log.child({ module: 'sessions' });

/** The facade's operations the supervisor drives, each taking the session's lock itself. */
export interface SupervisedOps {
  reconcile(id: string): Promise<unknown>;
  tick(id: string, wallJumpMs: number): Promise<SessionState>;
  diskCheck(id: string): Promise<unknown>;
  grade(id: string, opts: { concurrency?: number }): Promise<unknown>;
}

export interface SuperviseOptions {
  pollMs?: number;
  grade?: boolean;
  concurrency?: number;
  /** Stops supervising (the server shutting down, the lease lost): no grading after it. */
  signal?: AbortSignal;
  /** Asked before every step that changes the room: false stops supervising, as signal does. */
  stillSupervising?: () => boolean;
}

/** Waits ms, or less when signal aborts first (never throws for the abort). */
async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, signal ? { signal } : {}).catch((e: unknown) => {
    if ((e as Error).name !== 'AbortError') throw e;
  });
}

/**
 * Keep the clock until the room is frozen, then grade. Safe to kill and start again: the clock
 * lives in the store (time keeps running while the runner is down) and a seat whose time ran
 * out meanwhile is frozen on the first tick. The caller holds the session's supervisor lease
 * (supervisor-lease.ts), so no other process applies the same wall-clock jump.
 */
export async function superviseRoom(ctx: RoomContext, ops: SupervisedOps, id: string, opts: SuperviseOptions = {}): Promise<SessionState> {
  const stopped = (): boolean => opts.signal?.aborted === true || opts.stillSupervising?.() === false;
  await ops.reconcile(id);
  let waiting = false;
  let announced = false;
  const watch = new WallClockWatch({ wall: ctx.now, monotonic: ctx.monotonic });
  let jump = 0;
  let diskDue = 0;
  let diskWatched = true;
  for (;;) {
    if (stopped()) return ctx.ledger.session(id).state;
    let state: SessionState;
    // A jump seen while another process held the room is kept for the next step.
    jump += watch.check();
    try {
      state = await ops.tick(id, jump);
      jump = 0;
      waiting = false;
    } catch (e) {
      // Another process holds the room for longer than a tick waits (grading, a long action):
      // the clock lives in the store, so the next tick catches up.
      if (!(e instanceof DeploylabError && e.code === 'SESSION_LOCKED')) throw e;
      if (!waiting) ctx.progress({ zh: `场次 ${id} 正由另一个进程操作，稍后继续看管`, en: `session ${id} is held by another process; supervising resumes when it lets go` });
      waiting = true;
      await pause(opts.pollMs ?? 1000, opts.signal);
      continue;
    }
    if (!['ready', 'running', 'paused'].includes(state)) break;
    if (diskWatched && ctx.monotonic() >= diskDue) {
      diskDue = ctx.monotonic() + ctx.disk.sampleSeconds * 1000;
      diskWatched = await ops.diskCheck(id).then(
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
      ...ctx.ledger
        .seats(id)
        .map((s) => endsAt(clockOf(s)))
        .filter((x): x is number => x !== null),
    );
    if (!announced) {
      announced = true;
      const at = Number.isFinite(next) ? new Date(next).toLocaleTimeString('zh-CN', { hour12: false }) : null;
      ctx.progress(
        at
          ? { zh: `看管场次 ${id}：最早的考位于 ${at} 到时`, en: `supervising session ${id}: the first seat's time ends at ${at}` }
          : { zh: `看管场次 ${id}：计时尚未开始`, en: `supervising session ${id}: no clock is running yet` },
      );
    }
    await pause(Math.max(50, Math.min(opts.pollMs ?? 1000, Number.isFinite(next) ? next - ctx.now() : Infinity)), opts.signal);
  }
  if (stopped()) return ctx.ledger.session(id).state;
  if (opts.grade !== false && ['frozen', 'grading'].includes(ctx.ledger.session(id).state)) await ops.grade(id, opts.concurrency ? { concurrency: opts.concurrency } : {});
  return ctx.ledger.session(id).state;
}
