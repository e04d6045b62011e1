import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { ZodType } from 'zod';
import { DeploylabError } from '../core/errors.js';
import { detailedIssuesOf, formatPath } from '../core/validation.js';
import { FUNCTION_CODES, LEVELS, findSkill, functionOfSkill, loadCatalogue, skillsOf, type Catalogue, type FunctionCode, type Level } from './catalogue.js';
import { BankSchema, PaperSchema, TaskSchema, type Bank, type Paper, type Task } from './task-schema.js';

/** One thing wrong with a task or paper file. All of them are gathered before anything is reported. */
export interface Problem {
  /** Stable code, e.g. TASK_SCHEMA, TASK_UNKNOWN_SKILL, PAPER_FUNCTION_UNCOVERED. */
  code: string;
  file: string;
  /** Path inside the file, e.g. checks[2].probe.kind; "(root)" or "(file)" for the whole file. */
  path: string;
  line?: number;
  problem: string;
  found?: string;
  expected?: string;
}

export interface LoadedTask {
  dir: string;
  task: Task;
  instructions: { zh: string; en: string };
}

export interface LoadedPaper {
  file: string;
  paper: Paper;
}

export interface LoadedBank {
  file: string;
  bank: Bank;
}

export const DEFAULT_TASKS_ROOT = fileURLToPath(new URL('../../tasks/', import.meta.url));

interface YamlFile {
  doc?: Document;
  lines?: LineCounter;
  value?: unknown;
}

function readYaml(file: string, problems: Problem[]): YamlFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    problems.push({ code: 'TASK_MISSING_FILE', file, path: '(file)', problem: 'file is missing or unreadable', expected: 'a YAML file' });
    return {};
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = lines.linePos(e.pos[0]);
      problems.push({ code: 'YAML_SYNTAX', file, path: '(file)', line: pos.line, problem: `YAML syntax: ${e.message.split('\n')[0]}` });
    }
    return {};
  }
  return { doc, lines, value: doc.toJS() };
}

/** Line of the deepest node that exists along `path`. */
function lineOf(y: YamlFile, path: readonly PropertyKey[]): number | undefined {
  if (!y.doc || !y.lines) return undefined;
  for (let n = path.length; n >= 0; n--) {
    const node = y.doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return y.lines.linePos(node.range[0]).line;
  }
  return undefined;
}

