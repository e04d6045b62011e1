import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { remainingMs } from '../../runner/sessions/state-machine.js';
import { clockOf } from '../../runner/sessions/ledger-store.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import { hasEngine } from '../helpers/docker-env.js';
import { ROSTER, images, miniTasksRoot, newService, until } from './helpers.js';

/**
 * The exam clock runs on wall time in the store; the supervisor compares it with the monotonic
 * clock each step, so the host's clock set forwards (here: faked in the clock source) takes no
 * time from the candidates and is shown to the examiners.
 */
describe.skipIf(!hasEngine)('the exam clock and a jump of the host clock', () => {
  const { svc, dataDir, id } = newService('jump');
  const tasksRoot = miniTasksRoot();
  writeFileSync(join(tasksRoot, 'papers', 'one-task.yaml'), 'id: one-task\nlevel: junior\ntitle:\n  zh: 单题\n  en: One task\ndurationMinutes: 30\npractice: true\ntasks:\n  - quantize\n');
  afterAll(async () => {
    await svc.reset(id, { force: true }).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(tasksRoot, { recursive: true, force: true });
  });

  it('the wall clock set an hour forwards: the seat keeps its remaining time, the jump is recorded for the dashboard', async () => {
    svc.open({ id, paperId: 'one-task', tasksRoot, room: 'L1', roster: ROSTER.slice(0, 1), images: await images(), baseUrl: 'http://127.0.0.1:8700/' });
    expect((await svc.provision(id)).failed).toEqual([]);
    let offset = 0;
    const progress: string[] = [];
    const clock = new SessionService({ db: svc.db, driver: svc.driver, dataDir, now: () => Date.now() + offset, progress: (l) => progress.push(l.en) });
    await clock.start(id);
    const supervising = clock.supervise(id, { grade: false, pollMs: 100 });
    await new Promise((r) => setTimeout(r, 300));
    const before = remainingMs(clockOf(svc.seat(id, 's01')), Date.now() + offset);
    // An hour forwards: without the correction the 30-minute seat would be out of time at once.
    offset += 3_600_000;
    await until('the supervisor sees the jump', () => clock.clockJumps(id).length === 1, 5_000);
    const after = remainingMs(clockOf(svc.seat(id, 's01')), Date.now() + offset);
    expect(svc.seat(id, 's01').state).toBe('running');
    expect(before - after).toBeGreaterThanOrEqual(0);
    expect(before - after).toBeLessThan(3_000);
    const [jump] = clock.clockJumps(id);
    expect(jump!.jumpMs).toBeGreaterThan(3_600_000 - 2_000);
    expect(jump!.jumpMs).toBeLessThan(3_600_000 + 2_000);
    expect(progress.some((l) => l.includes("the host's wall clock jumped by 3600"))).toBe(true);
    // Ordinary time passing is no jump.
    await new Promise((r) => setTimeout(r, 500));
    expect(clock.clockJumps(id)).toHaveLength(1);
    await clock.end(id);
    expect(await supervising).toBe('frozen');
  }, 180_000);
});
