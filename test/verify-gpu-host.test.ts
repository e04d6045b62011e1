import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { section } from '../graders/parsers/nvidia-smi-capture.js';
import { splitByHostFit, type TaskVerifyReport } from '../runner/grading/verify.js';
import { DEFAULT_TASKS_ROOT, loadTaskTree } from '../runner/tasks/loader.js';

/**
 * `tasks verify` of a GPU task on a host without the GPUs it needs: reported as not verified, never
 * run, never ok and never failed, and no engine is needed (DOCKER_HOST points at nothing, so any
 * attempt to reach one would end in ENGINE_UNREACHABLE, exit 2).
 */
const ROOT = new URL('..', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'deploylab-verify-gpu-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the small sysenv task, changed to need one GPU of at least `minMemoryMiB`. */
function gpuTree(name: string, minMemoryMiB: number): string {
  const root = join(tmp, name);
  const dir = join(root, 'junior', 'sysenv-gpu');
  cpSync(join(DEFAULT_TASKS_ROOT, 'junior', 'sysenv'), dir, { recursive: true });
  const doc = parse(readFileSync(join(dir, 'task.yaml'), 'utf8')) as { id: string; needs: Record<string, unknown> };
  doc.id = 'sysenv-gpu';
  doc.needs = { ...doc.needs, profile: 'gpu', gpus: 1, gpu: { minMemoryMiB, partition: 'whole' } };
  writeFileSync(join(dir, 'task.yaml'), stringify(doc));
  return root;
}

/** A fake nvidia-smi answering from a real capture, or failing the way a driverless host does. */
function fakeNvidiaSmi(name: string, capture: string | 'fail'): string {
  const bin = join(tmp, name);
  mkdirSync(bin, { recursive: true });
  if (capture === 'fail') {
    writeFileSync(join(bin, 'nvidia-smi'), `#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."\nexit 9\n`);
  } else {
    writeFileSync(join(bin, 'q.csv'), section(capture, 'nvidia-smi --query-gpu=', 'idle'));
    writeFileSync(join(bin, 'apps.csv'), section(capture, 'nvidia-smi --query-compute-apps=', 'idle'));
    writeFileSync(join(bin, 'list.txt'), section(capture, 'nvidia-smi -L'));
    writeFileSync(
      join(bin, 'nvidia-smi'),
      `#!/bin/sh\nd=$(dirname "$0")\ncase "$1" in --query-gpu=*) cat "$d/q.csv";; --query-compute-apps=*) cat "$d/apps.csv";; -L) cat "$d/list.txt";; *) exit 2;; esac\n`,
    );
  }
  chmodSync(join(bin, 'nvidia-smi'), 0o755);
  return bin;
}

function cli(args: string[], env: Record<string, string>): { code: number; stdout: string; stderr: string } {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DEPLOYLAB_') && k !== 'DOCKER_HOST'));
  const r = spawnSync(process.execPath, ['bin/deploylab.js', ...args], {
    cwd: ROOT,
    env: { ...base, DEPLOYLAB_LOG_LEVEL: 'warn', DOCKER_HOST: 'tcp://127.0.0.1:1', ...env } as NodeJS.ProcessEnv,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const L40S = 'linux-x86_64__nvidia-l40s__595.80.txt';

describe('tasks verify: a GPU task on a host that cannot run it', () => {
  it('splitByHostFit: no GPU on the host → skipped with what is missing, no GPU task → runnable', () => {
    const tree = loadTaskTree(gpuTree('split', 0));
    expect(tree.problems).toEqual([]);
    const sysenv = loadTaskTree(DEFAULT_TASKS_ROOT).tasks.find((t) => t.task.id === 'sysenv')!;
    const { runnable, notRun } = splitByHostFit([sysenv, ...tree.tasks], { state: 'absent' }, 'verify-x');
    expect(runnable.map((t) => t.task.id)).toEqual(['sysenv']);
    expect(notRun).toHaveLength(1);
    const r = notRun[0]!;
    expect(r).toMatchObject({ taskId: 'sysenv-gpu', ok: false, failures: [], grades: {}, seat: { session: 'verify-x' } });
    expect(r.error).toBeUndefined();
    expect(r.skipped!.missing.map((m) => m.en)).toEqual(['needs 1 GPU, this host has 0', 'no nvidia-smi on this host']);
    expect(r.skipped!.reason.zh).toMatch(/^需要 GPU 主机，本机未验证：需要 1 块 GPU，本机有 0 块/);
  });

  it('--json: an L40S (46068 MiB) for an 80 GiB task → not verified, exit 0, no engine asked', () => {
    const root = gpuTree('l40s', 81920);
    const bin = fakeNvidiaSmi('bin-l40s', L40S);
    const r = cli(['--json', 'tasks', '--tasks-dir', root, 'verify', 'sysenv-gpu'], { PATH: `${bin}:${process.env.PATH}` });
    expect(r.stderr).not.toContain('ENGINE_UNREACHABLE');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { ok: boolean; tasks: TaskVerifyReport[]; notVerified: string[] };
    expect(out.notVerified).toEqual(['sysenv-gpu']);
    const t = out.tasks[0]!;
    expect(t.ok).toBe(false);
    expect(t.error).toBeUndefined();
    expect(t.skipped!.missing.map((m) => m.en)).toEqual(["at least 81920 MiB of memory each, this host's largest has 46068 MiB (0 large enough)"]);
  });

  it('--all, text: exit 0 and the not-verified task is named plainly', () => {
    const root = gpuTree('all', 81920);
    const bin = fakeNvidiaSmi('bin-l40s-all', L40S);
    const r = cli(['--lang', 'en', 'tasks', '--tasks-dir', root, 'verify', '--all'], { PATH: `${bin}:${process.env.PATH}` });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('NOT VERIFIED (needs a GPU host)');
    expect(r.stdout).toContain('1 task(s) NOT verified on this host (it lacks the GPUs they need): sysenv-gpu');
    // Never shown as verified, never as failed.
    expect(r.stdout).not.toMatch(/sysenv-gpu\s+(verified|FAILED)/);
  });

  it('the same task on a host whose GPU is big enough is run (and so needs the engine: exit 2 here)', () => {
    const root = gpuTree('fits', 40960);
    const bin = fakeNvidiaSmi('bin-l40s-fits', L40S);
    const r = cli(['--json', 'tasks', '--tasks-dir', root, 'verify', 'sysenv-gpu'], { PATH: `${bin}:${process.env.PATH}` });
    expect(r.code).toBe(2);
    expect(`${r.stdout}${r.stderr}`).toContain('ENGINE_UNREACHABLE');
  });

  it('a failing nvidia-smi is "could not check" (NVIDIA_SMI_FAILED, exit 2), not "no GPU"', () => {
    const root = gpuTree('fail', 0);
    const bin = fakeNvidiaSmi('bin-fail', 'fail');
    const r = cli(['--json', 'tasks', '--tasks-dir', root, 'verify', 'sysenv-gpu'], { PATH: `${bin}:${process.env.PATH}` });
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout) as { ok: boolean; tasks: TaskVerifyReport[]; notVerified: string[] };
    expect(out.ok).toBe(false);
    expect(out.notVerified).toEqual([]);
    expect(out.tasks[0]!.skipped).toBeUndefined();
    expect(out.tasks[0]!.error).toMatchObject({ code: 'NVIDIA_SMI_FAILED', fault: 'infrastructure' });
    expect(out.tasks[0]!.error!.message.en).toContain("couldn't communicate with the NVIDIA driver");
  });
});