function schemaProblems(schema: ZodType, y: YamlFile, file: string, code: string, problems: Problem[]): unknown {
  const r = schema.safeParse(y.value);
  if (r.success) return r.data;
  for (const i of detailedIssuesOf(r.error, file, y.value)) {
    const line = lineOf(y, i.rawPath);
    problems.push({
      code,
      file,
      path: i.path,
      ...(line !== undefined ? { line } : {}),
      problem: i.problem,
      ...(i.found !== undefined ? { found: i.found } : {}),
      ...(i.expected !== undefined ? { expected: i.expected } : {}),
    });
  }
  return undefined;
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isLevel = (v: unknown): v is Level => typeof v === 'string' && (LEVELS as readonly string[]).includes(v);

/** Cycles among dependsOn, each reported once as a → b → a. */
export function findCycles(edges: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const seen = new Set<string>();
  const visit = (n: string): void => {
    state.set(n, 'visiting');
    stack.push(n);
    for (const m of edges.get(n) ?? []) {
      if (!edges.has(m)) continue;
      if (state.get(m) === 'visiting') {
        const cyc = [...stack.slice(stack.indexOf(m)), m];
        const key = [...cyc.slice(0, -1)].sort().join(',');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(cyc);
        }
      } else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of edges.keys()) if (!state.has(n)) visit(n);
  return cycles;
}

/**
 * Read and check one task folder. Cross-checks run on the raw document too, so a schema error
 * elsewhere in the file does not hide an unknown skill code or a dependsOn cycle.
 */
/** A reporter of problems at a path of one YAML file, with the line it is on. */
function problemAt(y: YamlFile, file: string, problems: Problem[]): (code: string, path: PropertyKey[], problem: string, extra?: Partial<Problem>) => void {
  return (code, path, problem, extra = {}) => {
    const line = lineOf(y, path);
    problems.push({ code, file, path: formatPath(path), ...(line !== undefined ? { line } : {}), problem, ...extra });
  };
}

export function loadTaskDir(dir: string, catalogue: Catalogue = loadCatalogue()): { task?: LoadedTask; problems: Problem[] } {
  const problems: Problem[] = [];
  const file = join(dir, 'task.yaml');
  const y = readYaml(file, problems);
  const parsed = y.value === undefined ? undefined : (schemaProblems(TaskSchema, y, file, 'TASK_SCHEMA', problems) as Task | undefined);
  const raw = isObj(y.value) ? y.value : undefined;
  const at = problemAt(y, file, problems);

  const folderLevel = basename(dirname(resolve(dir)));
  if (raw) {
    if (typeof raw.id === 'string' && raw.id !== basename(resolve(dir))) {
      at('TASK_ID_MISMATCH', ['id'], 'id differs from the folder name', { found: raw.id, expected: basename(resolve(dir)) });
    }
    if (isLevel(raw.level) && isLevel(folderLevel) && raw.level !== folderLevel) {
      at('TASK_LEVEL_MISMATCH', ['level'], 'level differs from the folder the task sits in', { found: raw.level, expected: folderLevel });
    }
    const level = isLevel(raw.level) ? raw.level : isLevel(folderLevel) ? folderLevel : undefined;
    const checks = Array.isArray(raw.checks) ? raw.checks : [];
    const ids = new Map<string, number>();
    checks.forEach((c, i) => {
      if (!isObj(c)) return;
      if (typeof c.id === 'string') {
        if (ids.has(c.id)) at('TASK_DUPLICATE_CHECK', ['checks', i, 'id'], `check id ${c.id} is used twice`, { found: c.id });
        else ids.set(c.id, i);
      }
      if (level && typeof c.skill === 'string' && /^[1-4]\.\d\.\d$/.test(c.skill) && !findSkill(catalogue, level, c.skill)) {
        const elsewhere = LEVELS.filter((l) => findSkill(catalogue, l, c.skill as string));
        at('TASK_UNKNOWN_SKILL', ['checks', i, 'skill'], `no skill item ${c.skill} at level ${level}${elsewhere.length ? ` (it exists at ${elsewhere.join(', ')})` : ''}`, {
          found: c.skill,
          expected: `a skill code of ${level}: ${skillsOf(catalogue, level).map((s) => s.code).join(', ')}`,
        });
      }
    });
    const edges = new Map<string, string[]>();
    checks.forEach((c, i) => {
      if (!isObj(c) || typeof c.id !== 'string') return;
      const deps = Array.isArray(c.dependsOn) ? c.dependsOn.filter((d): d is string => typeof d === 'string') : [];
      edges.set(c.id, deps);
      deps.forEach((d, j) => {
        if (!ids.has(d)) at('TASK_DEPENDS_UNKNOWN', ['checks', i, 'dependsOn', j], `dependsOn names no check of this task`, { found: d, expected: `one of ${[...ids.keys()].join(', ')}` });
      });
    });
    for (const cyc of findCycles(edges)) {
      const i = ids.get(cyc[0]!) ?? 0;
      at('TASK_DEPENDS_CYCLE', ['checks', i, 'dependsOn'], `dependsOn cycle: ${cyc.join(' → ')}`, { found: cyc.join(' → '), expected: 'no cycles' });
    }
    // Files the task refers to.
    const setup = isObj(raw.setup) ? raw.setup : {};
    const files = Array.isArray(setup.files) ? setup.files : [];
    files.forEach((f, i) => {
      if (isObj(f) && typeof f.from === 'string' && !existsSync(join(dir, 'setup', f.from))) {
        at('TASK_MISSING_FILE', ['setup', 'files', i, 'from'], 'setup file is missing', { found: f.from, expected: `a file at setup/${f.from} in the task folder` });
      }
    });
    const faults = Array.isArray(setup.faults) ? setup.faults : [];
    faults.forEach((f, i) => {
      if (isObj(f) && f.kind === 'replace-file' && typeof f.from === 'string' && !existsSync(join(dir, 'setup', f.from))) {
        at('TASK_MISSING_FILE', ['setup', 'faults', i, 'from'], 'fault file is missing', { found: f.from, expected: `a file at setup/${f.from} in the task folder` });
      }
    });
    const proof = isObj(raw.selfProof) ? raw.selfProof : {};
    for (const [key, folder] of [['tampers', 'tampers'], ['alternatives', 'alternatives']] as const) {
      const list = Array.isArray(proof[key]) ? proof[key] : [];
      list.forEach((t, i) => {
        if (!isObj(t)) return;
        if (typeof t.script === 'string' && !existsSync(join(dir, folder, t.script))) {
          at('TASK_MISSING_FILE', ['selfProof', key, i, 'script'], `${key === 'tampers' ? 'tamper' : 'alternative'} script is missing`, { found: t.script, expected: `a file at ${folder}/${t.script} in the task folder` });
        }
        const named = Array.isArray(t.mustNotPass) ? t.mustNotPass : [];
        named.forEach((c, j) => {
          if (typeof c === 'string' && !ids.has(c)) at('TASK_DEPENDS_UNKNOWN', ['selfProof', key, i, 'mustNotPass', j], 'mustNotPass names no check of this task', { found: c, expected: `one of ${[...ids.keys()].join(', ')}` });
        });
      });
    }
    const solution = isObj(raw.solution) ? raw.solution : {};
    const scripts = Array.isArray(solution.scripts) ? solution.scripts : [];
    scripts.forEach((s, i) => {
      if (typeof s === 'string' && !existsSync(join(dir, 'solution', s))) {
        at('TASK_MISSING_FILE', ['solution', 'scripts', i], 'solution script is missing', { found: s, expected: `a file at solution/${s} in the task folder` });
      }
    });
  }
  const instructions = { zh: '', en: '' };
  for (const lang of ['zh', 'en'] as const) {
    const f = join(dir, `instructions.${lang}.md`);
    if (!existsSync(f)) {
      problems.push({ code: 'TASK_MISSING_FILE', file: f, path: '(file)', problem: `instructions (${lang}) missing`, expected: `instructions.${lang}.md beside task.yaml` });
    } else {
      instructions[lang] = readFileSync(f, 'utf8');
      if (instructions[lang].trim() === '') problems.push({ code: 'TASK_MISSING_FILE', file: f, path: '(file)', problem: `instructions (${lang}) empty` });
    }
  }
  if (parsed && problems.length === 0) return { task: { dir, task: parsed, instructions }, problems };
  return { problems };
}

/**
 * Points each occupational function carries in a set of tasks. A paper that leaves a function at
 * zero is refused for a real exam (PAPER_FUNCTION_UNCOVERED); see tasks/README.md.
 */
export function pointsByFunction(tasks: readonly Task[]): Record<FunctionCode, number> {
  const out: Record<FunctionCode, number> = { '1': 0, '2': 0, '3': 0, '4': 0 };
  for (const t of tasks) for (const c of t.checks) out[functionOfSkill(c.skill)] += c.points;
  return out;
}

export function loadPaperFile(
  file: string,
  tasks: ReadonlyMap<string, LoadedTask>,
  catalogue: Catalogue = loadCatalogue(),
): { paper?: LoadedPaper; problems: Problem[] } {
  const problems: Problem[] = [];
  const y = readYaml(file, problems);
  const paper = y.value === undefined ? undefined : (schemaProblems(PaperSchema, y, file, 'PAPER_SCHEMA', problems) as Paper | undefined);
  const at = problemAt(y, file, problems);
  if (!paper) return { problems };
  const stem = basename(file).replace(/\.ya?ml$/, '');
  if (paper.id !== stem) at('PAPER_ID_MISMATCH', ['id'], 'id differs from the file name', { found: paper.id, expected: stem });
  const min = catalogue.exam.practicalMinMinutes[paper.level];
  if (!paper.practice && paper.durationMinutes < min) {
    at('PAPER_DURATION_SHORT', ['durationMinutes'], `the standard (1.5.5) requires at least ${min} minutes at ${paper.level}`, {
      found: String(paper.durationMinutes),
      expected: `>= ${min}`,
    });
  }
  const inPaper: Task[] = [];
  const seen = new Set<string>();
  paper.tasks.forEach((id, i) => {
    if (seen.has(id)) at('PAPER_DUPLICATE_TASK', ['tasks', i], `task ${id} is listed twice`, { found: id });
    seen.add(id);
    const t = tasks.get(id);
    if (!t) {
      at('PAPER_UNKNOWN_TASK', ['tasks', i], 'no valid task with this id', { found: id, expected: `one of ${[...tasks.keys()].join(', ') || '(none)'}` });
      return;
    }
    if (t.task.level !== paper.level) {
      at('PAPER_LEVEL_MISMATCH', ['tasks', i], `task ${id} is a ${t.task.level} task`, { found: t.task.level, expected: paper.level });
      return;
    }
    inPaper.push(t.task);
  });
  const points = pointsByFunction(inPaper);
  if (!paper.practice) {
    for (const f of FUNCTION_CODES) {
      if (points[f] === 0) {
        const fn = catalogue.functions.find((x) => x.code === f)!;
        at('PAPER_FUNCTION_UNCOVERED', ['tasks'], `no check of this paper evidences function ${f} ${fn.zh} (${fn.en}); its weight ${catalogue.weights.practical[paper.level][f]}% could not be earned`, {
          found: '0 points',
          expected: 'at least one check per occupational function, or practice: true',
        });
      }
    }
  }
  return problems.length === 0 ? { paper: { file, paper }, problems } : { problems };
}

export interface TaskTree {
  tasks: LoadedTask[];
  papers: LoadedPaper[];
  banks: LoadedBank[];
  problems: Problem[];
}

/**
 * A task bank (tasks/banks/<id>.yaml): its tasks exist at its level, no task sits in two slots, a
 * slot picks no more than it holds, and every task of a slot has points in the slot's function,
 * so that every paper drawn from it covers every occupational function (1.5.5's minutes too).
 */
export function loadBankFile(
  file: string,
  tasks: ReadonlyMap<string, LoadedTask>,
  catalogue: Catalogue = loadCatalogue(),
): { bank?: LoadedBank; problems: Problem[] } {
  const problems: Problem[] = [];
  const y = readYaml(file, problems);
  const bank = y.value === undefined ? undefined : (schemaProblems(BankSchema, y, file, 'BANK_SCHEMA', problems) as Bank | undefined);
  const at = problemAt(y, file, problems);
  if (!bank) return { problems };
  const stem = basename(file).replace(/\.ya?ml$/, '');
  if (bank.id !== stem) at('BANK_ID_MISMATCH', ['id'], 'id differs from the file name', { found: bank.id, expected: stem });
  const min = catalogue.exam.practicalMinMinutes[bank.level];
  if (bank.durationMinutes < min) {
    at('BANK_DURATION_SHORT', ['durationMinutes'], `the standard (1.5.5) requires at least ${min} minutes at ${bank.level}`, { found: String(bank.durationMinutes), expected: `>= ${min}` });
  }
  const seen = new Set<string>();
  bank.slots.forEach((slot, i) => {
    if (slot.pick > slot.from.length) {
      at('BANK_PICK_TOO_MANY', ['slots', i, 'pick'], `the slot picks ${slot.pick} of ${slot.from.length} tasks`, { found: String(slot.pick), expected: `<= ${slot.from.length}` });
    }
    slot.from.forEach((id, j) => {
      const where = ['slots', i, 'from', j];
      if (seen.has(id)) at('BANK_DUPLICATE_TASK', where, `task ${id} is in the bank twice: a draw could take it twice`, { found: id });
      seen.add(id);
      const t = tasks.get(id);
      if (!t) {
        at('BANK_UNKNOWN_TASK', where, 'no valid task with this id', { found: id });
        return;
      }
      if (t.task.level !== bank.level) {
        at('BANK_LEVEL_MISMATCH', where, `task ${id} is a ${t.task.level} task`, { found: t.task.level, expected: bank.level });
        return;
      }
      const pts = pointsByFunction([t.task])[slot.function];
      if (pts === 0) {
        at('BANK_SLOT_FUNCTION', where, `task ${id} has no check in function ${slot.function}: a draw of it would not evidence the slot's function`, { found: '0 points', expected: `points in function ${slot.function}` });
      }
    });
  });
  for (const f of FUNCTION_CODES) {
    if (!bank.slots.some((s) => s.function === f)) {
      const fn = catalogue.functions.find((x) => x.code === f)!;
      at('BANK_FUNCTION_UNCOVERED', ['slots'], `no slot draws a task of function ${f} ${fn.zh} (${fn.en})`, { expected: 'one slot per occupational function at least' });
    }
  }
  return problems.length === 0 ? { bank: { file, bank }, problems } : { problems };
}

export function discoverBankFiles(root: string): string[] {
  return yamlFilesIn(join(root, 'banks'));
}

/** Task folders under <root>/<level>/ (any sub-folder is meant to be a task). */
export function discoverTaskDirs(root: string): string[] {
  const dirs: string[] = [];
  for (const level of LEVELS) {
    const d = join(root, level);
    if (!existsSync(d)) continue;
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) dirs.push(join(d, e.name));
  }
  return dirs.sort();
}

