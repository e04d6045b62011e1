import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { drawPaper, SEED_MAX } from '../tasks/bank.js';
import { DeploylabError } from '../core/errors.js';
import { planForTask, type PlanImages } from '../grading/task-runner.js';
import type { SeatPlan, SeatRef } from '../sandbox/driver.js';
import { DEFAULT_TASKS_ROOT, formatProblem, loadBankFile, loadPaperFile, loadTaskTree, type LoadedTask } from '../tasks/loader.js';
import type { Paper } from '../tasks/task-schema.js';

export interface LoadedExamPaper {
  paper: Paper;
  /** In paper order. */
  tasks: LoadedTask[];
}

/**
 * A paper and its tasks. Only problems of this paper and its own tasks stop it: a broken task
 * elsewhere in the tree is not this exam's concern.
 */
export function loadExamPaper(paperId: string, root: string = DEFAULT_TASKS_ROOT, paperFile?: string): LoadedExamPaper {
  const file = paperFile ?? join(root, 'papers', `${paperId}.yaml`);
  if (!existsSync(file)) {
    throw new DeploylabError({
      code: 'PAPER_NOT_FOUND',
      fault: 'config',
      message: { zh: `找不到试卷 ${paperId}（${file}）`, en: `no paper ${paperId} (${file})` },
      hint: { zh: '运行 deploylab tasks list 查看可用试卷', en: 'run deploylab tasks list to see the papers' },
    });
  }
  const tree = loadTaskTree(root);
  const byId = new Map(tree.tasks.map((t) => [t.task.id, t]));
  const r = loadPaperFile(file, byId);
  // The task ids the paper names, read leniently: a paper whose task failed to load is itself
  // invalid, and that task's own problems are the ones the examiner needs to see.
  const paperTasks = new Set(r.paper ? r.paper.paper.tasks : namedTasks(file));
  const mine = tree.problems.filter((p) => p.file !== file && paperTasks.has(taskIdOf(p.file)));
  const problems = [...mine, ...r.problems];
  if (!r.paper || problems.length > 0) {
    const lines = problems.map((p) => formatProblem(p)).join('\n  ');
    throw new DeploylabError({
      code: 'PAPER_INVALID',
      fault: 'config',
      message: { zh: `试卷 ${paperId} 有 ${problems.length} 处问题：\n  ${lines}`, en: `paper ${paperId} has ${problems.length} problem(s):\n  ${lines}` },
      details: { problems },
    });
  }
  return { paper: r.paper.paper, tasks: r.paper.paper.tasks.map((id) => byId.get(id)!) };
}

/** A paper drawn from a bank, written to a file of its own so it is pinned like any other. */
export interface DrawnExamPaper {
  exam: LoadedExamPaper;
  /** The drawn paper as a YAML file (in a temporary folder: `dispose()` removes it). */
  file: string;
  draw: { bank: string; seed: number; bankSha256: string };
  dispose(): void;
}

/**
 * Draw a paper from `<root>/banks/<bankId>.yaml` with `seed`: the bank must be valid (its own
 * problems and those of its tasks stop it), and the drawn paper passes every check a fixed one does.
 */
export function drawExamPaper(bankId: string, seed: number, root: string = DEFAULT_TASKS_ROOT): DrawnExamPaper {
  if (!Number.isInteger(seed) || seed < 1 || seed > SEED_MAX) {
    throw new DeploylabError({ code: 'BAD_FLAG', fault: 'config', message: { zh: `抽题种子必须是 1 到 ${SEED_MAX} 的整数：${seed}`, en: `the draw seed must be an integer from 1 to ${SEED_MAX}: ${seed}` } });
  }
  const file = join(root, 'banks', `${bankId}.yaml`);
  if (!existsSync(file)) {
    throw new DeploylabError({
      code: 'BANK_NOT_FOUND',
      fault: 'config',
      message: { zh: `找不到题库 ${bankId}（${file}）`, en: `no task bank ${bankId} (${file})` },
      hint: { zh: '运行 deploylab tasks list 查看可用题库', en: 'run deploylab tasks list to see the banks' },
    });
  }
  const tree = loadTaskTree(root);
  const byId = new Map(tree.tasks.map((t) => [t.task.id, t]));
  const r = loadBankFile(file, byId);
  const named = new Set(r.bank ? r.bank.bank.slots.flatMap((s) => s.from) : []);
  const problems = [...tree.problems.filter((p) => p.file !== file && named.has(taskIdOf(p.file))), ...r.problems];
  if (!r.bank || problems.length > 0) {
    const lines = problems.map((p) => formatProblem(p)).join('\n  ');
    throw new DeploylabError({
      code: 'BANK_INVALID',
      fault: 'config',
      message: { zh: `题库 ${bankId} 有 ${problems.length} 处问题：\n  ${lines}`, en: `task bank ${bankId} has ${problems.length} problem(s):\n  ${lines}` },
      details: { problems },
    });
  }
  const paper = drawPaper(r.bank.bank, seed);
  const dir = mkdtempSync(join(tmpdir(), 'deploylab-draw-'));
  const dispose = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    const paperFile = join(dir, `${paper.id}.yaml`);
    writeFileSync(paperFile, `# ${paper.title.zh}\n# ${paper.title.en}\n# bank ${bankId}, seed ${seed}\n${toYaml(paper)}`);
    const exam = loadExamPaper(paper.id, root, paperFile);
    const bankSha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
    return { exam, file: paperFile, draw: { bank: bankId, seed, bankSha256 }, dispose };
  } catch (e) {
    dispose();
    throw e;
  }
}

/** The `tasks:` list of a paper file, as written; empty when it cannot be read. */
function namedTasks(file: string): string[] {
  try {
    const doc = parseYaml(readFileSync(file, 'utf8')) as { tasks?: unknown } | null;
    return Array.isArray(doc?.tasks) ? doc.tasks.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

/** The id a problem's task.yaml declares, read leniently; its folder's name when it declares none. */
function taskIdOf(file: string): string {
  const abs = resolve(file);
  try {
    const doc = parseYaml(readFileSync(abs, 'utf8')) as { id?: unknown } | null;
    if (typeof doc?.id === 'string') return doc.id;
  } catch {
    // unreadable or not YAML: fall back to the folder
  }
  return basename(basename(abs) === 'task.yaml' ? dirname(abs) : abs);
}

/**
 * The sandboxes of one candidate's seat: one per task of the paper, because tasks are written to
 * be verified alone (two tasks may both serve on port 8080 or write the same paths). The sandbox
 * of a task is named `<seat>-<task>` and labelled with the candidate's seat.
 */
export interface SeatSandbox {
  taskId: string;
  ref: SeatRef;
}

export function sandboxesOf(sessionId: string, seatId: string, taskIds: readonly string[]): SeatSandbox[] {
  return taskIds.map((taskId) => ({ taskId, ref: { session: sessionId, seat: `${seatId}-${taskId}`.slice(0, 40).replace(/-+$/, '') } }));
}

export function planForSeatTask(task: LoadedTask, ref: SeatRef, seatId: string, images: PlanImages): SeatPlan {
  return planForTask(task.task, ref, images, { 'deploylab.candidate-seat': seatId });
}
