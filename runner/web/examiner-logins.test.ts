import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../store/db.js';
import { ExaminerLogins } from './examiner-logins.js';

describe('examiner logins in the store', () => {
  it('survive a restart (a new store handle on the same file); a copy of the store holds no cookie', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dl-logins-'));
    let t = 1_000_000;
    const opts = { ttlMs: 60_000, max: 10, now: () => t };
    const db1 = openStore(dir);
    const cookie = new ExaminerLogins(db1, opts).create();
    expect(cookie).toMatch(ExaminerLogins.COOKIE_SHAPE);
    db1.close();

    const db2 = openStore(dir);
    const logins = new ExaminerLogins(db2, opts);
    const h = logins.check(cookie);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    db2.pragma('wal_checkpoint(TRUNCATE)');
    expect(readFileSync(join(dir, 'deploylab.sqlite')).includes(Buffer.from(cookie))).toBe(false);

    // Unknown, malformed, or another login's hash used as a cookie: nobody.
    expect(logins.check(undefined)).toBeNull();
    expect(logins.check('x'.repeat(43))).toBeNull();
    expect(logins.check(`${cookie};`)).toBeNull();
    expect(logins.check(h!.slice(0, 43))).toBeNull();

    // Expiry: refused at the deadline, and the row is gone.
    t += 59_999;
    expect(logins.check(cookie)).toBe(h);
    t += 1;
    expect(logins.check(cookie)).toBeNull();
    expect(logins.size).toBe(0);

    // Logout.
    const c2 = logins.create();
    logins.revoke(logins.check(c2)!);
    expect(logins.check(c2)).toBeNull();
    db2.close();
  });

  it('stay bounded: expired ones go first, then the oldest', () => {
    let t = 0;
    const logins = new ExaminerLogins(openStore(mkdtempSync(join(tmpdir(), 'dl-logins-'))), { ttlMs: 1000, max: 3, now: () => t });
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      made.push(logins.create());
      t += 10;
    }
    expect(logins.size).toBe(3);
    expect(made.map((c) => logins.check(c) !== null)).toEqual([false, false, true, true, true]);
    // Everything expired: the next login finds a clean table.
    t += 1000;
    logins.create();
    expect(logins.size).toBe(1);
  });
});