/** The YAML files directly in a folder, sorted; none when it is absent. */
function yamlFilesIn(d: string): string[] {
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(d, f))
    .sort();
}

export function discoverPaperFiles(root: string): string[] {
  return yamlFilesIn(join(root, 'papers'));
}

/** Every task and paper under a root, with every problem found. */
export function loadTaskTree(root: string = DEFAULT_TASKS_ROOT, catalogue: Catalogue = loadCatalogue()): TaskTree {
  const problems: Problem[] = [];
  const tasks: LoadedTask[] = [];
  for (const dir of discoverTaskDirs(root)) {
    const r = loadTaskDir(dir, catalogue);
    problems.push(...r.problems);
    if (r.task) tasks.push(r.task);
  }
  const byId = new Map<string, LoadedTask>();
  for (const t of tasks) {
    const other = byId.get(t.task.id);
    if (other) problems.push({ code: 'TASK_DUPLICATE_ID', file: join(t.dir, 'task.yaml'), path: 'id', problem: `id also used by ${other.dir}`, found: t.task.id });
    else byId.set(t.task.id, t);
  }
  const papers: LoadedPaper[] = [];
  for (const f of discoverPaperFiles(root)) {
    const r = loadPaperFile(f, byId, catalogue);
    problems.push(...r.problems);
    if (r.paper) papers.push(r.paper);
  }
  const banks: LoadedBank[] = [];
  for (const f of discoverBankFiles(root)) {
    const r = loadBankFile(f, byId, catalogue);
    problems.push(...r.problems);
    if (r.bank) banks.push(r.bank);
  }
  return { tasks, papers, banks, problems };
}

