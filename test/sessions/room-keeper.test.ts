import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { FakeDriver } from '../../runner/sandbox/fake-driver.js';
import { startRoomKeeper } from '../../runner/sessions/room-keeper.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import { takeSupervisorLease } from '../../runner/sessions/supervisor-lease.js';
import { openStore } from '../../runner/store/db.js';
import { DEFAULT_TASKS_ROOT } from '../../runner/tasks/loader.js';
import { ROSTER, until } from './helpers.js';

/**
 * The server keeps every open room's clock under the room's supervisor lease: one keeper per
 * session across processes, so a wall-clock jump is applied once. On the in-memory driver (no
 * engine): the paper's two tasks only write files.
 */
const PAPER = 'keeper-practice';
const IMAGE = 'deploylab/workspace-cpu:keeper';
const tasksRoot = mkdtempSync(join(tmpdir(), 'dl-tasks-'));
cpSync(DEFAULT_TASKS_ROOT, tasksRoot, { recursive: true });
writeFileSync(
  join(tasksRoot, 'papers', `${PAPER}.yaml`),
  [`id: ${PAPER}`, 'level: junior', 'title:', '  zh: 看管练习卷', '  en: Keeper practice paper', 'durationMinutes: 30', 'practice: true', 'tasks:', '  - quantize', '  - prune', ''].join('\n'),
);
const dataDir = mkdtempSync(join(tmpdir(), 'dl-keeper-'));
const db = openStore(dataDir);
const driver = new FakeDriver({ images: [IMAGE] });
// Wall and monotonic clocks both faked and moved together: time passing, not the clock being set.
let now = Date.now();
const service = (): SessionService => new SessionService({ db, driver, dataDir, now: () => now, monotonic: () => now, hostFree: async () => 1024 ** 4 });
const svc = service();

afterAll(() => {
  db.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(tasksRoot, { recursive: true, force: true });
});

async function openedRoom(prefix: string): Promise<string> {
  const id = `${prefix}-${randomBytes(3).toString('hex')}`;
  svc.open({ id, paperId: PAPER, tasksRoot, room: 'K1', roster: ROSTER, images: { workspaceCpu: IMAGE, toolbox: null }, baseUrl: 'http://127.0.0.1:8700/' });
  expect((await svc.provision(id)).failed).toEqual([]);
  return id;
}

const supervisedError = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof DeploylabError ? e.code : String(e)),
  );

describe('supervisor lease', () => {
  it('one holder at a time; renew fails once another took an expired lease; release frees it', async () => {
    const id = await openedRoom('lease');
    let t = 1_000_000;
    const a = takeSupervisorLease(db, id, { ttlMs: 1000, now: () => t });
    expect(() => takeSupervisorLease(db, id, { ttlMs: 1000, now: () => t + 999 })).toThrow(/already supervised/);
    expect(a.renew()).toBe(true);
    t += 2000; // a's lease lapsed without renewal
    const b = takeSupervisorLease(db, id, { ttlMs: 1000, now: () => t });
    expect(a.renew()).toBe(false);
    a.release(); // not a's any more: b keeps it
    expect(() => takeSupervisorLease(db, id, { ttlMs: 1000, now: () => t })).toThrow(DeploylabError);
    b.release();
    takeSupervisorLease(db, id, { ttlMs: 1000, now: () => t }).release();
  });

  it("a holder on this host whose process died is taken over before its lease expires", async () => {
    const id = await openedRoom('dead');
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    db.prepare('INSERT INTO supervisors (session_id, holder, pid, host, taken_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, `x:${gone}`, gone, hostname(), Date.now(), Date.now() + 3_600_000);
    takeSupervisorLease(db, id).release();
    // The same row naming a live process (this one, another holder) is respected.
    db.prepare('INSERT INTO supervisors (session_id, holder, pid, host, taken_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, 'other', process.pid, hostname(), Date.now(), Date.now() + 3_600_000);
    expect(() => takeSupervisorLease(db, id)).toThrow(/already supervised/);
    db.prepare('DELETE FROM supervisors WHERE session_id = ?').run(id);
  });

  it('a supervisor whose lease another took over stops, without grading', async () => {
    const id = await openedRoom('lost');
    await svc.start(id);
    const supervising = service().supervise(id, { leaseMs: 300, pollMs: 20 });
    await until('the lease is taken', () => db.prepare('SELECT 1 FROM supervisors WHERE session_id = ?').get(id) !== undefined, 5_000);
    db.prepare('UPDATE supervisors SET holder = ? WHERE session_id = ?').run('another-process', id);
    now += 31 * 60_000; // its time is over, but this supervisor no longer keeps the room
    expect(await supervising).toBe('running');
    expect(db.prepare('SELECT holder FROM supervisors WHERE session_id = ?').get(id)).toEqual({ holder: 'another-process' });
    db.prepare('DELETE FROM supervisors WHERE session_id = ?').run(id);
  });
});

describe('the room keeper (what deploylab serve runs)', () => {
  it('supervises a running room, keeps a second supervisor off, freezes it at the end and grades it', async () => {
    const id = await openedRoom('keep');
    await svc.start(id);
    const keeper = startRoomKeeper(service(), { scanMs: 50, pollMs: 20 });
    try {
      await until('the keeper supervises the room', () => keeper.supervised().includes(id), 5_000);
      // `session supervise` beside the server is refused, not run twice.
      expect(await supervisedError(service().supervise(id, { grade: false, pollMs: 20 }))).toBe('SESSION_SUPERVISED');
      // A second keeper (another server on the same store) leaves the room to the first.
      const second = startRoomKeeper(service(), { scanMs: 50, pollMs: 20 });
      await new Promise((r) => setTimeout(r, 200));
      await second.stop();
      expect(svc.seats(id).map((s) => s.state)).toEqual(['running', 'running']);
      now += 31 * 60_000;
      await until('the keeper freezes and grades the room', () => svc.session(id).state === 'graded', 20_000);
      await until('the keeper lets the room go', () => !keeper.supervised().includes(id), 5_000);
      expect(db.prepare('SELECT COUNT(*) AS n FROM supervisors WHERE session_id = ?').get(id)).toEqual({ n: 0 });
    } finally {
      await keeper.stop();
    }
  }, 60_000);

  it('stop() ends supervision without grading and gives the lease back; a later keeper carries on', async () => {
    const id = await openedRoom('stop');
    await svc.start(id);
    const keeper = startRoomKeeper(service(), { scanMs: 50, pollMs: 20 });
    await until('the keeper supervises the room', () => keeper.supervised().includes(id), 5_000);
    await keeper.stop();
    expect(keeper.supervised()).toEqual([]);
    expect(svc.session(id).state).toBe('running');
    expect(db.prepare('SELECT COUNT(*) AS n FROM supervisors WHERE session_id = ?').get(id)).toEqual({ n: 0 });
    // Nothing is supervised after stop, even when a scan is asked for.
    keeper.scan();
    expect(keeper.supervised()).toEqual([]);
    const next = startRoomKeeper(service(), { scanMs: 50, pollMs: 20 });
    try {
      now += 31 * 60_000;
      await until('the next keeper freezes the room', () => ['frozen', 'grading', 'graded'].includes(svc.session(id).state), 20_000);
    } finally {
      await next.stop();
    }
  }, 60_000);
});
