import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { FakeDriver } from '../../runner/sandbox/fake-driver.js';
import { folderSha256, PINNED_DIR, pinnedTasksRoot } from '../../runner/sessions/pinned-tasks.js';
import { SeatDirectory } from '../../runner/sessions/seat-directory.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import { openStore } from '../../runner/store/db.js';
import { DEFAULT_TASKS_ROOT } from '../../runner/tasks/loader.js';
import { DirectoryAccess } from '../../runner/web/directory-access.js';
import { ROSTER } from './helpers.js';

/**
 * A session grades exactly what it opened with. Tasks edited on disk after `open` are reported
 * and never used; the pinned copy itself altered stops grading. Over the in-memory driver: the
 * question is which task content the ledger records, not what a seat holds.
 */
const PAPER = 'pin-practice';
const IMAGE = 'deploylab/workspace-cpu:pin';
const tasksRoot = mkdtempSync(join(tmpdir(), 'dl-pin-tasks-'));
cpSync(DEFAULT_TASKS_ROOT, tasksRoot, { recursive: true });
writeFileSync(
  join(tasksRoot, 'papers', `${PAPER}.yaml`),
  ['id: pin-practice', 'level: junior', 'title:', '  zh: 固定试题练习卷', '  en: Pinned tasks practice paper', 'durationMinutes: 30', 'practice: true', 'tasks:', '  - quantize', '  - prune', ''].join('\n'),
);
const dataDir = mkdtempSync(join(tmpdir(), 'dl-pin-'));
const driver = new FakeDriver({ images: [IMAGE] });
const svc = new SessionService({ db: openStore(dataDir), driver, dataDir, hostFree: async () => 1024 ** 4 });

afterAll(() => {
  svc.db.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(tasksRoot, { recursive: true, force: true });
});

const open = (id: string): void => {
  svc.open({ id, paperId: PAPER, tasksRoot, room: 'P1', roster: ROSTER.slice(0, 1), images: { workspaceCpu: IMAGE, toolbox: null }, baseUrl: 'http://127.0.0.1:8700/' });
};
const toFrozen = async (id: string): Promise<void> => {
  await svc.provision(id);
  await svc.start(id);
  await svc.end(id);
};
const runPoints = (id: string, check: string): number[] =>
  (svc.db.prepare('SELECT points FROM check_results WHERE session_id = ? AND task_id = ? AND check_id = ?').all(id, 'prune', check) as { points: number }[]).map((r) => r.points);

describe('a session pins the tasks it examines', () => {
  it('an edit on disk after open is reported, and grading uses the copy hashed at open', async () => {
    const id = `pin-${randomBytes(3).toString('hex')}`;
    open(id);
    const spec = svc.spec(id);
    const pruneDir = join(tasksRoot, 'junior', 'prune');
    expect(spec.pinned?.hashes.prune).toBe(folderSha256(pruneDir));
    expect(svc.taskDrift(id)).toEqual([]);

    // The task's author changes a check's weight after the room opened.
    const yaml = join(pruneDir, 'task.yaml');
    const original = readFileSync(yaml, 'utf8');
    expect(original).toMatch(/- id: block-count\n(?:.*\n){4}\s+points: 3\n/);
    writeFileSync(yaml, original.replace(/(- id: block-count\n(?:.*\n){4}\s+points: )3\n/, '$17\n'));
    const drift = svc.taskDrift(id);
    expect(drift.map((d) => d.taskId)).toEqual(['prune']);
    expect(drift[0]!.pinned).toBe(spec.pinned!.hashes.prune);
    expect(drift[0]!.onDisk).toBe(folderSha256(pruneDir));

    await toFrozen(id);
    await svc.grade(id);
    // Graded at the pinned weight, and the run says which content it graded.
    expect(runPoints(id, 'block-count')).toEqual([3]);
    const run = svc.db.prepare('SELECT task_hashes FROM grading_runs WHERE session_id = ?').get(id) as { task_hashes: string };
    expect(JSON.parse(run.task_hashes)).toEqual(spec.pinned!.hashes);
    const written = svc.writeReport(id);
    const scores = JSON.parse(readFileSync(written.json, 'utf8')) as { tasks: { pinned: Record<string, string>; changedOnDisk: { taskId: string }[] } };
    expect(scores.tasks.pinned).toEqual(spec.pinned!.hashes);
    expect(scores.tasks.changedOnDisk.map((d) => d.taskId)).toEqual(['prune']);

    // A session opened now pins the new weight.
    const later = `pin-${randomBytes(3).toString('hex')}`;
    open(later);
    expect(svc.taskDrift(later)).toEqual([]);
    await toFrozen(later);
    await svc.grade(later);
    expect(runPoints(later, 'block-count')).toEqual([7]);
    writeFileSync(yaml, original);
  });

  it("the candidate's task sheet is the pinned one, not the task as edited on disk", async () => {
    const id = `pin-${randomBytes(3).toString('hex')}`;
    open(id);
    const yaml = join(tasksRoot, 'junior', 'quantize', 'task.yaml');
    const original = readFileSync(yaml, 'utf8');
    const title = /\n {2}zh: (.+)\n/.exec(original)![1]!;
    writeFileSync(yaml, original.replace(`  zh: ${title}\n`, '  zh: 改过的标题\n'));
    try {
      const access = new DirectoryAccess(new SeatDirectory(svc.db), (session) => pinnedTasksRoot(svc.spec(session), svc.sessionDir(session)));
      const sandboxes = svc.sandboxes(id, 's01').map((b) => ({ taskId: b.taskId, ref: b.ref }));
      const sheets = await access.taskSheets({ session: id, seat: 's01', candidate: '', endsAt: null, sandboxes });
      expect(sheets.map((x) => x.id)).toEqual(['quantize', 'prune']);
      expect(sheets[0]!.title.zh).toBe(title);
      // The same access over the tasks on disk shows the edit: the test can tell them apart.
      const onDisk = await new DirectoryAccess(new SeatDirectory(svc.db), tasksRoot).taskSheets({ session: id, seat: 's01', candidate: '', endsAt: null, sandboxes });
      expect(onDisk[0]!.title.zh).toBe('改过的标题');
    } finally {
      writeFileSync(yaml, original);
    }
  });

  it('the pinned copy itself altered: grading refuses with a code and records no run', async () => {
    const id = `pin-${randomBytes(3).toString('hex')}`;
    open(id);
    await toFrozen(id);
    const pinnedYaml = join(svc.sessionDir(id), PINNED_DIR, 'junior', 'quantize', 'task.yaml');
    writeFileSync(pinnedYaml, readFileSync(pinnedYaml, 'utf8') + '\n# edited\n');
    const e = await svc.grade(id).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(DeploylabError);
    expect((e as DeploylabError).code).toBe('SESSION_PINNED_TASKS_ALTERED');
    expect(svc.db.prepare('SELECT count(*) AS n FROM grading_runs WHERE session_id = ?').get(id)).toEqual({ n: 0 });
    expect(svc.session(id).state).toBe('frozen');
  });
});
