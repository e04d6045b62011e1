import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasEngine } from '../helpers/docker-env.js';
import { ROSTER, images, miniTasksRoot, newService } from './helpers.js';

/**
 * Operations on one session from the same process (the web server's examiner actions beside the
 * clock and grading) queue behind each other: the store's lock row names only the process, so it
 * alone would let them overlap (seen: grading began while `end` was still freezing seats).
 */
describe.skipIf(!hasEngine)('session operations within one process', () => {
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
});
