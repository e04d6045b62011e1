/**
 * Every task proves itself on real seats (untouched zero, reference solution full marks, reset
 * zero), and verify catches tasks that do not: a check earned without doing the work, and a
 * solution that does nothing. Tasks are discovered under tasks/, so new ones are covered as they land.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify, parse } from 'yaml';
import { loadConfig } from '../runner/core/config.js';
import { newVerifySession, verifyDepsFromConfig, verifyTask, type TaskVerifyReport, type VerifyDeps } from '../runner/grading/verify.js';
import { DEFAULT_TASKS_ROOT, discoverTaskDirs, loadTaskDir, type LoadedTask } from '../runner/tasks/loader.js';
import { hasEngine } from './helpers/docker-env.js';

const run = promisify(execFile);
const taskDirs = discoverTaskDirs(DEFAULT_TASKS_ROOT);
const QUANTIZE = join(DEFAULT_TASKS_ROOT, 'junior', 'quantize');

function explain(r: TaskVerifyReport): string {
  const lines = r.failures.map((f) => `${f.phase} ${f.checkId ?? ''} ${f.kind ?? ''}: ${f.reason.en}${f.summary ? ` — ${f.summary.en}` : ''}`);
  if (r.error) lines.push(`could not run: [${r.error.code}] ${r.error.message.en}`);
  for (const s of r.solution) if (s.exitCode !== 0) lines.push(`solution ${s.script}: exit ${s.exitCode}\n${s.stdout.slice(-800)}\n${s.stderr.slice(-800)}`);
  return `${r.taskId}:\n  ${lines.join('\n  ')}`;
}

function load(dir: string): LoadedTask {
  const r = loadTaskDir(dir);
  expect(r.problems.map((p) => `${p.file}: ${p.path}: ${p.problem}`)).toEqual([]);
  return r.task!;
}

describe.skipIf(!hasEngine)('tasks verify on real seats', () => {
  let deps: VerifyDeps;
  const session = newVerifySession();
  const tmp = mkdtempSync(join(tmpdir(), 'deploylab-verify-'));
  const timings: string[] = [];

  beforeAll(async () => {
    deps = { ...(await verifyDepsFromConfig(loadConfig())), session };
  });

  afterAll(async () => {
    await deps?.driver.sweep({ session });
    rmSync(tmp, { recursive: true, force: true });
    process.stderr.write(`verify wall time per task: ${timings.join(', ')}\n`);
  });

  it('finds the tasks to verify', () => {
    expect(taskDirs.length).toBeGreaterThanOrEqual(2);
  });

  for (const dir of taskDirs) {
    const id = dir.split('/').at(-1)!;
    const task = loadTaskDir(dir).task;
    it.skipIf(task?.task.needs.profile === 'gpu')(`${id}: untouched 0, reference solution full marks, reset 0`, async () => {
      const loaded = load(dir);
      const r = await verifyTask(loaded, deps);
      timings.push(`${id} ${(r.wallMs / 1000).toFixed(1)} s`);
      expect(r.ok, explain(r)).toBe(true);
      expect(r.grades.untouched?.earned).toBe(0);
      expect(r.grades.solved?.earned).toBe(r.grades.solved?.possible);
      expect(r.grades.reset?.earned).toBe(0);
      expect(r.cases.length).toBe(loaded.task.selfProof.tampers.length + loaded.task.selfProof.alternatives.length);
      expect(r.cases.filter((c) => !c.ok).map((c) => c.script)).toEqual([]);
      for (const c of r.cases.filter((x) => x.kind === 'alternative')) expect(c.grade?.earned, c.script).toBe(c.grade?.possible);
      // Nothing of the task's seat is left behind.
      expect(await deps.driver.list({ session })).toEqual([]);
    }, 600_000);
  }

  it('fails a task with a check an untouched seat earns, naming the check (CLI, exit 1)', async () => {
    const dir = join(tmp, 'junior', 'quantize-leaky');
    cpSync(QUANTIZE, dir, { recursive: true });
    const doc = parse(readFileSync(join(dir, 'task.yaml'), 'utf8')) as { id: string; checks: unknown[] };
    doc.id = 'quantize-leaky';
    delete (doc as { selfProof?: unknown }).selfProof; // the phases under test are untouched and reset
    // Passes without any work: the source model is there from the start.
    doc.checks.push({
      id: 'source-present',
      skill: '1.2.1',
      title: { zh: '源模型存在', en: 'The source model exists' },
      points: 1,
      probe: { kind: 'file', path: '/opt/models/tiny-llama-f16.gguf', expect: { exists: true } },
    });
    writeFileSync(join(dir, 'task.yaml'), stringify(doc));
    const cli = await run('node', ['bin/deploylab.js', '--json', 'tasks', '--tasks-dir', tmp, 'verify', 'quantize-leaky'], {
      cwd: join(DEFAULT_TASKS_ROOT, '..'),
      maxBuffer: 16 << 20,
    }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
    expect(cli.code).toBe(1);
    const out = JSON.parse(cli.stdout) as { ok: boolean; tasks: TaskVerifyReport[] };
    expect(out.ok).toBe(false);
    const r = out.tasks[0]!;
    timings.push(`quantize-leaky ${(r.wallMs / 1000).toFixed(1)} s`);
    expect(r.error).toBeUndefined();
    const named = r.failures.map((f) => `${f.phase}/${f.checkId}/${f.kind}`);
    expect(named).toEqual(['untouched/source-present/file', 'reset/source-present/file']);
    expect(r.failures[0]!.reason.en).toContain('untouched seat scores');
  }, 600_000);

  it('fails a task whose grader a tamper gets past, naming the tamper and the checks it earned', async () => {
    // The serve task's identity check without its identity: argv and the port alone.
    const dir = join(tmp, 'junior', 'serve-weak');
    cpSync(join(DEFAULT_TASKS_ROOT, 'junior', 'serve'), dir, { recursive: true });
    const doc = parse(readFileSync(join(dir, 'task.yaml'), 'utf8')) as {
      id: string;
      selfProof: { tampers: { script: string }[]; alternatives: unknown[] };
      checks: { id: string; probe: { expect: Record<string, unknown> } }[];
    };
    doc.id = 'serve-weak';
    const identity = doc.checks.find((c) => c.id === 'server-identity')!;
    delete identity.probe.expect['executable'];
    delete identity.probe.expect['opens'];
    doc.selfProof.tampers = doc.selfProof.tampers.filter((t) => t.script === 'imitation-exec-a.sh');
    doc.selfProof.alternatives = [];
    writeFileSync(join(dir, 'task.yaml'), stringify(doc));
    const r = await verifyTask(load(dir), deps);
    timings.push(`serve-weak ${(r.wallMs / 1000).toFixed(1)} s`);
    expect(r.ok).toBe(false);
    expect(r.grades.solved?.earned).toBe(r.grades.solved?.possible);
    const named = r.failures.map((f) => `${f.phase}/${f.case}/${f.checkId}`);
    // The chat check has a defence of its own (the answer's provenance); the rest fall with identity.
    expect(named).toEqual(expect.arrayContaining(['server-identity', 'server-args', 'health', 'slots', 'model-alias'].map((c) => `tamper/imitation-exec-a.sh/${c}`)));
    expect(r.failures[0]!.reason.en).toContain('the shortcut imitation-exec-a.sh scores on this check');
    expect(r.cases).toMatchObject([{ kind: 'tamper', script: 'imitation-exec-a.sh', ok: false }]);
    expect(r.cases[0]!.grade!.earned).toBeGreaterThanOrEqual(8);
  }, 600_000);

  it('fails a task whose solution does nothing, naming every check that did not pass', async () => {
    const dir = join(tmp, 'junior', 'quantize-noop');
    cpSync(QUANTIZE, dir, { recursive: true });
    const doc = parse(readFileSync(join(dir, 'task.yaml'), 'utf8')) as { id: string; selfProof?: unknown };
    doc.id = 'quantize-noop';
    delete doc.selfProof; // the phase under test is the reference solution's
    writeFileSync(join(dir, 'task.yaml'), stringify(doc));
    writeFileSync(join(dir, 'solution', 'solve.sh'), '#!/usr/bin/env bash\ntrue\n');
    const r = await verifyTask(load(dir), deps);
    timings.push(`quantize-noop ${(r.wallMs / 1000).toFixed(1)} s`);
    expect(r.ok).toBe(false);
    expect(r.solution.map((s) => s.exitCode)).toEqual([0]);
    const solved = r.failures.filter((f) => f.phase === 'solved');
    expect(solved.map((f) => `${f.checkId}:${f.outcome}`).sort()).toEqual([
      'loads-and-generates:blocked',
      'q4km-types:fail',
      'size-ratio:blocked',
      'source-untouched:blocked',
    ]);
    expect(r.failures.every((f) => f.phase === 'solved')).toBe(true);
    expect(await deps.driver.list({ session })).toEqual([]);
  }, 600_000);
});
