import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findCycles, loadTaskDir, loadTaskTree, validatePaths, loadTasksOrThrow, DEFAULT_TASKS_ROOT, type Problem } from './loader.js';
import { jsonSchemas, SCHEMA_DIR } from './json-schema.js';
import { PROBE_KIND_NAMES, ProbeParamsSchema, type ProbeKindName } from '../../graders/kinds.js';
import { TaskSchema } from './task-schema.js';

const BROKEN = fileURLToPath(new URL('./__fixtures__/broken/', import.meta.url));
const rel = (p: Problem): string => p.file.slice(BROKEN.length);

describe('the project’s own tasks and papers', () => {
  it('are all valid', () => {
    const t = loadTaskTree();
    expect(t.problems).toEqual([]);
    expect(t.tasks.map((x) => x.task.id).sort()).toEqual(expect.arrayContaining(['quantize', 'serve']));
    expect(t.papers.map((p) => p.paper.id)).toContain('junior-v1');
  });

  it('example tasks name the graded paths in both instruction files and never print the solution', () => {
    const t = loadTaskTree();
    const q = t.tasks.find((x) => x.task.id === 'quantize')!;
    const s = t.tasks.find((x) => x.task.id === 'serve')!;
    for (const lang of ['zh', 'en'] as const) {
      expect(q.instructions[lang]).toContain('/workspace/models/tiny-llama-q4_k_m.gguf');
      expect(q.instructions[lang]).toContain('Q4_K_M');
      expect(q.instructions[lang]).not.toMatch(/llama-quantize \/opt/);
      expect(s.instructions[lang]).toContain('8080');
      expect(s.instructions[lang]).toContain('tiny-llama');
      expect(s.instructions[lang]).not.toMatch(/--ctx-size|--parallel/);
    }
    expect(q.task.checks.every((c) => c.skill === '1.2.1')).toBe(true);
    const gg = q.task.checks[0]!.probe;
    expect(gg.kind === 'gguf' && gg.expect.fileType).toBe(15);
  });

  it('every task proves itself against shortcuts: at least three tampers and one alternative', () => {
    for (const t of loadTaskTree().tasks) {
      const p = t.task.selfProof;
      expect(p.tampers.length, `${t.task.id}: tampers`).toBeGreaterThanOrEqual(3);
      expect(p.alternatives.length, `${t.task.id}: alternatives`).toBeGreaterThanOrEqual(1);
    }
  });

  it('a real exam paper that leaves functions without checks is refused; as practice it is accepted', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'deploylab-tasks-'));
    try {
      cpSync(DEFAULT_TASKS_ROOT, tmp, { recursive: true });
      const f = join(tmp, 'papers', 'junior-v1.yaml');
      // Keep only the tasks of functions 1 and 2.
      const onlyOneAndTwo = readFileSync(f, 'utf8').replace(/^ {2}- (api|ratelimit|incident|monitor)\n/gm, '');
      writeFileSync(f, onlyOneAndTwo);
      const t = loadTaskTree(tmp);
      expect(t.problems.map((p) => [p.code, p.problem.match(/function (\d)/)?.[1]])).toEqual([
        ['PAPER_FUNCTION_UNCOVERED', '3'],
        ['PAPER_FUNCTION_UNCOVERED', '4'],
      ]);
      expect(() => loadTasksOrThrow(tmp)).toThrow(/PAPER_FUNCTION_UNCOVERED/);
      writeFileSync(f, onlyOneAndTwo.replace('durationMinutes:', 'practice: true\ndurationMinutes:'));
      expect(loadTaskTree(tmp).problems).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('broken fixtures: every problem, with file, path and line, in one run', () => {
  const t = loadTaskTree(BROKEN);
  const find = (code: string, file: string, path: string): Problem | undefined =>
    t.problems.find((p) => p.code === code && rel(p) === file && p.path === path);

  it('only the good task loads', () => {
    expect(t.tasks.map((x) => x.task.id)).toEqual(['ok']);
  });
  it('typo’d keys point at the typo', () => {
    expect(find('TASK_SCHEMA', 'junior/typo-key/task.yaml', 'checks[0].pionts')).toMatchObject({ line: 11, found: 'pionts' });
    expect(find('TASK_SCHEMA', 'junior/typo-key/task.yaml', 'checks[0].probe.expct')).toMatchObject({ line: 15 });
    expect(find('TASK_SCHEMA', 'junior/typo-key/task.yaml', 'checks[0].points')).toMatchObject({ problem: 'required key is missing', expected: 'number' });
  });
  it('unknown skill code and unknown probe kind in the same file', () => {
    expect(find('TASK_UNKNOWN_SKILL', 'junior/unknown-skill/task.yaml', 'checks[0].skill')).toMatchObject({ line: 9, found: '1.2.9' });
    expect(find('TASK_SCHEMA', 'junior/unknown-skill/task.yaml', 'checks[1].probe.kind')?.expected).toMatch(/"gguf"/);
  });
  it('wrong level code', () => {
    expect(find('TASK_SCHEMA', 'junior/wrong-level/task.yaml', 'level')).toMatchObject({ line: 2, found: '"primary"', expected: 'one of "junior" | "intermediate" | "senior"' });
  });
  it('missing instructions, setup file and solution script', () => {
    expect(find('TASK_MISSING_FILE', 'junior/no-instructions/instructions.en.md', '(file)')).toBeDefined();
    expect(find('TASK_MISSING_FILE', 'junior/no-instructions/task.yaml', 'setup.files[0].from')).toMatchObject({ found: 'config/app.conf' });
    expect(find('TASK_MISSING_FILE', 'junior/no-instructions/task.yaml', 'solution.scripts[1]')).toMatchObject({ found: 'missing.sh' });
  });
  it('dependsOn cycle and unknown dependency', () => {
    expect(find('TASK_DEPENDS_CYCLE', 'junior/cycle/task.yaml', 'checks[0].dependsOn')?.found).toBe('a → c → b → a');
    expect(find('TASK_DEPENDS_UNKNOWN', 'junior/cycle/task.yaml', 'checks[1].dependsOn[1]')).toMatchObject({ found: 'nowhere' });
  });
  it('self-proof: missing tamper and alternative scripts, a tamper naming no check', () => {
    expect(find('TASK_MISSING_FILE', 'junior/bad-proof/task.yaml', 'selfProof.tampers[1].script')).toMatchObject({ found: 'absent.sh', expected: 'a file at tampers/absent.sh in the task folder' });
    expect(find('TASK_MISSING_FILE', 'junior/bad-proof/task.yaml', 'selfProof.alternatives[0].script')).toMatchObject({ found: 'other.sh' });
    expect(find('TASK_DEPENDS_UNKNOWN', 'junior/bad-proof/task.yaml', 'selfProof.tampers[0].mustNotPass[1]')).toMatchObject({ found: 'nowhere', line: 11 });
    expect(t.problems.filter((p) => rel(p) === 'junior/bad-proof/task.yaml')).toHaveLength(3);
  });
  it('YAML syntax errors carry a line number', () => {
    const p = t.problems.find((x) => x.code === 'YAML_SYNTAX');
    expect(p && rel(p)).toBe('junior/bad-yaml/task.yaml');
    expect(p?.line).toBeGreaterThanOrEqual(10);
  });
  it('paper: too short, unknown tasks, uncovered functions', () => {
    const paper = t.problems.filter((p) => rel(p) === 'papers/broken-exam.yaml').map((p) => `${p.code} ${p.path} ${p.found ?? ''}`);
    expect(paper).toEqual([
      'PAPER_DURATION_SHORT durationMinutes 60',
      'PAPER_UNKNOWN_TASK tasks[1] cycle',
      'PAPER_UNKNOWN_TASK tasks[2] ghost',
      'PAPER_FUNCTION_UNCOVERED tasks 0 points',
      'PAPER_FUNCTION_UNCOVERED tasks 0 points',
      'PAPER_FUNCTION_UNCOVERED tasks 0 points',
    ]);
  });
  it('validatePaths takes single task folders and paper files', () => {
    expect(validatePaths([join(BROKEN, 'junior', 'ok')]).problems).toEqual([]);
    expect(validatePaths([join(BROKEN, 'junior', 'cycle', 'task.yaml')]).problems.map((p) => p.code).sort()).toEqual(['TASK_DEPENDS_CYCLE', 'TASK_DEPENDS_UNKNOWN']);
    expect(validatePaths([join(BROKEN, 'papers', 'broken-exam.yaml')]).problems).toHaveLength(6);
  });
  it('folder and level disagree (and loadTasksOrThrow lists problems in a DeploylabError)', () => {
    const r = loadTaskDir(join(BROKEN, 'junior', 'ok'));
    expect(r.problems).toEqual([]);
    const tmp = mkdtempSync(join(tmpdir(), 'deploylab-task-'));
    try {
      cpSync(join(BROKEN, 'junior', 'ok'), join(tmp, 'senior', 'ok'), { recursive: true });
      const p = loadTaskDir(join(tmp, 'senior', 'ok')).problems;
      expect(p.map((x) => [x.code, x.found, x.expected])).toEqual([['TASK_LEVEL_MISMATCH', 'junior', 'senior']]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('findCycles', () => {
  it('finds self-loops and long cycles, ignores DAGs', () => {
    expect(findCycles(new Map([['a', ['a']]]))).toEqual([['a', 'a']]);
    expect(findCycles(new Map([['a', ['b']], ['b', ['c']], ['c', []], ['d', ['a', 'c']]]))).toEqual([]);
    expect(findCycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]))).toEqual([['a', 'b', 'c', 'a']]);
  });
});

describe('probe params', () => {
  const minimal: Partial<Record<ProbeKindName, unknown>> = {
    http: { kind: 'http', target: { port: 80 } },
    'openai-chat': { kind: 'openai-chat', target: { port: 8080 } },
    load: { kind: 'load', target: { port: 8080 }, requests: 20, concurrency: 2, reference: { command: ['llama-server', '-m', '/opt/models/tiny-llama-f16.gguf', '--port', '8080'], port: 8080 }, expect: { maxP95RatioToReference: 1.5 } },
    'rate-limit': { kind: 'rate-limit', target: { port: 80 }, requests: 30, expect: { minLimited: 5, minAllowed: 1 } },
    gguf: { kind: 'gguf', path: '/workspace/m.gguf', expect: { fileType: 15 } },
    file: { kind: 'file', path: '/etc/x' },
    process: { kind: 'process', match: { exe: 'nginx' } },
    container: { kind: 'container', match: { composeService: 'api' } },
    recovery: { kind: 'recovery', disrupt: { action: 'kill-process', match: { exe: 'llama-server' } }, then: { target: { port: 8080 }, withinSeconds: 30 } },
    prometheus: { kind: 'prometheus', source: { from: 'exposition', target: { port: 8080 } }, expect: [{ metric: 'llamacpp:requests_processing', op: 'exists' }] },
    'nvidia-smi': { kind: 'nvidia-smi', expect: { minGpus: 1 } },
  };
  it.each(Object.keys(minimal) as ProbeKindName[])('%s: a minimal example parses, with defaults filled in', (k) => {
    const r = ProbeParamsSchema.safeParse(minimal[k]);
    expect(r.success ? r.data.kind : r.error.message).toBe(k);
  });
  it('rejects nonsense per kind', () => {
    const bad = [
      { kind: 'http', target: { port: 70000 } },
      { kind: 'load', target: { port: 1 }, requests: 2, concurrency: 5, expect: {} },
      { kind: 'load', target: { port: 8080 }, requests: 2, concurrency: 1, expect: { maxP95RatioToReference: 1.5 } },
      { kind: 'load', target: { port: 8080 }, requests: 2, concurrency: 1, reference: { command: ['x'], port: 80 }, expect: {} },
      { kind: 'load', target: { port: 8080 }, requests: 2, concurrency: 1, reference: { command: ['x'], port: 80, copy: [{ from: '/m', to: '/work/../usr/bin/x' }] }, expect: { minThroughputRatioToReference: 0.5 } },
      { kind: 'file', path: 'relative/x' },
      { kind: 'file', path: '/x', expect: { sha256: 'a'.repeat(64), sha256FromManifest: { manifest: '/m.json', file: 'x' } } },
      { kind: 'process', match: {} },
      { kind: 'prometheus', source: { from: 'exposition', target: { port: 80 } }, expect: [{ metric: 'x', op: '>' }] },
      { kind: 'gguf', path: '/m', expect: { tensorTypes: { majority: ['Q4_KM'] } } },
      { kind: 'http', target: { port: 80 }, expect: { bodyMatches: '([' } },
    ];
    for (const b of bad) expect(ProbeParamsSchema.safeParse(b).success, JSON.stringify(b)).toBe(false);
  });
  it('gpu profile needs gpus and the others none', () => {
    const doc = parse(readFileSync(join(BROKEN, 'junior', 'ok', 'task.yaml'), 'utf8')) as Record<string, unknown>;
    expect(TaskSchema.safeParse({ ...doc, needs: { profile: 'gpu', estimatedMinutes: 5 } }).success).toBe(false);
    expect(TaskSchema.safeParse({ ...doc, needs: { profile: 'gpu', gpus: 1, estimatedMinutes: 5 } }).success).toBe(true);
    expect(TaskSchema.safeParse({ ...doc, needs: { profile: 'workspace-cpu', gpus: 1, estimatedMinutes: 5 } }).success).toBe(false);
  });
  it('needs.gpu: defaults, strict, only with gpus ≥ 1', () => {
    const doc = parse(readFileSync(join(BROKEN, 'junior', 'ok', 'task.yaml'), 'utf8')) as Record<string, unknown>;
    const ok = TaskSchema.safeParse({ ...doc, needs: { profile: 'gpu', gpus: 1, gpu: {}, estimatedMinutes: 5 } });
    expect(ok.success && ok.data.needs.gpu).toEqual({ minMemoryMiB: 0, partition: 'whole' });
    const mig = TaskSchema.safeParse({ ...doc, needs: { profile: 'gpu', gpus: 1, gpu: { minMemoryMiB: 40960, partition: 'mig' }, estimatedMinutes: 5 } });
    expect(mig.success && mig.data.needs.gpu).toEqual({ minMemoryMiB: 40960, partition: 'mig' });
    const bad = [
      { profile: 'workspace-cpu', gpu: {}, estimatedMinutes: 5 },
      { profile: 'gpu', gpus: 1, gpu: { partition: 'half' }, estimatedMinutes: 5 },
      { profile: 'gpu', gpus: 1, gpu: { minMemoryMiB: -1 }, estimatedMinutes: 5 },
      { profile: 'gpu', gpus: 1, gpu: { vram: 1 }, estimatedMinutes: 5 },
    ];
    for (const needs of bad) expect(TaskSchema.safeParse({ ...doc, needs }).success, JSON.stringify(needs)).toBe(false);
    const cpu = TaskSchema.safeParse({ ...doc, needs: { profile: 'workspace-cpu', gpu: {}, estimatedMinutes: 5 } });
    expect(cpu.success ? [] : cpu.error.issues.map((i) => [i.path.join('.'), i.message])).toContainEqual(['needs.gpu', 'needs.gpu is only allowed when gpus ≥ 1']);
  });
});

describe('generated JSON Schema', () => {
  it('is up to date (run npm run schema)', () => {
    for (const [name, text] of Object.entries(jsonSchemas())) {
      expect(readFileSync(join(SCHEMA_DIR, name), 'utf8'), `${name} is stale: run npm run schema`).toBe(text);
    }
  });
  it('is strict and knows every probe kind', () => {
    const s = JSON.parse(jsonSchemas()['task.schema.json']) as { additionalProperties: boolean; required: string[] };
    expect(s.additionalProperties).toBe(false);
    expect(s.required).toEqual(['id', 'level', 'title', 'version', 'needs', 'solution', 'checks']);
    const text = jsonSchemas()['task.schema.json'];
    for (const k of PROBE_KIND_NAMES) {
      expect(text).toContain(`"const": "${k}"`);
    }
  });
});
