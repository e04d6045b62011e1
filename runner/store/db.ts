import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DeploylabError } from '../core/errors.js';
import { hashCodeSync, newCodeKdf } from './access-code.js';

/**
 * The session store: one SQLite file under the config's dataDir (WAL, so a reader never blocks the
 * runner and a kill -9 loses nothing committed). Schema changes are migrations in code, applied in
 * order and recorded in `PRAGMA user_version`.
 *
 * Two kinds of tables:
 * - state (sessions, seats, locks): the current state, updated in place, always through a
 *   transition that is appended to `transitions` in the same SQLite transaction (seat_disk, the
 *   latest disk reading, is updated by each sample; what the watch does is a transition);
 * - ledger (transitions, grading_runs, grading_run_ends, check_results, examiner_marks, archives):
 *   append-only. Triggers reject UPDATE and DELETE, so a final score can only be derived from what
 *   was recorded, never edited in place.
 */
export type DB = Database.Database;

export const LEDGER_TABLES = ['transitions', 'grading_runs', 'grading_run_ends', 'check_results', 'examiner_marks', 'archives'] as const;

const appendOnly = (t: string): string => `
CREATE TRIGGER ${t}_no_update BEFORE UPDATE ON ${t} BEGIN SELECT RAISE(ABORT, 'LEDGER_APPEND_ONLY: ${t} rows cannot be updated'); END;
CREATE TRIGGER ${t}_no_delete BEFORE DELETE ON ${t} BEGIN SELECT RAISE(ABORT, 'LEDGER_APPEND_ONLY: ${t} rows cannot be deleted'); END;`;

/** SQL, or code for what SQL cannot do (hashing); either runs inside the migration's transaction. */
export type Migration = string | ((db: DB) => void);

/**
 * 2: access codes are stored only as scrypt hashes (runner/store/access-code.ts). Every session
 * gets its salt; a code that can still log in (not redeemed, seat not removed) is hashed, a dead
 * one is dropped. The seats table is rebuilt without the plaintext column (SQLite cannot drop a
 * UNIQUE column); `migrate` zeroes the freed pages and truncates the WAL, so the old codes do not
 * linger in the file either.
 */
