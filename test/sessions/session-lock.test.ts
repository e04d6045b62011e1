import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SessionService } from '../../runner/sessions/session-service.js';
import { afterAll, describe, expect, it } from 'vitest';
import { hasEngine } from '../helpers/docker-env.js';
import { ROSTER, images, miniTasksRoot, newService } from './helpers.js';

/**
 * Operations on one session from the same process (the web server's examiner actions beside the
 * clock and grading) queue behind each other: the store's lock row names only the process, so it
 * alone would let them overlap (seen: grading began while `end` was still freezing seats).
 */
describe.skipIf(!hasEngine)('one operation on a session at a time', () => {
  const { svc, dataDir, id } = newService('lock');
  const tasksRoot = miniTasksRoot();
  writeFileSync(join(tasksRoot, 'papers', 'one-task.yaml'), 'id: one-task\nlevel: junior\ntitle:\n  zh: 单题\n  en: One task\ndurationMinutes: 30\npractice: true\ntasks:\n  - quantize\n');
  afterAll(async () => {
    await svc.reset(id, { force: true }).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(tasksRoot, { recursive: true, force: true });
  });

  it('a start issued while provisioning runs waits for it instead of overlapping', async () => {
    svc.open({ id, paperId: 'one-task', tasksRoot, room: 'L1', roster: ROSTER.slice(0, 1), images: await images(), baseUrl: 'http://127.0.0.1:8700/' });
    const order: string[] = [];
    const provisioning = svc.provision(id).then((r) => {
      order.push('provisioned');
      return r;
    });
    const starting = svc.start(id).then((r) => {
      order.push('started');
      return r;
    });
    const [prov, seats] = await Promise.all([provisioning, starting]);
    expect(prov.failed).toEqual([]);
    expect(order).toEqual(['provisioned', 'started']);
    expect(seats.map((s) => s.state)).toEqual(['running']);
    // And the lock is free again afterwards.
    await svc.end(id);
    expect(svc.session(id).state).toBe('frozen');
  }, 180_000);

  it('another process holding the session: an operation waits for it, up to a limit; the supervisor keeps going', async () => {
    // A live process of this host stands for the other runner (the lock row names a pid).
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    const hold = (): void => {
      svc.db.prepare('INSERT OR REPLACE INTO locks (session_id, pid, host, acquired_at) VALUES (?, ?, ?, ?)').run(id, other.pid, hostname(), new Date().toISOString());
    };
    const letGo = (): void => {
      svc.db.prepare('DELETE FROM locks WHERE session_id = ? AND pid = ?').run(id, other.pid);
    };
    const progress: string[] = [];
    const waiting = new SessionService({ db: svc.db, driver: svc.driver, dataDir, lockWaitMs: 1500, progress: (l) => progress.push(l.en) });
    try {
      const allowed = svc.seat(id, 's01').allowed_ms;
      // Held past the wait: refused, after waiting.
      hold();
      const t0 = Date.now();
      await expect(waiting.extend(id, 60_000, 's01')).rejects.toMatchObject({ code: 'SESSION_LOCKED' });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
      expect(svc.seat(id, 's01').allowed_ms).toBe(allowed);
      // Let go within the wait: the operation goes through.
      setTimeout(letGo, 400);
      await waiting.extend(id, 60_000, 's01');
      expect(svc.seat(id, 's01').allowed_ms).toBe(allowed + 60_000);

      // The supervisor outlasts a hold longer than its wait, then finishes (the room is frozen).
      hold();
      setTimeout(letGo, 2500);
      expect(await waiting.supervise(id, { grade: false, pollMs: 200 })).toBe('frozen');
      expect(progress.filter((p) => p.includes('held by another process'))).toHaveLength(1);
      expect(svc.db.prepare('SELECT count(*) n FROM locks WHERE session_id = ?').get(id)).toEqual({ n: 0 });
    } finally {
      other.kill();
    }
  }, 60_000);
});