/** Validate what the paths name: a tasks root, a task folder, a task.yaml, or a paper file. */
export function validatePaths(paths: readonly string[], root: string = DEFAULT_TASKS_ROOT, catalogue: Catalogue = loadCatalogue()): TaskTree {
  if (paths.length === 0) return loadTaskTree(root, catalogue);
  const out: TaskTree = { tasks: [], papers: [], banks: [], problems: [] };
  let index: Map<string, LoadedTask> | undefined;
  for (const p of paths) {
    const abs = resolve(p);
    if (!existsSync(abs)) {
      out.problems.push({ code: 'TASK_MISSING_FILE', file: p, path: '(file)', problem: 'no such file or folder' });
      continue;
    }
    const isDir = statSync(abs).isDirectory();
    if (isDir && (existsSync(join(abs, 'papers')) || existsSync(join(abs, 'banks')) || LEVELS.some((l) => existsSync(join(abs, l))))) {
      const t = loadTaskTree(abs, catalogue);
      out.tasks.push(...t.tasks);
      out.papers.push(...t.papers);
      out.banks.push(...t.banks);
      out.problems.push(...t.problems);
    } else if (isDir || basename(abs) === 'task.yaml') {
      const r = loadTaskDir(isDir ? abs : dirname(abs), catalogue);
      out.problems.push(...r.problems);
      if (r.task) out.tasks.push(r.task);
    } else {
      // A paper or bank refers to tasks: resolve them from the tree the file sits in.
      const paperRoot = dirname(dirname(abs));
      index ??= new Map(loadTaskTree(paperRoot, catalogue).tasks.map((t) => [t.task.id, t]));
      if (basename(dirname(abs)) === 'banks') {
        const r = loadBankFile(abs, index, catalogue);
        out.problems.push(...r.problems);
        if (r.bank) out.banks.push(r.bank);
      } else {
        const r = loadPaperFile(abs, index, catalogue);
        out.problems.push(...r.problems);
        if (r.paper) out.papers.push(r.paper);
      }
    }
  }
  return out;
}