function hashAccessCodes(db: DB): void {
  db.exec(`
ALTER TABLE sessions ADD COLUMN code_kdf TEXT;
CREATE TABLE seats_v2 (
  session_id TEXT NOT NULL REFERENCES sessions(id),
  seat_id TEXT NOT NULL,
  ordinal INTEGER NOT NULL,
  candidate_no TEXT NOT NULL,
  name TEXT NOT NULL,
  id_number TEXT NOT NULL,
  state TEXT NOT NULL,
  -- hex scrypt digest of the one-time code under sessions.code_kdf; NULL: no code logs in to this seat.
  access_code_hash TEXT,
  code_redeemed_at TEXT,
  allowed_ms INTEGER NOT NULL,
  used_ms INTEGER NOT NULL DEFAULT 0,
  running_since INTEGER,
  last_error TEXT,
  PRIMARY KEY (session_id, seat_id),
  UNIQUE (session_id, access_code_hash)
) STRICT;`);
  const setKdf = db.prepare('UPDATE sessions SET code_kdf = ? WHERE id = ?');
  const insert = db.prepare(
    `INSERT INTO seats_v2 (session_id, seat_id, ordinal, candidate_no, name, id_number, state, access_code_hash, code_redeemed_at, allowed_ms, used_ms, running_since, last_error)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const { id } of db.prepare('SELECT id FROM sessions').all() as { id: string }[]) {
    const kdf = newCodeKdf();
    setKdf.run(JSON.stringify(kdf), id);
    const seats = db.prepare('SELECT * FROM seats WHERE session_id = ?').all(id) as {
      session_id: string; seat_id: string; ordinal: number; candidate_no: string; name: string; id_number: string; state: string;
      access_code: string; code_redeemed_at: string | null; allowed_ms: number; used_ms: number; running_since: number | null; last_error: string | null;
    }[];
    for (const x of seats) {
      const live = x.code_redeemed_at === null && x.state !== 'removed';
      insert.run(
        x.session_id, x.seat_id, x.ordinal, x.candidate_no, x.name, x.id_number, x.state,
        live ? hashCodeSync(x.access_code, kdf) : null,
        x.code_redeemed_at, x.allowed_ms, x.used_ms, x.running_since, x.last_error,
      );
    }
  }
  db.exec('DROP TABLE seats; ALTER TABLE seats_v2 RENAME TO seats;');
}

/** Migrations, in order. Never edit a released one: add the next. */
export const MIGRATIONS: readonly Migration[] = [
  `
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  paper_id TEXT NOT NULL,
  level TEXT NOT NULL,
  room TEXT NOT NULL,
  state TEXT NOT NULL,
  duration_ms INTEGER NOT NULL,
  practice INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  -- JSON: task ids, images, seat plan inputs; fixed when the session is opened.
  spec TEXT NOT NULL
) STRICT;
CREATE TABLE seats (
  session_id TEXT NOT NULL REFERENCES sessions(id),
  seat_id TEXT NOT NULL,
  ordinal INTEGER NOT NULL,
  candidate_no TEXT NOT NULL,
  name TEXT NOT NULL,
  id_number TEXT NOT NULL,
  state TEXT NOT NULL,
  access_code TEXT NOT NULL UNIQUE,
  code_redeemed_at TEXT,
  allowed_ms INTEGER NOT NULL,
  used_ms INTEGER NOT NULL DEFAULT 0,
  running_since INTEGER,
  last_error TEXT,
  PRIMARY KEY (session_id, seat_id)
) STRICT;
CREATE TABLE seat_tokens (
  token_sha256 TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  seat_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  revoked_at TEXT
) STRICT;
CREATE TABLE locks (
  session_id TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  acquired_at TEXT NOT NULL
) STRICT;
CREATE TABLE transitions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  seat_id TEXT,
  event TEXT NOT NULL,
  from_state TEXT NOT NULL,
  to_state TEXT NOT NULL,
  at TEXT NOT NULL,
  data TEXT
) STRICT;
CREATE TABLE grading_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  seat_id TEXT NOT NULL,
  started_at TEXT NOT NULL,
  reason TEXT NOT NULL
) STRICT;
CREATE TABLE grading_run_ends (
  run_id INTEGER PRIMARY KEY REFERENCES grading_runs(id),
  ended_at TEXT NOT NULL,
  status TEXT NOT NULL
) STRICT;
CREATE TABLE check_results (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL REFERENCES grading_runs(id),
  session_id TEXT NOT NULL,
  seat_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  check_id TEXT NOT NULL,
  skill TEXT NOT NULL,
  points REAL NOT NULL,
  outcome TEXT NOT NULL,
  score REAL NOT NULL,
  earned REAL NOT NULL,
  summary TEXT NOT NULL,
  evidence_file TEXT,
  evidence_sha256 TEXT,
  at TEXT NOT NULL,
  UNIQUE (run_id, task_id, check_id)
) STRICT;
CREATE TABLE examiner_marks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  seat_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  check_id TEXT NOT NULL,
  examiner TEXT NOT NULL,
  earned REAL NOT NULL,
  reason TEXT NOT NULL,
  at TEXT NOT NULL
) STRICT;
CREATE TABLE archives (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  dir TEXT NOT NULL,
  manifest_sha256 TEXT NOT NULL,
  files INTEGER NOT NULL,
  at TEXT NOT NULL
) STRICT;
CREATE INDEX check_results_seat ON check_results(session_id, seat_id, run_id);
CREATE INDEX transitions_session ON transitions(session_id, seq);
${LEDGER_TABLES.map(appendOnly).join('\n')}
`,
  hashAccessCodes,
  // 3: examiner dashboard logins outlive a runner restart (runner/web/examiner-logins.ts).
  `CREATE TABLE examiner_logins (
  token_hash TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX examiner_logins_created ON examiner_logins(created_at);`,
  // 4: the runner's disk watch, its latest reading per seat (runner/sessions/disk-watch.ts); what it
  // did (stops, releases) goes to the transitions ledger.
  `CREATE TABLE seat_disk (
  session_id TEXT NOT NULL REFERENCES sessions(id),
  seat_id TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  quota_bytes INTEGER NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('ok', 'warn', 'over')),
  halted INTEGER NOT NULL DEFAULT 0,
  halted_reason TEXT,
  released_at INTEGER,
  sampled_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, seat_id)
) STRICT;`,
  // 5: each grading run records the content hash of every task it graded (the session's pinned copy).
  'ALTER TABLE grading_runs ADD COLUMN task_hashes TEXT;',
  // 6: who keeps each room's clock (runner/sessions/supervisor-lease.ts): one supervisor per session,
  // so a wall-clock jump is applied once and the disk watch samples once.
  `CREATE TABLE supervisors (
  session_id TEXT PRIMARY KEY REFERENCES sessions(id),
  holder TEXT NOT NULL,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  taken_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;`,
  // 7: the disk watch counts each seat's files (inodes) too; null where the host cannot read them.
  `ALTER TABLE seat_disk ADD COLUMN files INTEGER;
ALTER TABLE seat_disk ADD COLUMN quota_files INTEGER NOT NULL DEFAULT 0;`,
];

export function migrate(db: DB): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new DeploylabError({
      code: 'STORE_TOO_NEW',
      fault: 'config',
      message: {
        zh: `数据库版本 ${current} 比本程序支持的 ${MIGRATIONS.length} 新`,
        en: `the store's schema version ${current} is newer than this program's ${MIGRATIONS.length}`,
      },
      hint: { zh: '使用创建该数据库的 deploylab 版本', en: 'use the deploylab version that created it' },
    });
  }
  if (current === MIGRATIONS.length) return current;
  // Pages freed by a migration (a dropped plaintext column) are zeroed, not left in the file.
  const secureDelete = db.pragma('secure_delete', { simple: true }) as number;
  db.pragma('secure_delete = ON');
  try {
    for (let v = current; v < MIGRATIONS.length; v++) {
      const m = MIGRATIONS[v]!;
      db.transaction(() => {
        if (typeof m === 'string') db.exec(m);
        else m(db);
        db.pragma(`user_version = ${v + 1}`);
      }).immediate();
    }
  } finally {
    db.pragma(`secure_delete = ${secureDelete}`);
  }
  // The old pages' bytes may still sit in the write-ahead log until it is emptied.
  if (db.pragma('journal_mode', { simple: true }) === 'wal') db.pragma('wal_checkpoint(TRUNCATE)');
  return MIGRATIONS.length;
}

/** Open (creating) the store under dataDir. */
export function openStore(dataDir: string): DB {
  mkdirSync(dataDir, { recursive: true });
  let db: DB;
  try {
    db = new Database(join(dataDir, 'deploylab.sqlite'));
  } catch (cause) {
    throw new DeploylabError({
      code: 'STORE_UNAVAILABLE',
      fault: 'infrastructure',
      message: { zh: `无法打开数据库：${(cause as Error).message}`, en: `cannot open the store: ${(cause as Error).message}` },
      hint: { zh: '检查 dataDir 的路径与权限', en: 'check the dataDir path and its permissions' },
      cause,
    });
  }
  db.pragma('journal_mode = WAL');
  // FULL: a committed transition survives a power cut too, not only a killed process.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 10000');
  migrate(db);
  return db;
}

export function nowIso(): string {
  return new Date().toISOString();
}

/** Whether a process of this host with that pid is alive (EPERM: alive, someone else's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The per-session lock across processes: one row per session naming the holder. A holder that
 * died (kill -9) is detected by its pid and the lock is taken over, so a restart carries on.
 */
export function acquireLock(db: DB, sessionId: string): () => void {
  const host = hostname();
  const take = db.transaction(() => {
    const row = db.prepare('SELECT pid, host FROM locks WHERE session_id = ?').get(sessionId) as { pid: number; host: string } | undefined;
    if (row && row.pid !== process.pid && (row.host !== host || pidAlive(row.pid))) return row;
    db.prepare('INSERT OR REPLACE INTO locks (session_id, pid, host, acquired_at) VALUES (?, ?, ?, ?)').run(sessionId, process.pid, host, nowIso());
    return undefined;
  });
  const holder = take.immediate();
  if (holder) {
    throw new DeploylabError({
      code: 'SESSION_LOCKED',
      fault: 'config',
      message: {
        zh: `场次 ${sessionId} 正由另一个进程操作（pid ${holder.pid}，主机 ${holder.host}）`,
        en: `session ${sessionId} is being worked on by another process (pid ${holder.pid} on ${holder.host})`,
      },
      hint: { zh: '等它结束，或结束该进程后重试', en: 'wait for it, or stop that process and retry' },
      details: { ...holder },
    });
  }
  return () => {
    db.prepare('DELETE FROM locks WHERE session_id = ? AND pid = ?').run(sessionId, process.pid);
  };
}
