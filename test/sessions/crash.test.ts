import { afterAll, describe, expect, it } from 'vitest';
import { runSolution } from '../../runner/grading/task-runner.js';
import { loadExamPaper } from '../../runner/sessions/paper.js';
import { hasEngine } from '../helpers/docker-env.js';
import { cli, images, MINI_PAPER, miniTasksRoot, newService, ROSTER, until } from './helpers.js';

/**
 * kill -9 the runner (the CLI as a child process) during provisioning, during the exam and during
 * grading; the restarted command reconciles with the engine by labels and carries on, and nothing
 * already recorded is lost. One session goes through all three, in order.
 */
describe.skipIf(!hasEngine)('crash safety (SIGKILL and restart)', () => {
  const { svc, dataDir, id } = newService('crash');
  const tasksRoot = miniTasksRoot();
  const count = (sql: string): number => (svc.db.prepare(sql).get(id) as { n: number }).n;
  const transitions = (): unknown[] => svc.db.prepare('SELECT * FROM transitions WHERE session_id = ? ORDER BY seq').all(id);
  afterAll(async () => {
    await svc.reset(id, { force: true }).catch(() => undefined);
  }, 120_000);

  it('during provisioning', async () => {
    // 30 s of exam time: the clock test below lets it run out while the runner is dead.
    svc.open({ id, paperId: MINI_PAPER, tasksRoot, room: 'T2', roster: ROSTER, images: await images(), baseUrl: 'http://127.0.0.1:8700/', durationMinutes: 30 / 60 });
    const first = cli(dataDir, ['session', 'provision', id, '--concurrency', '2']);
    // Kill once a seat's containers exist but its setup is not finished.
    await until('a seat being provisioned with containers', async () => count("SELECT count(*) n FROM seats WHERE session_id = ? AND state = 'provisioning'") > 0 && (await svc.driver.list({ session: id })).length > 0, 60_000);
    first.child.kill('SIGKILL');
    const r1 = await first.done;
    expect(r1.signal).toBe('SIGKILL');
    const before = transitions();
    expect(svc.seats(id).some((s) => s.state !== 'ready')).toBe(true);

    const second = cli(dataDir, ['--json', 'session', 'provision', id]);
    const r2 = await second.done;
    expect(r2.code, r2.out).toBe(0);
    expect(svc.session(id).state).toBe('ready');
    expect(svc.seats(id).map((s) => s.state)).toEqual(['ready', 'ready']);
    // Nothing recorded was lost: the old transitions are a prefix of the new ones.
    expect(transitions().slice(0, before.length)).toEqual(before);
    // Exactly one sandbox per seat and task: half-made ones were replaced, not duplicated.
    const tasks = svc.spec(id).tasks;
    expect((await svc.driver.list({ session: id })).map((s) => s.ref.seat)).toEqual(['s01', 's02'].flatMap((s) => tasks.map((t) => `${s}-${t}`)).sort());
  }, 600_000);

  it('during the exam (time runs out while the runner is down)', async () => {
    await svc.start(id);
    const quantize = loadExamPaper(MINI_PAPER, tasksRoot).tasks.find((t) => t.task.id === 'quantize')!;
    expect((await runSolution(svc.driver, { session: id, seat: 's01-quantize' }, quantize)).at(-1)!.exitCode).toBe(0);
    const sup = cli(dataDir, ['session', 'supervise', id, '--no-grade']);
    // Its first tick is done when it says so (the lock is held only for a tick, too briefly to poll).
    await until('the supervisor keeping the clock', () => sup.output().includes('supervising session'), 60_000, 50, sup);
    sup.child.kill('SIGKILL');
    expect((await sup.done).signal).toBe('SIGKILL');
    // The point of the test is a runner that died before the end: if this host was too slow for
    // that, say so rather than fail further down for another reason.
    expect(svc.seats(id).map((s) => s.state), 'the supervisor was killed after the exam time had already run out').toEqual(['running', 'running']);
    expect(svc.session(id).state).toBe('running');
    // Time runs out while no runner is there; candidates are still in.
    const end = Math.max(...svc.seats(id).map((s) => (s.running_since ?? 0) + s.allowed_ms - s.used_ms));
    await until('the exam time to pass', () => Date.now() > end + 200, 60_000, 200);
    expect((await svc.driver.exec({ session: id, seat: 's02-quantize' }, { cmd: ['true'] })).exitCode).toBe(0);

    const again = cli(dataDir, ['session', 'supervise', id, '--no-grade']);
    const r = await again.done;
    expect(r.code, r.out).toBe(0);
    expect(svc.session(id).state).toBe('frozen');
    expect(svc.seats(id).map((s) => s.state)).toEqual(['frozen', 'frozen']);
    await expect(svc.driver.exec({ session: id, seat: 's02-quantize' }, { cmd: ['true'] })).rejects.toMatchObject({ code: 'SANDBOX_SEAT_FROZEN' });
    // No lock left behind by the dead runner.
    expect(count('SELECT count(*) n FROM locks WHERE session_id = ?')).toBe(0);
  }, 300_000);

  it('during grading', async () => {
    const g1 = cli(dataDir, ['session', 'grade', id]);
    await until('the first check result in the ledger', () => count('SELECT count(*) n FROM check_results WHERE session_id = ?') > 0, 120_000, 20, g1);
    g1.child.kill('SIGKILL');
    expect((await g1.done).signal).toBe('SIGKILL');
    const recorded = svc.db.prepare('SELECT * FROM check_results WHERE session_id = ? ORDER BY id').all(id);
    expect(recorded.length).toBeGreaterThan(0);
    expect(svc.session(id).state).toBe('grading');

    const g2 = cli(dataDir, ['--json', 'session', 'grade', id]);
    const r = await g2.done;
    expect(r.code, r.out).toBe(0);
    expect(svc.session(id).state).toBe('graded');
    // Every result of the interrupted run is still there, unchanged; a new run finished the seat.
    expect(svc.db.prepare('SELECT * FROM check_results WHERE session_id = ? ORDER BY id').all(id).slice(0, recorded.length)).toEqual(recorded);
    const runs = svc.db.prepare('SELECT r.seat_id, r.reason, e.status FROM grading_runs r LEFT JOIN grading_run_ends e ON e.run_id = r.id WHERE r.session_id = ? ORDER BY r.id').all(id) as { seat_id: string; reason: string; status: string | null }[];
    expect(runs[0]!.status).toBeNull();
    expect(runs.some((x) => x.reason === 'resumed after interruption' && x.status !== null)).toBe(true);
    // s01 solved the quantize task only; s02 nothing.
    const rep = svc.report(id);
    expect(rep[0]!.sheet!.total).toBeGreaterThan(0);
    expect(rep[0]!.sheet!.total).toBeLessThan(100);
    expect(rep[1]!.sheet!.total).toBe(0);
  }, 600_000);
});
