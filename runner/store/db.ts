import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DeploylabError } from '../core/errors.js';

/**
 * The session store: one SQLite file under the config's dataDir (WAL, so a reader never blocks the
 * runner and a kill -9 loses nothing committed). Schema changes are migrations in code, applied in
 * order and recorded in `PRAGMA user_version`.
 *
 * Two kinds of tables:
 * - state (sessions, seats, locks): the current state, updated in place, always through a
 *   transition that is appended to `transitions` in the same SQLite transaction;
 * - ledger (transitions, grading_runs, grading_run_ends, check_results, examiner_marks, archives):
 *   append-only. Triggers reject UPDATE and DELETE, so a final score can only be derived from what
 *   was recorded, never edited in place.
 */
export type DB = Database.Database;

export const LEDGER_TABLES = ['transitions', 'grading_runs', 'grading_run_ends', 'check_results', 'examiner_marks', 'archives'] as const;

const appendOnly = (t: string): string => `
CREATE TRIGGER ${t}_no_update BEFORE UPDATE ON ${t} BEGIN SELECT RAISE(ABORT, 'LEDGER_APPEND_ONLY: ${t} rows cannot be updated'); END;
CREATE TRIGGER ${t}_no_delete BEFORE DELETE ON ${t} BEGIN SELECT RAISE(ABORT, 'LEDGER_APPEND_ONLY: ${t} rows cannot be deleted'); END;`;

/** Migrations, in order. Never edit a released one: add the next. */
export const MIGRATIONS: readonly string[] = [
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
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
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

function pidAlive(pid: number): boolean {
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