export function formatProblem(p: Problem, cwd: string = process.cwd()): string {
  const where = `${relative(cwd, p.file) || p.file}${p.line !== undefined ? `:${p.line}` : ''}`;
  const fe = [p.found !== undefined ? `found ${p.found}` : '', p.expected !== undefined ? `expected ${p.expected}` : ''].filter(Boolean).join('; ');
  return `${where}: ${p.path}: [${p.code}] ${p.problem}${fe ? ` (${fe})` : ''}`;
}

/** The valid task tree, or one DeploylabError listing every problem. */
export function loadTasksOrThrow(root: string = DEFAULT_TASKS_ROOT, catalogue: Catalogue = loadCatalogue()): TaskTree {
  const t = loadTaskTree(root, catalogue);
  if (t.problems.length > 0) {
    const lines = t.problems.map((p) => formatProblem(p)).join('\n  ');
    throw new DeploylabError({
      code: 'TASKS_INVALID',
      fault: 'config',
      message: { zh: `考题文件有 ${t.problems.length} 处问题：\n  ${lines}`, en: `task files have ${t.problems.length} problem(s):\n  ${lines}` },
      hint: { zh: '运行 deploylab tasks validate 查看并逐项修改', en: 'run deploylab tasks validate and fix each item' },
      details: { problems: t.problems },
    });
  }
  return t;
}
