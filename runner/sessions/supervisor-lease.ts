import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DeploylabError } from '../core/errors.js';
import { pidAlive, type DB } from '../store/db.js';

/** How long a lease lasts without renewal; the holder renews it every third of that. */
export const SUPERVISOR_LEASE_MS = 30_000;

export interface SupervisorLease {
  readonly sessionId: string;
  readonly holder: string;
  /** Extends the lease; false once another supervisor has taken it (this one stalled past expiry). */
  renew(): boolean;
  /** Whether this holder still has it (read only). */
  held(): boolean;
  /** Gives it up (only if still held by this holder). */
  release(): void;
}

interface LeaseRow {
  holder: string;
  pid: number;
  host: string;
  expires_at: number;
}

/**
 * One supervisor per session across processes and hosts sharing the store: the CLI's
 * `session supervise` and the server's room keeper both take this lease before keeping the
 * clock, because two keepers would each apply the same wall-clock jump and each sample the disk.
 * Unlike the session lock it is held for the whole exam, so it expires (a holder on another host
 * cannot be asked whether it lives) and a holder on this host that died is taken over at once.
 */
export function takeSupervisorLease(db: DB, sessionId: string, opts: { ttlMs?: number; now?: () => number } = {}): SupervisorLease {
  const ttl = opts.ttlMs ?? SUPERVISOR_LEASE_MS;
  const now = opts.now ?? Date.now;
  const host = hostname();
  const holder = `${host}:${process.pid}:${randomUUID()}`;
  const take = db.transaction((): LeaseRow | undefined => {
    const row = db.prepare('SELECT holder, pid, host, expires_at FROM supervisors WHERE session_id = ?').get(sessionId) as LeaseRow | undefined;
    const t = now();
    const held = row && row.expires_at > t && !(row.host === host && !pidAlive(row.pid));
    if (held) return row;
    db.prepare('INSERT OR REPLACE INTO supervisors (session_id, holder, pid, host, taken_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(sessionId, holder, process.pid, host, t, t + ttl);
    return undefined;
  });
  const other = take.immediate();
  if (other) {
    const self = other.host === host && other.pid === process.pid;
    throw new DeploylabError({
      code: 'SESSION_SUPERVISED',
      fault: 'config',
      message: {
        zh: `场次 ${sessionId} 已有看管进程（${self ? '本进程' : `pid ${other.pid}，主机 ${other.host}`}）`,
        en: `session ${sessionId} is already supervised (${self ? 'by this process' : `pid ${other.pid} on ${other.host}`})`,
      },
      hint: {
        zh: '一个场次只需一个看管进程：deploylab serve 会自动看管；若该进程已不在，租约在 30 秒内过期后可重试',
        en: 'one supervisor per session is enough (deploylab serve supervises by itself); if that process is gone, retry once its lease expires (within 30 s)',
      },
      details: { pid: other.pid, host: other.host, expiresAt: new Date(other.expires_at).toISOString() },
    });
  }
  return {
    sessionId,
    holder,
    renew: () => db.prepare('UPDATE supervisors SET expires_at = ? WHERE session_id = ? AND holder = ?').run(now() + ttl, sessionId, holder).changes === 1,
    held: () => db.prepare('SELECT 1 FROM supervisors WHERE session_id = ? AND holder = ?').get(sessionId, holder) !== undefined,
    release: () => {
      db.prepare('DELETE FROM supervisors WHERE session_id = ? AND holder = ?').run(sessionId, holder);
    },
  };
}
