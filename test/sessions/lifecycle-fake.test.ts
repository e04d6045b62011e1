import { randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { parseSeatPlan, type SeatPlan, type SeatRef } from '../../runner/sandbox/driver.js';
import { FakeDriver } from '../../runner/sandbox/fake-driver.js';
import { verifyManifest } from '../../runner/sessions/archive.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import type { RosterEntry } from '../../runner/sessions/roster.js';
import { openStore } from '../../runner/store/db.js';
import { drawPaper } from '../../runner/tasks/bank.js';
import { DEFAULT_TASKS_ROOT, loadTaskTree } from '../../runner/tasks/loader.js';
import { ROSTER } from './helpers.js';

/**
 * The exam lifecycle over the real store and the in-memory driver: no engine, so it runs
 * everywhere. What a real engine adds (processes, the candidate's services) is the session tests'
 * on the local engine; here the store's states and the driver's seats must agree at every step.
 *
 * The paper is a practice one of two tasks whose setup only writes files (quantize, prune): the
 * repo's junior paper runs setup commands, which the in-memory driver rightly refuses.
 */
const PAPER = 'fake-practice';
const TASKS = ['quantize', 'prune'] as const;
const IMAGE = 'deploylab/workspace-cpu:lifecycle';
const MINUTES = 30;

const tasksRoot = mkdtempSync(join(tmpdir(), 'dl-tasks-'));
cpSync(DEFAULT_TASKS_ROOT, tasksRoot, { recursive: true });
writeFileSync(
  join(tasksRoot, 'papers', `${PAPER}.yaml`),
  [`id: ${PAPER}`, 'level: junior', 'title:', '  zh: 内存驱动练习卷', '  en: In-memory driver practice paper', `durationMinutes: ${MINUTES}`, 'practice: true', 'tasks:', ...TASKS.map((t) => `  - ${t}`), ''].join('\n'),
);
const dataDir = mkdtempSync(join(tmpdir(), 'dl-lifecycle-'));

/** Per session id: what the next provision of a seat's sandbox should fail with. */
const faults = new Map<string, (plan: SeatPlan) => DeploylabError | undefined>();
const provisions: { session: string; seat: string }[] = [];
const driver = new FakeDriver({
  images: [IMAGE],
  failProvision: (plan) => {
    provisions.push({ session: plan.session, seat: plan.seat });
    return faults.get(plan.session)?.(plan);
  },
});
let now = Date.now();
const svc = new SessionService({ db: openStore(dataDir), driver, dataDir, now: () => now, hostFree: async () => 1024 ** 4 });

const engineHiccup = (): DeploylabError =>
  new DeploylabError({ code: 'SANDBOX_ENGINE_ERROR', fault: 'infrastructure', message: { zh: '注入的引擎故障', en: 'injected engine hiccup' } });
const imageMissing = (): DeploylabError =>
  new DeploylabError({ code: 'SANDBOX_IMAGE_MISSING', fault: 'infrastructure', message: { zh: '注入：镜像不存在', en: 'injected: image missing' } });

const ROSTER3: RosterEntry[] = [...ROSTER, { line: 3, candidateNo: 'T0003', name: '测试丙', idNumber: '110105194912310054' }];
const open = (id: string, roster: RosterEntry[]): void => {
  svc.open({ id, paperId: PAPER, tasksRoot, room: 'F1', roster, images: { workspaceCpu: IMAGE, toolbox: null }, baseUrl: 'http://127.0.0.1:8700/' });
};
const boxes = (id: string, seat: string): SeatRef[] => svc.sandboxes(id, seat).map((b) => b.ref);
const frozenInDriver = (id: string): boolean[] => driver.held(id).map((r) => driver.inspect(r)!.frozen);
const sessionEvents = (id: string): string[] =>
  (svc.db.prepare('SELECT event FROM transitions WHERE session_id = ? AND seat_id IS NULL ORDER BY seq').all(id) as { event: string }[]).map((x) => x.event);

afterAll(() => {
  svc.db.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(tasksRoot, { recursive: true, force: true });
});

describe('exam lifecycle on the in-memory driver', () => {
  const id = `lf-${randomBytes(3).toString('hex')}`;

  it('provisions every seat; a transient engine error is retried and the seat becomes ready', async () => {
    open(id, ROSTER);
    expect(svc.seats(id).map((s) => s.state)).toEqual(['pending', 'pending']);
    // s02's first sandbox fails once, transiently.
    let hiccups = 0;
    faults.set(id, (plan) => (plan.labels['deploylab.candidate-seat'] === 's02' && hiccups++ === 0 ? engineHiccup() : undefined));
    const r = await svc.provision(id);
    expect(r).toEqual({ ready: ['s01', 's02'], failed: [] });
    expect(svc.session(id).state).toBe('ready');
    expect(svc.seats(id).map((s) => [s.seat_id, s.state, s.last_error])).toEqual([['s01', 'ready', null], ['s02', 'ready', null]]);
    // The store recorded the retry; the driver saw s02's first sandbox twice.
    const attempts = (svc.db.prepare("SELECT data FROM transitions WHERE session_id = ? AND seat_id = 's02' AND event = 'provision' ORDER BY seq").all(id) as { data: string }[]).map((x) => JSON.parse(x.data).attempt);
    expect(attempts).toEqual([0, 1]);
    expect(provisions.filter((p) => p.session === id && p.seat === 's02-quantize')).toHaveLength(2);
    // One sandbox per seat and task, labelled with the candidate's seat, none frozen.
    expect(driver.held(id).map((x) => x.seat).sort()).toEqual(['s01-prune', 's01-quantize', 's02-prune', 's02-quantize']);
    expect(driver.inspect(boxes(id, 's02')[1]!)!.labels.workspace).toMatchObject({ 'deploylab.candidate-seat': 's02', 'deploylab.task': 'prune', 'deploylab.session': id });
    expect(frozenInDriver(id)).toEqual([false, false, false, false]);
    // The task's setup files were written into the sandbox, as the task says.
    const [script] = await driver.readTree(boxes(id, 's01')[1]!, '/opt/exam/prune/prune-layers.sh');
    expect([script!.type, script!.mode & 0o777]).toEqual(['file', 0o755]);
  });

  it('start, pause (sandboxes frozen), resume (thawed), extend', async () => {
    await svc.start(id);
    expect(svc.session(id).state).toBe('running');
    expect(svc.seats(id).map((s) => s.state)).toEqual(['running', 'running']);
    now += 5 * 60_000;
    await svc.pause(id);
    expect(svc.session(id).state).toBe('paused');
    expect(svc.seats(id).map((s) => [s.state, s.used_ms, s.running_since])).toEqual([['paused', 300_000, null], ['paused', 300_000, null]]);
    expect(frozenInDriver(id)).toEqual([true, true, true, true]);
    await expect(driver.exec(boxes(id, 's01')[0]!, { cmd: ['true'] })).rejects.toMatchObject({ code: 'SANDBOX_SEAT_FROZEN' });
    // Paused time is not exam time.
    now += 10 * 60_000;
    await svc.resume(id);
    expect(svc.session(id).state).toBe('running');
    expect(svc.seats(id).map((s) => [s.state, s.used_ms, s.running_since])).toEqual([['running', 300_000, now], ['running', 300_000, now]]);
    expect(frozenInDriver(id)).toEqual([false, false, false, false]);
    await svc.extend(id, 10 * 60_000);
    expect(svc.seats(id).map((s) => s.allowed_ms)).toEqual([(MINUTES + 10) * 60_000, (MINUTES + 10) * 60_000]);
    expect(svc.session(id).state).toBe('running');
  });

  it('a tick before the end changes nothing; one past it freezes every seat and the room', async () => {
    now += 60_000;
    expect(await svc.tick(id)).toBe('running');
    expect(frozenInDriver(id)).toEqual([false, false, false, false]);
    // 40 minutes allowed, 6 used: 34 more and a second.
    now += 34 * 60_000 + 1000;
    expect(await svc.tick(id)).toBe('frozen');
    expect(svc.session(id).state).toBe('frozen');
    expect(svc.seats(id).map((s) => [s.state, s.used_ms, s.running_since])).toEqual([['frozen', 40 * 60_000 + 1000, null], ['frozen', 40 * 60_000 + 1000, null]]);
    expect(frozenInDriver(id)).toEqual([true, true, true, true]);
  });

  it('reconcile refreezes a sandbox thawed behind the service and removes one the store does not know', async () => {
    const thawed = boxes(id, 's01')[0]!;
    await driver.thaw(thawed);
    expect(driver.inspect(thawed)!.frozen).toBe(false);
    await driver.provision(parseSeatPlan({ session: id, seat: 'zz-orphan', task: 'quantize', workspace: { image: IMAGE } }));
    const r = await svc.reconcile(id);
    expect(r).toEqual({ refrozen: [thawed.seat], thawed: [], orphans: ['zz-orphan'], missing: [] });
    expect(driver.inspect(thawed)!.frozen).toBe(true);
    expect(driver.inspect({ session: id, seat: 'zz-orphan' })).toBeUndefined();
    expect(driver.held(id)).toHaveLength(4);
    // In line now: a second pass has nothing to do.
    expect(await svc.reconcile(id)).toEqual({ refrozen: [], thawed: [], orphans: [], missing: [] });
  });

  it('report() before grading: every seat listed, none with a run or a score', () => {
    const rep = svc.report(id);
    expect(rep.map((s) => [s.seat, s.state, s.runId, s.sheet, s.checks.length])).toEqual([['s01', 'frozen', null, null, 0], ['s02', 'frozen', null, null, 0]]);
  });

  it('grade() completes on file evidence alone and gives an untouched seat no points', async () => {
    const g = await svc.grade(id, { concurrency: 1 });
    expect(g).toEqual({ graded: ['s01', 's02'], errors: [] });
    expect(svc.session(id).state).toBe('graded');
    const rows = svc.db.prepare('SELECT seat_id, task_id, check_id, outcome, earned FROM check_results WHERE session_id = ?').all(id) as { seat_id: string; outcome: string; earned: number }[];
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((r) => r.seat_id))).toEqual(new Set(['s01', 's02']));
    // Nothing was produced in the seats: every check fails, is blocked, or could not be judged; none earns anything.
    expect(rows.filter((r) => !['fail', 'blocked', 'error'].includes(r.outcome) || r.earned > 0)).toEqual([]);
    // No toolbox and no processes here: the model-loading checks cannot be judged (`error`, re-gradable),
    // which leaves both runs incomplete rather than complete.
    expect(new Set(rows.filter((r) => r.outcome === 'error').map((r) => r.seat_id))).toEqual(new Set(['s01', 's02']));
    const runs = svc.db.prepare('SELECT r.seat_id, e.status FROM grading_runs r JOIN grading_run_ends e ON e.run_id = r.id WHERE r.session_id = ? ORDER BY r.id').all(id) as { seat_id: string; status: string }[];
    expect(runs.map((r) => [r.seat_id, r.status])).toEqual([['s01', 'incomplete'], ['s02', 'incomplete']]);
    const rep = svc.report(id);
    expect(rep.map((s) => [s.sheet?.total, s.sheet?.complete])).toEqual([[0, false], [0, false]]);
  });

  it('archive writes evidence of every sandbox and a manifest that verifyManifest accepts (and a tampered file fails)', async () => {
    const a = await svc.archive(id);
    expect(svc.session(id).state).toBe('archived');
    expect(readdirSync(join(a.dir, 'workspaces')).sort()).toEqual(['s01-prune.tar.gz', 's01-quantize.tar.gz', 's02-prune.tar.gz', 's02-quantize.tar.gz']);
    expect(verifyManifest(a.dir)).toEqual([]);
    appendFileSync(join(a.dir, 'ledger', 'seats.jsonl'), 'tampered\n');
    expect(verifyManifest(a.dir)).toEqual(['ledger/seats.jsonl']);
  });

  it('reset removes every sandbox of the session and proves it clean', async () => {
    const r = await svc.reset(id);
    expect(r.clean).toBe(true);
    expect(r.leftovers).toEqual([]);
    // Four sandboxes, one container each.
    expect(r.removed).toBe(4);
    expect(await driver.list({ session: id })).toEqual([]);
    expect(driver.held(id)).toEqual([]);
    expect(svc.seats(id).map((s) => s.state)).toEqual(['removed', 'removed']);
    expect(sessionEvents(id)).toEqual(['open', 'provision', 'provisioned', 'start', 'pause', 'resume', 'extend', 'freeze', 'grade', 'graded', 'archive', 'reset']);
  });
});

