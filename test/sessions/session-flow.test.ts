import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runSolution } from '../../runner/grading/task-runner.js';
import { findChromium } from '../../runner/sessions/score-sheet-pdf.js';
import { SeatDirectory } from '../../runner/sessions/seat-directory.js';
import { verifyManifest } from '../../runner/sessions/archive.js';
import { loadExamPaper } from '../../runner/sessions/paper.js';
import { hasEngine } from '../helpers/docker-env.js';
import { images, MINI_PAPER, miniTasksRoot, newService, ROSTER } from './helpers.js';

/**
 * A small real session on the local engine: two seats of a four-task paper, one solved with the reference
 * solutions, one untouched; freeze, grade, report, examiner mark, archive, reset.
 */
describe.skipIf(!hasEngine)('session on the local engine', () => {
  const { svc, id } = newService('flow');
  const tasksRoot = miniTasksRoot();
  afterAll(async () => {
    await svc.reset(id, { force: true }).catch(() => undefined);
  }, 120_000);

  it('opens, provisions, freezes, grades, reports, archives and resets', async () => {
    const { codes } = svc.open({ id, paperId: MINI_PAPER, tasksRoot, room: 'T1', roster: ROSTER, images: await images(), baseUrl: 'http://127.0.0.1:8700/' });
    // An unarchived session is not reset without --force.
    await expect(svc.reset(id)).rejects.toThrow(/not archived/);
    const prov = await svc.provision(id, { concurrency: 2 });
    expect(prov).toEqual({ ready: ['s01', 's02'], failed: [] });
    expect(svc.session(id).state).toBe('ready');

    // The web login: one-time code → seat → cookie.
    const dir = new SeatDirectory(svc.db);
    const code = codes['s01']!;
    const seat = await dir.redeemAccessCode(code.toLowerCase());
    const paper = loadExamPaper(MINI_PAPER, tasksRoot);
    const taskIds = paper.tasks.map((t) => t.task.id);
    expect(seat).toMatchObject({ sessionId: id, seatId: 's01', paperId: MINI_PAPER, taskIds, frozen: false });
    expect(seat!.sandboxes.map((b) => b.ref.seat)).toEqual(taskIds.map((t) => `s01-${t}`));
    expect(await dir.redeemAccessCode(code)).toBeNull();
    const token = dir.bindSeatSession(seat!.ref);
    expect(dir.seatForCookie(token)?.seatId).toBe('s01');
    expect(dir.seatForCookie('not-a-token')).toBeNull();

    await svc.start(id);
    expect(dir.seatForCookie(token)?.endsAt).not.toBeNull();
    const box = (seatId: string, taskId: string): { session: string; seat: string } => ({ session: id, seat: `${seatId}-${taskId}` });
    for (const t of paper.tasks) {
      const runs = await runSolution(svc.driver, box('s01', t.task.id), t);
      expect(runs.at(-1)!.exitCode, `${t.task.id}: ${runs.at(-1)!.stderr}`).toBe(0);
    }
    // Pause one seat: its clock stops and candidate execs are refused; resume opens it again.
    await svc.pause(id, 's02');
    await expect(svc.driver.exec(box('s02', 'quantize'), { cmd: ['true'] })).rejects.toMatchObject({ code: 'SANDBOX_SEAT_FROZEN' });
    await svc.resume(id, 's02');
    expect((await svc.driver.exec(box('s02', 'quantize'), { cmd: ['true'] })).exitCode).toBe(0);

    // One seat hands in early: only it is frozen; extending it gives the access back.
    expect((await svc.end(id, 's02')).map((s) => s.state)).toEqual(['frozen']);
    expect(svc.seats(id).map((s) => s.state)).toEqual(['running', 'frozen']);
    expect(svc.session(id).state).toBe('running');
    await expect(svc.driver.exec(box('s02', 'quantize'), { cmd: ['true'] })).rejects.toMatchObject({ code: 'SANDBOX_SEAT_FROZEN' });
    expect((await svc.driver.exec(box('s01', 'quantize'), { cmd: ['true'] })).exitCode).toBe(0);
    await svc.extend(id, 60_000, 's02');
    expect(svc.seat(id, 's02').state).toBe('running');
    expect((await svc.driver.exec(box('s02', 'quantize'), { cmd: ['true'] })).exitCode).toBe(0);
    // Ending a seat that is not working changes nothing; ending the last working seat ends the room.
    await svc.end(id, 's02');
    expect(await svc.end(id, 's02')).toEqual([]);
    expect(svc.session(id).state).toBe('running');
    await svc.end(id, 's01');
    expect(svc.session(id).state).toBe('frozen');
    expect(svc.seats(id).map((s) => s.state)).toEqual(['frozen', 'frozen']);
    expect(dir.seatForCookie(token)?.frozen).toBe(true);
    await expect(svc.driver.exec(box('s01', 'serve'), { cmd: ['true'] })).rejects.toMatchObject({ code: 'SANDBOX_SEAT_FROZEN' });
    // Services keep running for the graders after the freeze.
    expect((await svc.driver.processes(box('s01', 'serve'))).some((p) => p.command.includes('llama-server'))).toBe(true);

    const g = await svc.grade(id);
    expect(g.errors).toEqual([]);
    const rep = svc.writeReport(id);
    expect(rep.seats.map((s) => s.sheet!.totalShown)).toEqual([100, 0]);
    expect(rep.seats.map((s) => s.sheet!.passed)).toEqual([true, false]);
    // Every check has its evidence file.
    expect(rep.seats[0]!.checks.every((c) => c.evidenceFile)).toBe(true);

    // An examiner mark is appended; the derived score changes, the recorded outcome does not.
    svc.mark(id, 's02', 'quantize', 'q4km-types', 'examiner-1', 4, 'appeal upheld (test)');
    const after = svc.report(id);
    expect(after[1]!.sheet!.total).toBeGreaterThan(0);
    expect((svc.db.prepare("SELECT outcome FROM check_results WHERE seat_id = 's02' AND check_id = 'q4km-types'").get() as { outcome: string }).outcome).not.toBe('pass');

    const a = await svc.archive(id);
    expect(verifyManifest(a.dir)).toEqual([]);
    // The printable score sheet is archived with the scores.
    expect(readdirSync(join(a.dir, 'report')).filter((f) => f.startsWith('score'))).toEqual(
      ['score-sheet.html', ...(findChromium() ? ['score-sheet.pdf'] : []), 'scores.csv', 'scores.json'],
    );
    const ws = readdirSync(join(a.dir, 'workspaces'));
    expect(ws).toEqual(['s01', 's02'].flatMap((st) => taskIds.map((t) => `${st}-${t}.tar.gz`)).sort());
    appendFileSync(join(a.dir, 'report', 'scores.csv'), 'tampered\n');
    expect(verifyManifest(a.dir)).toEqual(['report/scores.csv']);

    const cards = (): string[] => readdirSync(svc.sessionDir(id)).filter((f) => f.startsWith('seat-cards'));
    expect(cards().sort()).toEqual(['seat-cards.csv', 'seat-cards.html']);
    const r = await svc.reset(id);
    expect(r.clean).toBe(true);
    // The seat cards were the only copy of the codes in clear: gone with the seats.
    expect(cards()).toEqual([]);
    expect(r.cardsRemoved).toBe(2);
    expect(r.leftovers).toEqual([]);
    expect(r.removed).toBeGreaterThan(0);
    expect(await svc.driver.list({ session: id })).toEqual([]);
    expect(dir.seatForCookie(token)).toBeNull();
    const states = (svc.db.prepare('SELECT event FROM transitions WHERE session_id = ? AND seat_id IS NULL ORDER BY seq').all(id) as { event: string }[]).map((x) => x.event);
    expect(states).toEqual(['open', 'provision', 'provisioned', 'start', 'freeze', 'grade', 'graded', 'archive', 'reset']);
  }, 600_000);
});
