import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLock, LEDGER_TABLES, MIGRATIONS, openStore, type DB } from '../../runner/store/db.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});
function fresh(): { db: DB; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dl-store-'));
  dirs.push(dir);
  return { db: openStore(dir), dir };
}

function seedLedger(db: DB): void {
  db.prepare("INSERT INTO transitions (session_id, seat_id, event, from_state, to_state, at) VALUES ('x', NULL, 'open', 'none', 'planned', 'now')").run();
  const run = db.prepare("INSERT INTO grading_runs (session_id, seat_id, started_at, reason) VALUES ('x', 's01', 'now', 'test')").run().lastInsertRowid;
  db.prepare("INSERT INTO grading_run_ends (run_id, ended_at, status) VALUES (?, 'now', 'complete')").run(run);
  db.prepare(
    "INSERT INTO check_results (run_id, session_id, seat_id, task_id, check_id, skill, points, outcome, score, earned, summary, at) VALUES (?, 'x', 's01', 't', 'c', '1.2.1', 4, 'pass', 1, 4, '{}', 'now')",
  ).run(run);
  db.prepare("INSERT INTO examiner_marks (session_id, seat_id, task_id, check_id, examiner, earned, reason, at) VALUES ('x', 's01', 't', 'c', 'e1', 2, 'why', 'now')").run();
  db.prepare("INSERT INTO archives (session_id, dir, manifest_sha256, files, at) VALUES ('x', '/a', 'h', 1, 'now')").run();
}

describe('store', () => {
  it('opens in WAL mode with every migration applied, and reopens without re-applying', () => {
    const { db, dir } = fresh();
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    seedLedger(db);
    db.close();
    const again = openStore(dir);
    expect((again.prepare('SELECT count(*) n FROM check_results').get() as { n: number }).n).toBe(1);
    again.close();
  });

  it('rejects UPDATE and DELETE on every ledger table', () => {
    const { db } = fresh();
    seedLedger(db);
    for (const t of LEDGER_TABLES) {
      const n = (db.prepare(`SELECT count(*) n FROM ${t}`).get() as { n: number }).n;
      expect(n, t).toBe(1);
      const col = t === 'grading_run_ends' ? 'status' : t === 'transitions' ? 'event' : 'session_id';
      expect(() => db.prepare(`UPDATE ${t} SET ${col} = 'changed'`).run(), `${t} update`).toThrow(/LEDGER_APPEND_ONLY/);
      expect(() => db.prepare(`DELETE FROM ${t}`).run(), `${t} delete`).toThrow(/LEDGER_APPEND_ONLY/);
      expect((db.prepare(`SELECT count(*) n FROM ${t}`).get() as { n: number }).n).toBe(1);
    }
    db.close();
  });

  it('takes over the lock of a dead holder and refuses a live one', () => {
    const { db } = fresh();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    db.prepare("INSERT INTO locks (session_id, pid, host, acquired_at) VALUES ('s', ?, ?, 'then')").run(Number(dead.stdout), hostname());
    const release = acquireLock(db, 's');
    expect((db.prepare("SELECT pid FROM locks WHERE session_id = 's'").get() as { pid: number }).pid).toBe(process.pid);
    // A live other process (our parent) holds another session's lock.
    db.prepare("INSERT INTO locks (session_id, pid, host, acquired_at) VALUES ('t', ?, ?, 'now')").run(process.ppid, hostname());
    expect(() => acquireLock(db, 't')).toThrow(/another process/);
    release();
    expect(db.prepare("SELECT 1 FROM locks WHERE session_id = 's'").get()).toBeUndefined();
    db.close();
  });
});