describe('a seat whose sandbox cannot be made', () => {
  const id = `lf-${randomBytes(3).toString('hex')}`;

  it('a permanent error is not retried: the seat ends failed with its error stored, nothing of it left, the room not ready', async () => {
    open(id, ROSTER3);
    faults.set(id, (plan) => (plan.labels['deploylab.candidate-seat'] === 's03' ? imageMissing() : undefined));
    const r = await svc.provision(id);
    expect(r.ready).toEqual(['s01', 's02']);
    expect(r.failed).toEqual([{ seat: 's03', error: 'SANDBOX_IMAGE_MISSING: injected: image missing' }]);
    expect(svc.seat(id, 's03')).toMatchObject({ state: 'failed', last_error: 'SANDBOX_IMAGE_MISSING: injected: image missing' });
    expect(provisions.filter((p) => p.session === id && p.seat.startsWith('s03-'))).toHaveLength(1);
    expect(driver.held(id).map((x) => x.seat).sort()).toEqual(['s01-prune', 's01-quantize', 's02-prune', 's02-quantize']);
    expect(svc.session(id).state).toBe('provisioning');
    await expect(svc.start(id)).rejects.toMatchObject({ code: 'SESSION_ILLEGAL_TRANSITION' });
  });

  it('once the cause is fixed, provisioning again makes only the failed seat and the room is ready', async () => {
    faults.delete(id);
    const before = provisions.length;
    expect(await svc.provision(id)).toEqual({ ready: ['s01', 's02', 's03'], failed: [] });
    expect(provisions.slice(before).map((p) => p.seat)).toEqual(['s03-quantize', 's03-prune']);
    expect(svc.seat(id, 's03')).toMatchObject({ state: 'ready', last_error: null });
    expect(svc.session(id).state).toBe('ready');
    expect(driver.held(id)).toHaveLength(6);
    const r = await svc.reset(id, { force: true });
    expect([r.clean, r.removed]).toEqual([true, 6]);
    expect(await driver.list({ session: id })).toEqual([]);
  });
});

