import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CheckedHost } from '../host/check.js';
import { main } from './main.js';

async function runCli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  try {
    const code = await main(['node', 'deploylab', ...args]);
    return { code, out };
  } finally {
    spy.mockRestore();
    process.exitCode = undefined;
  }
}

/**
 * `host check` names the sandbox backend in both outputs. Docker is pointed at a socket that does
 * not exist so the run does not depend on this host's engine; only the backend is asserted here
 * (test/host-cli.test.ts judges the engine items on a real engine).
 */
describe('deploylab host check: the sandbox backend', () => {
  const dir = mkdtempSync(join(tmpdir(), 'deploylab-host-backend-'));
  let api: Server;
  let apiUrl = '';
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const kubeconfig = (server: string): string =>
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: lab, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: lab, user: {token: t0ken}}]',
      'contexts: [{name: lab, context: {cluster: lab, user: lab}}]',
      'current-context: lab',
      '',
    ].join('\n');
  const config = (sandbox: string): string => file(`c-${Math.random().toString(36).slice(2)}.yaml`, `dataDir: ${dir}/data\ndocker:\n  host: unix://${dir}/no-engine.sock\n${sandbox}`);

  beforeAll(async () => {
    api = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/version') res.end(JSON.stringify({ major: '1', minor: '30', gitVersion: 'v1.30.4' }));
      else res.end(JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] }));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    apiUrl = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => api.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('docker by default: reported as the backend, in --json and in the table', async () => {
    const c = config('');
    const r = await runCli(['--config', c, '--json', 'host', 'check']);
    const report = JSON.parse(r.out) as CheckedHost;
    expect(report.backend).toMatchObject({ id: 'backend', driver: 'docker', status: 'ok' });
    expect(r.code).toBe(report.exitCode);
    const en = await runCli(['--config', c, '--lang', 'en', 'host', 'check']);
    expect(en.out).toMatch(/sandbox backend\s+ok\s+docker: seats run on the Docker engine of this host/);
    const zh = await runCli(['--config', c, 'host', 'check']);
    expect(zh.out).toContain('沙箱后端 sandbox backend');
  });

  it('k8s with a cluster that answers: ok, with its server and version', async () => {
    const c = config(`sandbox:\n  driver: k8s\n  k8s:\n    kubeconfig: ${file('ok-kubeconfig.yaml', kubeconfig(apiUrl))}\n`);
    const r = await runCli(['--config', c, '--json', 'host', 'check']);
    const report = JSON.parse(r.out) as CheckedHost;
    expect(report.backend).toMatchObject({ driver: 'k8s', status: 'ok', details: { server: apiUrl, context: 'lab', version: 'v1.30.4' } });
    const en = await runCli(['--config', c, '--lang', 'en', 'host', 'check']);
    expect(en.out).toContain(`k8s: the cluster at ${apiUrl} (context lab) answers, Kubernetes v1.30.4`);
  });

  it('k8s with a cluster that does not answer: CLUSTER_UNREACHABLE, could not check (exit 2), the hint under the table', async () => {
    const c = config(`sandbox:\n  driver: k8s\n  k8s:\n    kubeconfig: ${file('dead-kubeconfig.yaml', kubeconfig('https://127.0.0.1:1'))}\n`);
    const r = await runCli(['--config', c, '--json', 'host', 'check']);
    const report = JSON.parse(r.out) as CheckedHost;
    expect(report.backend).toMatchObject({ driver: 'k8s', status: 'error', code: 'CLUSTER_UNREACHABLE', details: { server: 'https://127.0.0.1:1' } });
    expect(report.ready).toBe(false);
    expect(report.overall).not.toBe('ready');
    expect(r.code).toBe(report.exitCode);
    const en = await runCli(['--config', c, '--lang', 'en', 'host', 'check']);
    expect(en.out).toContain('[CLUSTER_UNREACHABLE]');
    expect(en.out).toContain('→ sandbox backend: check sandbox.k8s.kubeconfig');
  });

  it('k8s naming a kubeconfig that does not exist: bad input (exit 3) naming the setting', async () => {
    const c = config(`sandbox:\n  driver: k8s\n  k8s:\n    kubeconfig: ${dir}/missing-kubeconfig\n`);
    const r = await runCli(['--config', c, '--json', 'host', 'check']);
    expect(r.code).toBe(3);
    const out = JSON.parse(r.out) as { error: { code: string; message: { en: string } } };
    expect(out.error.code).toBe('K8S_KUBECONFIG_INVALID');
    expect(out.error.message.en).toContain('sandbox.k8s.kubeconfig');
  });
});
