import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../runner/core/logger.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan, type SeatRef } from '../../runner/sandbox/driver.js';
import { startServer } from '../../runner/server/http-server.js';
import { BrowserTerminal, loginWithCode, solveThroughTerminal } from '../../runner/sessions/demo-candidate.js';
import { DEFAULT_TASKS_ROOT, loadTaskDir } from '../../runner/tasks/loader.js';
import { loadTaskSheets } from '../../runner/web/access.js';
import { createWebApp, type WebApp } from '../../runner/web/app.js';
import { hasEngine } from '../helpers/docker-env.js';
import { requireImage } from '../helpers/images.js';
import { FixtureAccess } from '../web/fixture-access.js';

// Everything a shell or a TTY likes to eat: $, backticks, both quotes, !, a tab, a backslash,
// a ^C byte inside a string, Chinese text, a 600-character line and no newline at the end.
const TRICKY = [
  '#!/usr/bin/env bash',
  'set -u',
  "name='单引号 \"双引号\"'",
  'echo "home=$HOME user=`id -un` sum=$((2+3))"',
  "printf 'tab[\\t] bang[!] dollar[$] tick[`] back[\\\\]\\n'",
  `echo "${'x'.repeat(600)}" | wc -c`,
  'echo "$name"',
  "ctl=$(printf 'a\x03b' | od -An -tx1 | tr -d ' \\n'); echo \"ctl=$ctl\"",
  '\techo indented-with-tab',
  'exit 7',
].join('\n');

describe.skipIf(!hasEngine)('a simulated candidate types through the browser terminal (real seat)', () => {
  const session = `dtype-${randomBytes(3).toString('hex')}`;
  const ref: SeatRef = { session, seat: 'c1-serve' };
  const driver = new DockerDriver();
  const access = new FixtureAccess(loadTaskSheets([join(DEFAULT_TASKS_ROOT, 'junior/serve')]));
  let server: Server;
  let url: string;
  let web: WebApp;

  beforeAll(async () => {
    const image = await requireImage('workspace-cpu');
    await driver.provision(parseSeatPlan({ session, seat: ref.seat, task: 'serve', workspace: { image }, resources: { cpus: 0.5, memoryMiB: 256, pids: 128 } }));
    access.addSeat('CODE-0001', { session, seat: 'c1', sandboxes: [{ taskId: 'serve', ref }], candidate: '考生 C1', endsAt: null });
    web = createWebApp({ access, driver, log: createLogger('silent') });
    ({ server, url } = await startServer({ host: '127.0.0.1', port: 0, log: createLogger('silent'), web }));
  }, 120_000);

  afterAll(async () => {
    web?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await driver.sweep({ session }).catch(() => undefined);
  }, 60_000);

  it('refuses a wrong code with DEMO_LOGIN_FAILED', async () => {
    await expect(loginWithCode(url, 'NOPE-0000')).rejects.toMatchObject({ code: 'DEMO_LOGIN_FAILED', fault: 'bug' });
  });

  it('types a script byte for byte, runs it as the candidate and reads its output and exit code', async () => {
    const cookie = await loginWithCode(url, 'CODE-0001');
    expect(cookie).toMatch(/^dl_session=[A-Za-z0-9_-]{16,}$/);
    const term = await BrowserTerminal.open(url, cookie, 'c1', 'serve');
    try {
      await term.typeFile('/tmp/solve/tricky.sh', TRICKY, 30_000);
      // Byte for byte: the seat's copy hashes like ours (typeFile checks that too; this checks the check).
      const inSeat = await driver.exec(ref, { cmd: ['cat', '/tmp/solve/tricky.sh'], user: 'candidate' });
      expect(inSeat.stdout).toBe(TRICKY);

      const from = term.mark();
      const r = await term.run('bash /tmp/solve/tricky.sh', 20_000);
      expect(r.exitCode).toBe(7);
      const shown = term.tail(40);
      expect(shown).toContain('home=/home/candidate user=candidate sum=5');
      expect(shown).toContain('tab[\t] bang[!] dollar[$] tick[`] back[\\]');
      expect(shown).toContain('601');
      expect(shown).toContain('单引号 "双引号"');
      expect(shown).toContain('ctl=610362');
      expect(shown).toContain('indented-with-tab');
      expect(await term.waitFor(/__done_\w+:7/, 1000, from)).not.toBeNull();

      expect((await term.run('true', 10_000)).exitCode).toBe(0);
      // A command that outlives its time is interrupted (Ctrl-C) and reported without an exit code.
      expect((await term.run('sleep 30', 1500)).exitCode).toBeNull();
      expect((await term.run('echo still-here', 10_000)).exitCode).toBe(0);
    } finally {
      term.close();
    }
  }, 120_000);

  it('solves a task through its terminal, and reports a failing solution as a bug with the screen', async () => {
    const serve = loadTaskDir(join(DEFAULT_TASKS_ROOT, 'junior/serve')).task!.task;
    const dir = mkdtempSync(join(tmpdir(), 'dl-demo-solution-'));
    mkdirSync(join(dir, 'solution'));
    writeFileSync(join(dir, 'solution', 'ok.sh'), 'echo "ok as $(id -un)" > /workspace/ok.txt\n');
    writeFileSync(join(dir, 'solution', 'fail.sh'), 'echo "boom-$((6*7))" >&2\nexit 3\n');
    const cookie = await loginWithCode(url, 'CODE-0001');
    const task = (scripts: string[]) => ({ dir, instructions: { zh: '', en: '' }, task: { ...serve, solution: { ...serve.solution, scripts } } });

    const good = await solveThroughTerminal({ baseUrl: url, cookie, seat: 'c1', loaded: task(['ok.sh']) });
    expect(good.runs.map((r) => [r.script, r.exitCode])).toEqual([['ok.sh', 0]]);
    expect((await driver.exec(ref, { cmd: ['cat', '/workspace/ok.txt'] })).stdout).toBe('ok as candidate\n');

    const bad = solveThroughTerminal({ baseUrl: url, cookie, seat: 'c1', loaded: task(['ok.sh', 'fail.sh']) });
    const err = await bad.then(
      () => null,
      (e: unknown) => e as { code: string; fault: string; message: string; details: { terminal: string } },
    );
    expect(err).toMatchObject({ code: 'DEMO_SOLUTION_FAILED', fault: 'bug' });
    expect(err!.message).toContain('fail.sh (exit 3)');
    expect(err!.details.terminal).toContain('boom-42');
    expect(err!.details.terminal).not.toContain('\x1b');
  }, 120_000);
});
