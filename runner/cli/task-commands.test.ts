import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BROKEN = 'runner/tasks/__fixtures__/broken';

/** The real CLI, as a person runs it. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)('node', ['bin/deploylab.js', ...args], { cwd: ROOT, env: { ...process.env, LANG: 'C.UTF-8', DEPLOYLAB_LOG_LEVEL: 'silent' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe('deploylab tasks validate', () => {
  it('reports every problem of the broken fixtures in one run and exits 3', async () => {
    const r = await cli('--json', 'tasks', 'validate', '--tasks-dir', BROKEN);
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout) as { ok: boolean; problems: { code: string; file: string; path: string; line?: number }[] };
    expect(out.ok).toBe(false);
    const seen = out.problems.map((p) => `${p.code} ${p.file.replace(/.*__fixtures__\/broken\//, '')} ${p.path}`);
    expect(seen).toEqual(
      expect.arrayContaining([
        'TASK_SCHEMA junior/typo-key/task.yaml checks[0].pionts',
        'TASK_UNKNOWN_SKILL junior/unknown-skill/task.yaml checks[0].skill',
        'TASK_SCHEMA junior/wrong-level/task.yaml level',
        'TASK_MISSING_FILE junior/no-instructions/instructions.en.md (file)',
        'TASK_DEPENDS_CYCLE junior/cycle/task.yaml checks[0].dependsOn',
        'YAML_SYNTAX junior/bad-yaml/task.yaml (file)',
        'PAPER_FUNCTION_UNCOVERED papers/broken-exam.yaml tasks',
        'TASK_DEPENDS_UNKNOWN junior/bad-proof/task.yaml selfProof.tampers[0].mustNotPass[1]',
        'TASK_MISSING_FILE junior/bad-proof/task.yaml selfProof.tampers[1].script',
        'TASK_MISSING_FILE junior/bad-proof/task.yaml selfProof.alternatives[0].script',
      ]),
    );
    expect(out.problems).toHaveLength(21);
  });

  it('text output names file:line, path, code, found and expected', async () => {
    const r = await cli('--lang', 'en', 'tasks', 'validate', `${BROKEN}/junior/typo-key`, `${BROKEN}/junior/unknown-skill/task.yaml`);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('5 problem(s) found');
    expect(r.stdout).toContain(`${BROKEN}/junior/typo-key/task.yaml:11: checks[0].pionts: [TASK_SCHEMA] unknown key: pionts`);
    expect(r.stdout).toMatch(/unknown-skill\/task\.yaml:9: checks\[0\]\.skill: \[TASK_UNKNOWN_SKILL\] no skill item 1\.2\.9 at level junior \(found 1\.2\.9; expected a skill code of junior: 1\.1\.1/);
  });

  it('the project’s tasks and papers are valid: exit 0', async () => {
    const r = await cli('--lang', 'zh', 'tasks', 'validate');
    expect(r.stdout).toMatch(/全部有效：\d+ 个考题，\d+ 份试卷/);
    expect(r.code).toBe(0);
  });
});

describe('deploylab tasks list / show, standard show', () => {
  it('lists tasks by level', async () => {
    const r = await cli('--json', 'tasks', 'list', '--level', 'junior');
    expect(r.code).toBe(0);
    const ids = (JSON.parse(r.stdout) as { tasks: { id: string; level: string; points: number }[] }).tasks;
    expect(ids.map((t) => t.id)).toEqual(expect.arrayContaining(['quantize', 'serve']));
    expect(ids.every((t) => t.level === 'junior' && t.points > 0)).toBe(true);
    const none = await cli('--json', 'tasks', 'list', '--level', 'senior');
    expect((JSON.parse(none.stdout) as { tasks: unknown[] }).tasks.every((t) => (t as { level: string }).level === 'senior')).toBe(true);
    expect((await cli('tasks', 'list', '--level', 'expert')).code).toBe(3);
  });

  it('shows a task in both languages, Chinese first', async () => {
    const r = await cli('--lang', 'zh', 'tasks', 'show', 'quantize');
    expect(r.code).toBe(0);
    const zh = r.stdout.indexOf('使用 llama.cpp 将模型量化为 Q4_K_M');
    const en = r.stdout.indexOf('Quantize a model to Q4_K_M with llama.cpp');
    expect(zh).toBeGreaterThanOrEqual(0);
    expect(en).toBeGreaterThan(zh);
    expect(r.stdout).toContain('1.2.1 能使用Transformers/vLLM/llama.cpp等工具中的预设参数');
    expect(r.stdout).toContain('## 评分项');
    expect(r.stdout).toContain('## Grading');
    const missing = await cli('--json', 'tasks', 'show', 'no-such-task');
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.stdout).error.code).toBe('TASK_NOT_FOUND');
  });

  it('shows the standard per level, as a table or JSON', async () => {
    const j = await cli('--json', 'standard', 'show', '--level', 'senior');
    const doc = JSON.parse(j.stdout) as { levels: { code: string; zh: string; functions: unknown[]; weights: { practical: Record<string, number> } }[] };
    expect(doc.levels).toHaveLength(1);
    expect(doc.levels[0]).toMatchObject({ code: 'senior', zh: '高级', weights: { practical: { '1': 35, '2': 20, '3': 20, '4': 25 } } });
    const t = await cli('--lang', 'en', 'standard', 'show');
    expect(t.stdout).toContain('== 中级 Intermediate (intermediate)');
    expect(t.stdout).toMatch(/4\.2\.1 +能诊断内存泄漏等资源竞争问题，并使用Valgrind等工具修复 +Diagnose resource-contention/);
  });

  it('standard coverage: covered items with their tasks, uncovered ones with the reason, as a table or JSON', async () => {
    const j = await cli('--json', 'standard', 'coverage', '--level', 'junior');
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout) as { ok: boolean; levels: { level: string; covered: number; total: number; items: { skill: { code: string }; tasks: { id: string }[] }[] }[] };
    expect(doc.ok).toBe(true);
    const [junior] = doc.levels;
    expect(junior).toMatchObject({ level: 'junior', total: 26 });
    expect(junior!.items.find((i) => i.skill.code === '3.2.2')!.tasks.map((t) => t.id)).toContain('ratelimit');
    const t = await cli('--lang', 'en', 'standard', 'coverage', '--level', 'junior');
    expect(t.stdout).toContain(`${junior!.covered} of 26 skill items graded by a task`);
    expect(t.stdout).toMatch(/2\.4\.1 +— the exam room is offline/);
    expect(t.stdout).toMatch(/1\.3\.1 +finetune \(3 check/);
    expect(t.stdout).toMatch(/3\.3\.1 +apitest \(3 check/);
    expect(t.stdout).toMatch(/3\.3\.2 +— no task grades it yet/);
    expect(junior!.covered).toBeGreaterThanOrEqual(22);
  });
});
