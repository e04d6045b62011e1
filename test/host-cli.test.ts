import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { section } from '../graders/parsers/nvidia-smi-capture.js';
import type { HostReport } from '../runner/host/types.js';
import { hasEngine } from './helpers/docker-env.js';

const ROOT = new URL('..', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'deploylab-host-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string; seconds: number } {
  const t0 = Date.now();
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DEPLOYLAB_') && k !== 'DOCKER_HOST'));
  const r = spawnSync(process.execPath, ['bin/deploylab.js', ...args], {
    cwd: ROOT,
    env: { ...base, DEPLOYLAB_LOG_LEVEL: 'warn', ...env } as NodeJS.ProcessEnv,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, seconds: (Date.now() - t0) / 1000 };
}

function configFile(name: string, yaml: string): string {
  const p = join(tmp, name);
  writeFileSync(p, yaml);
  return p;
}

const byId = (r: HostReport, id: string) => r.items.find((i) => i.id === id)!;

describe.skipIf(!hasEngine)('deploylab host check (real engine)', () => {
  it('--json: every item, the engine version as the engine reports it, exit code matching the verdict', async () => {
    const r = cli(['host', 'check', '--json']);
    const report = JSON.parse(r.stdout) as HostReport;
    expect(report.items.map((i) => i.id)).toEqual(['engine', 'storage-driver', 'cgroup', 'cpu', 'memory', 'disk-data', 'disk-engine', 'gpu', 'images']);
    const v = await new Docker().version();
    expect(byId(report, 'engine')).toMatchObject({ status: 'ok', details: { version: v.Version, apiVersion: v.ApiVersion } });
    expect(byId(report, 'storage-driver').details.driver).toBe((await new Docker().info()).Driver);
    expect(byId(report, 'gpu')).toMatchObject({ status: 'ok', details: { gpus: [] } }); // no nvidia-smi here
    expect(typeof report.ready).toBe('boolean');
    expect(r.code).toBe(report.exitCode);
    expect(r.code).toBe({ ready: 0, 'not-ready': 1, 'could-not-check': 2 }[report.overall]);
  });

  it('human table: Chinese by default, English with --lang en', () => {
    const zh = cli(['host', 'check']);
    expect(zh.stdout).toContain('容器引擎 container engine');
    expect(zh.stdout).toMatch(/主机就绪|主机未就绪/);
    const en = cli(['--lang', 'en', 'host', 'check']);
    expect(en.stdout).toContain('container engine');
    expect(en.stdout).not.toContain('容器引擎');
  });

  it('DOCKER_HOST=tcp://127.0.0.1:1: could not check (exit 2), the error names the host', () => {
    const r = cli(['host', 'check', '--json'], { DOCKER_HOST: 'tcp://127.0.0.1:1' });
    expect(r.code).toBe(2);
    const report = JSON.parse(r.stdout) as HostReport;
    const engine = byId(report, 'engine');
    expect(engine).toMatchObject({ status: 'error', code: 'ENGINE_UNREACHABLE' });
    expect(engine.message.en).toContain('tcp://127.0.0.1:1 (DOCKER_HOST)');
    expect(engine.hint!.en).toContain('127.0.0.1:1');
    expect(byId(report, 'images').status).toBe('error');
    expect(r.seconds).toBeLessThan(30);
  });

  it('an unknown key in the config file: exit 3, naming the file and the key', () => {
    const file = configFile('typo.yaml', 'host:\n  minFreeDiskGB: 5\n');
    const r = cli(['--config', file, 'host', 'check']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('minFreeDiskGB');
  });

  it('not enough disk (host.minFreeDiskGiB: 1000000): exit 1, the disk item fails naming path, free and required', () => {
    const file = configFile('bigdisk.yaml', `host: {minFreeDiskGiB: 1000000}\ndataDir: ${tmp}/data\n`);
    const r = cli(['--config', file, '--lang', 'en', 'host', 'check', '--json']);
    expect(r.code).toBe(1);
    const d = byId(JSON.parse(r.stdout) as HostReport, 'disk-data');
    expect(d).toMatchObject({ status: 'fail', code: 'DISK_LOW', details: { requiredGiB: 1000000 } });
    expect(d.message.en).toMatch(new RegExp(`^${tmp}/data has \\d+(\\.\\d)? GiB free, less than the required 1000000 GiB$`));
  });

  it('GPUs from the host nvidia-smi: real H200 capture replayed by an nvidia-smi on PATH', () => {
    // No GPU can run here: a stand-in binary answers with the real H200 (MIG) capture, so the
    // exec → parse → judge path runs end to end on real output.
    const bin = join(tmp, 'bin-ok');
    const cap = 'linux-x86_64__nvidia-h200-mig__590.48.01.txt';
    spawnSync('mkdir', ['-p', bin]);
    writeFileSync(join(bin, 'q.csv'), section(cap, 'nvidia-smi --query-gpu=', 'load'));
    writeFileSync(join(bin, 'apps.csv'), section(cap, 'nvidia-smi --query-compute-apps=', 'load'));
    writeFileSync(join(bin, 'list.txt'), section(cap, 'nvidia-smi -L'));
    writeFileSync(
      join(bin, 'nvidia-smi'),
      `#!/bin/sh\nd=$(dirname "$0")\ncase "$1" in --query-gpu=*) cat "$d/q.csv";; --query-compute-apps=*) cat "$d/apps.csv";; -L) cat "$d/list.txt";; *) exit 2;; esac\n`,
    );
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
    const r = cli(['host', 'check', '--json'], { PATH: `${bin}:${process.env.PATH}` });
    const report = JSON.parse(r.stdout) as HostReport;
    const g = byId(report, 'gpu');
    // no container toolkit here either: both findings are reported
    expect(g).toMatchObject({ status: 'warn', details: { findings: ['GPU_RUNTIME_MISSING', 'GPU_BUSY'] } });
    expect(g.message.en).toContain('0: NVIDIA H200 143771 MiB MIG, driver 590.48.01');
    expect(g.message.en).toContain('12267 ./gpu_burn 13526 MiB');
    expect((g.details.migDevices as unknown[]).length).toBe(5);
    expect(byId(report, 'images').details.required).toContain('workspace-gpu');
  });

  it('a failing nvidia-smi is "could not check" (exit 2), quoting what it said', () => {
    const bin = join(tmp, 'bin-fail');
    spawnSync('mkdir', ['-p', bin]);
    writeFileSync(
      join(bin, 'nvidia-smi'),
      `#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."\nexit 9\n`,
    );
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
    const r = cli(['host', 'check', '--json'], { PATH: `${bin}:${process.env.PATH}` });
    const g = byId(JSON.parse(r.stdout) as HostReport, 'gpu');
    expect(g).toMatchObject({ status: 'error', code: 'NVIDIA_SMI_FAILED' });
    expect(g.message.en).toContain("couldn't communicate with the NVIDIA driver");
    expect(r.code).toBe(JSON.parse(r.stdout).overall === 'not-ready' ? 1 : 2);
  });
});

describe.skipIf(!hasEngine)('deploylab host prepare (real engine)', () => {
  it('on a host whose engine runs: idempotent and fast with --no-images, then prints the check', () => {
    const r = cli(['host', 'prepare', '--no-images', '--json']);
    expect(r.stderr).toContain('nothing to do');
    const report = JSON.parse(r.stdout) as HostReport;
    expect(byId(report, 'engine').status).toBe('ok');
    expect(r.code).toBe(report.exitCode);
    expect(r.seconds).toBeLessThan(30);
  });

  it('an unreachable DOCKER_HOST: ENGINE_UNREACHABLE (exit 2) naming the host, nothing installed or started', () => {
    const r = cli(['host', 'prepare', '--no-images', '--json'], { DOCKER_HOST: 'tcp://127.0.0.1:1' });
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; message: { en: string } } };
    expect(out).toMatchObject({ ok: false, error: { code: 'ENGINE_UNREACHABLE' } });
    expect(out.error.message.en).toContain('tcp://127.0.0.1:1');
    expect(r.stderr).not.toContain('installing packages');
  });
});
