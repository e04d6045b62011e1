import { DeploylabError, asDeploylabError } from '../core/errors.js';
import { log } from '../core/logger.js';
import type { SessionRow } from './ledger-store.js';
import type { SessionState } from './state-machine.js';
import type { SuperviseOptions } from './supervisor.js';

const slog = log.child({ module: 'room-keeper' });

/** Sessions whose clock needs keeping: seats provisioned or running, not yet frozen. */
const KEPT_STATES: readonly SessionState[] = ['ready', 'running', 'paused'];

export interface KeptRooms {
  list(): SessionRow[];
  supervise(id: string, opts: SuperviseOptions & { leaseMs?: number }): Promise<SessionState>;
}

export interface RoomKeeper {
  /** Sessions this process supervises now. */
  supervised(): string[];
  /** One pass over the store now (the timer does the same every scanMs). */
  scan(): void;
  /** Stops every supervision of this process (no grading after it) and waits for them to end. */
  stop(): Promise<void>;
}

/**
 * The server's supervisor: every open room gets its clock kept (end-of-time freeze, wall-clock
 * jumps, the disk watch) without an examiner running `session supervise` beside it. Each room is
 * supervised under its lease, so a CLI supervisor or a second server already keeping a room is
 * left to it (SESSION_SUPERVISED), and a room whose supervisor died is picked up at a later scan.
 */
export function startRoomKeeper(rooms: KeptRooms, opts: { scanMs?: number; leaseMs?: number; pollMs?: number } = {}): RoomKeeper {
  const stopAll = new AbortController();
  const running = new Map<string, Promise<void>>();
  const scan = (): void => {
    if (stopAll.signal.aborted) return;
    let sessions: SessionRow[];
    try {
      sessions = rooms.list();
    } catch (e) {
      slog.warn({ err: asDeploylabError(e).message }, 'room keeper could not list sessions');
      return;
    }
    for (const s of sessions) {
      if (!KEPT_STATES.includes(s.state) || running.has(s.id)) continue;
      const id = s.id;
      const done = rooms
        .supervise(id, { signal: stopAll.signal, ...(opts.leaseMs ? { leaseMs: opts.leaseMs } : {}), ...(opts.pollMs ? { pollMs: opts.pollMs } : {}) })
        .then(
          (state) => slog.info({ session: id, state }, 'room keeper: supervision ended'),
          (e: unknown) => {
            if (e instanceof DeploylabError && e.code === 'SESSION_SUPERVISED') return;
            const err = asDeploylabError(e);
            slog.warn({ session: id, code: err.code, err: err.message }, 'room keeper: supervision failed; retried at the next scan');
          },
        )
        .finally(() => running.delete(id));
      running.set(id, done);
    }
  };
  const timer = setInterval(scan, opts.scanMs ?? 5000);
  timer.unref();
  scan();
  return {
    supervised: () => [...running.keys()],
    scan,
    stop: async () => {
      clearInterval(timer);
      stopAll.abort();
      await Promise.all(running.values());
    },
  };
}
