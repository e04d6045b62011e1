import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema } from '../runner/core/config.js';
import { DeploylabError } from '../runner/core/errors.js';
import { checkHost } from '../runner/host/check.js';
import { findBinary } from '../runner/host/inventory.js';
import { startDockerd } from '../runner/host/prepare.js';
import { hasEngine } from './helpers/docker-env.js';

/**
 * The engine-start path of `host prepare`, run for real: a second, isolated dockerd (own socket,
 * data root, exec root with its own containerd, containerd namespace, its own bridge, no iptables),
 * so the engine everybody else uses is not touched. It is stopped by its PID afterwards.
 * Not `--bridge=none`: a dockerd started that way deletes the host's `docker0` interface, which
 * breaks the default bridge of the host's real engine.
 */
const canRun = hasEngine && process.getuid?.() === 0 && findBinary('dockerd') !== null;
const tmp = mkdtempSync('/tmp/deploylab-hostd-');
const started: number[] = [];
const BRIDGE = 'dlhosttest0';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

function isolation(dir: string): string[] {
  return [
    '--data-root', join(dir, 'root'),
    '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'dockerd.pid'),
    `--bridge=${BRIDGE}`, '--iptables=false', '--ip6tables=false', '--ip-masq=false',
    '--containerd-namespace', 'deploylab-hosttest',
    '--containerd-plugins-namespace', 'deploylab-hosttest-plugins',
  ];
}

afterAll(async () => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue;
    }
    for (let i = 0; i < 60 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 250));
  }
  rmSync(tmp, { recursive: true, force: true });
  if (canRun) {
    try {
      ip('link', 'del', BRIDGE);
    } catch {
      // already gone
    }
  }
});

describe.skipIf(!canRun)('starting dockerd (isolated second engine)', () => {
  beforeAll(() => {
    if (!existsSync(`/sys/class/net/${BRIDGE}`)) ip('link', 'add', BRIDGE, 'type', 'bridge');
  });
  const socketPath = join(tmp, 'docker.sock');
  const config = ConfigSchema.parse({ dataDir: join(tmp, 'data'), docker: { host: `unix://${socketPath}` } });

  it('starts in the background, logs under the data dir, answers on the configured socket; check sees it', async () => {
    const t0 = Date.now();
    const r = await startDockerd({ config, env: {}, socketPath, waitMs: 60_000, extraArgs: isolation(tmp) });
    started.push(r.pid);
    const seconds = (Date.now() - t0) / 1000;
    expect(r.engine.reachable).toBe(true);
    if (!r.engine.reachable) return;
    expect(r.engine.rootDir).toBe(join(tmp, 'root'));
    expect(r.engine.target).toMatchObject({ url: `unix://${socketPath}`, source: 'config' });
    expect(r.logPath).toBe(join(tmp, 'data', 'logs', 'dockerd.log'));
    expect(readFileSync(r.logPath, 'utf8')).toMatch(/API listen on .*docker\.sock/);
    expect(seconds).toBeLessThan(60);

    // config docker.host is honoured all the way: the check measures this engine's root dir
    const report = await checkHost(config, { env: {} });
    const engine = report.items.find((i) => i.id === 'engine')!;
    expect(engine.status).toBe('ok');
    expect(engine.message.en).toContain(`at unix://${socketPath}`);
    expect(report.items.find((i) => i.id === 'disk-engine')!.details.path).toBe(join(tmp, 'root'));
    // a fresh engine has no sandbox images
    expect(report.items.find((i) => i.id === 'images')).toMatchObject({ status: 'fail' });
    expect(report.exitCode).toBe(1);
  });

  it('a dockerd that exits at once: ENGINE_START_FAILED quickly, with its log', async () => {
    const dir = join(tmp, 'bad');
    const cfg = ConfigSchema.parse({ dataDir: dir, docker: { host: `unix://${join(dir, 'docker.sock')}` } });
    const t0 = Date.now();
    const err = await startDockerd({ config: cfg, env: {}, socketPath: join(dir, 'docker.sock'), waitMs: 30_000, extraArgs: ['--no-such-flag'] }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DeploylabError);
    const e = err as DeploylabError;
    expect(e.code).toBe('ENGINE_START_FAILED');
    expect(e.message).toMatch(/dockerd exited \(\d+\) before it was ready/);
    expect(String(e.details!.logTail)).toContain('no-such-flag');
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});
