import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { SessionService } from '../../runner/sessions/session-service.js';
import { openStore } from '../../runner/store/db.js';
import { requireImage } from '../helpers/images.js';
import { DEFAULT_TASKS_ROOT } from '../../runner/tasks/loader.js';
import type { RosterEntry } from '../../runner/sessions/roster.js';

export const ROOT = new URL('../../', import.meta.url).pathname;

export const ROSTER: RosterEntry[] = [
  { line: 1, candidateNo: 'T0001', name: '测试甲', idNumber: '11010519491231002X' },
  { line: 2, candidateNo: 'T0002', name: '测试乙', idNumber: '110105194912310038' },
];

export function newService(prefix: string): { svc: SessionService; dataDir: string; id: string } {
  const dataDir = mkdtempSync(join(tmpdir(), `dl-${prefix}-`));
  const driver = new DockerDriver();
  return { svc: new SessionService({ db: openStore(dataDir), driver, dataDir }), dataDir, id: `${prefix}-${randomBytes(3).toString('hex')}` };
}

/**
 * A copy of tasks/ with a small paper of four quick tasks, one per occupational function, for
 * the session tests: the lifecycle is what they test; every task is proven by tasks verify.
 */
export const MINI_PAPER = 'test-mini';
export const MINI_TASKS = ['quantize', 'serve', 'api', 'incident'] as const;
export function miniTasksRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'dl-tasks-'));
  cpSync(DEFAULT_TASKS_ROOT, root, { recursive: true });
  writeFileSync(
    join(root, 'papers', `${MINI_PAPER}.yaml`),
    [`id: ${MINI_PAPER}`, 'level: junior', 'title:', '  zh: 测试小卷', '  en: Test mini paper', 'durationMinutes: 90', 'tasks:', ...MINI_TASKS.map((t) => `  - ${t}`), ''].join('\n'),
  );
  return root;
}

export async function images(): Promise<{ workspaceCpu: string; toolbox: string }> {
  return { workspaceCpu: await requireImage('workspace-cpu'), toolbox: await requireImage('toolbox') };
}

/** The CLI as a child process on the given data dir. */
export function cli(dataDir: string, args: string[]): { child: ChildProcess; output: () => string; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> } {
  const child = spawn(process.execPath, ['bin/deploylab.js', '--lang', 'en', ...args], {
    cwd: ROOT,
    env: { ...process.env, DEPLOYLAB_DATA_DIR: dataDir, DEPLOYLAB_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, out })));
  return { child, output: () => out, done };
}

/**
 * Poll until fn holds. With `child`, a child that exits first fails at once with its output,
 * instead of the wait running out long after the cause.
 */
export async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50, child?: ReturnType<typeof cli>): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    if (child && child.child.exitCode !== null) throw new Error(`the runner exited (code ${child.child.exitCode}) before ${what}:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}
