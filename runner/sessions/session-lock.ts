import { setTimeout as sleep } from 'node:timers/promises';
import { DeploylabError } from '../core/errors.js';
import { acquireLock, type DB } from '../store/db.js';

/** Per store file and session: the tail of this process's queue of operations. */
const inProcessQueue = new Map<string, Promise<void>>();

/** The store's lock, waiting up to waitMs for another process's brief hold to end. */
async function acquireWaiting(db: DB, id: string, waitMs: number): Promise<() => void> {
  const end = Date.now() + waitMs;
  for (;;) {
    try {
      return acquireLock(db, id);
    } catch (e) {
      if (!(e instanceof DeploylabError && e.code === 'SESSION_LOCKED') || Date.now() >= end) throw e;
      await sleep(Math.min(100, Math.max(1, end - Date.now())));
    }
  }
}

/**
 * One operation on a session at a time. Across processes the store's lock row holds a second
 * runner off (it waits up to waitMs, then is refused with SESSION_LOCKED); within this process (the
 * web server's examiner actions beside the clock, grading) operations queue here, because the row
 * names only the process and would let them overlap.
 */
export async function withSessionLock<T>(db: DB, id: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const key = `${db.name}\0${id}`;
  const before = inProcessQueue.get(key) ?? Promise.resolve();
  let done!: () => void;
  const mine = before.then(() => new Promise<void>((resolve) => (done = resolve)));
  inProcessQueue.set(key, mine);
  await before;
  try {
    const release = await acquireWaiting(db, id, waitMs);
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