describe('a reset whose sweep misses something', () => {
  const id = `lf-${randomBytes(3).toString('hex')}`;

  it('is reported unclean, naming what the engine still holds: the report reads the engine, not the sweep', async () => {
    // The same driver, except that its sweep removes nothing and says so.
    const lazySweep = new Proxy(driver, { get: (t, p) => (p === 'sweep' ? async () => [] : (Reflect.get(t, p, t) as unknown)) });
    const leaky = new SessionService({ db: svc.db, driver: lazySweep, dataDir, now: () => now, hostFree: async () => 1024 ** 4 });
    open(id, ROSTER);
    expect(await leaky.provision(id)).toEqual({ ready: ['s01', 's02'], failed: [] });
    const r = await leaky.reset(id, { force: true });
    expect([r.clean, r.removed]).toEqual([false, 0]);
    expect(r.leftovers.map((l) => l.kind)).toEqual(['container', 'container', 'container', 'container']);
    expect(r.leftovers.map((l) => l.name).join(' ')).toContain('s01-quantize');
    // The real sweep then leaves it clean.
    await driver.sweep({ session: id });
    expect((await svc.verifyClean(id)).clean).toBe(true);
  });
});

describe('a room the host disk cannot hold', () => {
  it('is refused by the disk reserve check before anything is stored, naming what it needs', async () => {
    const small = new SessionService({ db: svc.db, driver, dataDir, now: () => now, hostFree: async () => 2 * 1024 ** 3, disk: { ...svc.disk, seatQuotaMiB: 4096, reserveGiB: 1 } });
    const e = await small.checkDiskReserve(ROSTER.length).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DeploylabError);
    expect((e as DeploylabError).code).toBe('HOST_DISK_RESERVE');
    expect((e as DeploylabError).message).toMatch(/2\.0 GiB free, not enough for 2 seat\(s\) at 4096 MiB each plus the 1 GiB reserve: 9\.0 GiB needed/);
    // Room enough: it passes.
    await expect(svc.checkDiskReserve(ROSTER.length)).resolves.toBeUndefined();
  });

  it('a paper drawn from the bank: the seed is recorded, the drawn paper pinned and graded from, the same seed draws it again', () => {
    const base = { tasksRoot, room: 'F2', roster: ROSTER, images: { workspaceCpu: IMAGE, toolbox: null }, baseUrl: 'http://127.0.0.1:8700/' };
    const drawnTmp = (): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith('deploylab-draw-'));
    const before = drawnTmp();
    const id = `draw-${randomBytes(3).toString('hex')}`;
    const opened = svc.open({ ...base, id, draw: { bank: 'junior', seed: 4217 } });
    expect(opened.session.paper_id).toBe('junior-draw-004217');
    const spec = svc.spec(id);
    expect(spec.draw).toMatchObject({ bank: 'junior', seed: 4217 });
    expect(spec.draw!.bankSha256).toMatch(/^[0-9a-f]{64}$/);
    const bank = loadTaskTree(tasksRoot).banks.find((b) => b.bank.id === 'junior')!.bank;
    expect(spec.tasks).toEqual(drawPaper(bank, 4217).tasks);
    expect(svc.paper(id).tasks.map((t) => t.task.id)).toEqual(spec.tasks);
    // The paper file is only in the session's pinned copy; the draw's scratch folder is gone.
    expect(readdirSync(join(dataDir, 'sessions', id, 'pinned-tasks', 'papers'))).toEqual(['junior-draw-004217.yaml']);
    expect(drawnTmp()).toEqual(before);
    const again = `draw-${randomBytes(3).toString('hex')}`;
    svc.open({ ...base, id: again, draw: { bank: 'junior', seed: 4217 } });
    expect(svc.spec(again).tasks).toEqual(spec.tasks);
    // Without a seed one is drawn and recorded; a fixed paper records none.
    const random = `draw-${randomBytes(3).toString('hex')}`;
    svc.open({ ...base, id: random, draw: { bank: 'junior' } });
    const seed = svc.spec(random).draw!.seed;
    expect(svc.session(random).paper_id).toBe(`junior-draw-${String(seed).padStart(6, '0')}`);
    expect(svc.spec(random).tasks).toEqual(drawPaper(bank, seed).tasks);
    const fixed = `draw-${randomBytes(3).toString('hex')}`;
    svc.open({ ...base, id: fixed, paperId: PAPER });
    expect(svc.spec(fixed).draw).toBeNull();
    // Both or neither, an unknown bank, a seed out of range: refused before anything is stored.
    const refused = (o: object): unknown => {
      try {
        svc.open({ ...base, id: 'never-opened', ...o });
      } catch (e) {
        return (e as DeploylabError).code;
      }
      return 'opened';
    };
    expect(refused({ paperId: PAPER, draw: { bank: 'junior' } })).toBe('BAD_FLAG');
    expect(refused({})).toBe('BAD_FLAG');
    expect(refused({ draw: { bank: 'nosuch' } })).toBe('BANK_NOT_FOUND');
    expect(refused({ draw: { bank: 'junior', seed: 0 } })).toBe('BAD_FLAG');
    expect(svc.list().map((x) => x.id)).not.toContain('never-opened');
  });
});
