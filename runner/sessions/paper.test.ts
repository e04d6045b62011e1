import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeploylabError } from '../core/errors.js';
import { DEFAULT_TASKS_ROOT } from '../tasks/loader.js';
import { loadExamPaper } from './paper.js';

function problemsOf(fn: () => unknown): { code: string; file: string }[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DeploylabError);
    expect((e as DeploylabError).code).toBe('PAPER_INVALID');
    return ((e as DeploylabError).details as { problems: { code: string; file: string }[] }).problems;
  }
  throw new Error('the paper loaded');
}

describe('loadExamPaper', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'paper-'));
    cpSync(DEFAULT_TASKS_ROOT, root, { recursive: true });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('a paper whose task has a typo names the task’s own problem first, not only "no valid task with this id"', () => {
    const file = join(root, 'junior', 'serve', 'task.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^id: serve$/m, 'id: serve\nbogusField: 1'));
    const problems = problemsOf(() => loadExamPaper('junior-v1', root));
    expect(problems.map((p) => [p.code, p.file.endsWith('junior/serve/task.yaml') || p.file.endsWith('papers/junior-v1.yaml')])).toEqual([
      ['TASK_SCHEMA', true],
      ['PAPER_UNKNOWN_TASK', true],
    ]);
  });

  it('a task whose YAML cannot be read is still matched to the paper by its folder', () => {
    writeFileSync(join(root, 'junior', 'prune', 'task.yaml'), 'id: [prune\n');
    const problems = problemsOf(() => loadExamPaper('junior-v1', root));
    expect(problems.some((p) => p.code === 'YAML_SYNTAX' && p.file.endsWith('junior/prune/task.yaml'))).toBe(true);
  });

  it('a broken task the paper does not use is not this exam’s concern', () => {
    mkdirSync(join(root, 'junior', 'extra'));
    writeFileSync(join(root, 'junior', 'extra', 'task.yaml'), 'id: extra\nnonsense: true\n');
    expect(loadExamPaper('junior-v1', root).tasks.map((t) => t.task.id)).toContain('serve');
  });
});
