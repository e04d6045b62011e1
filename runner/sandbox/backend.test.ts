import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ConfigSchema, type Config } from '../core/config.js';
import { DeploylabError } from '../core/errors.js';
import { backendItem } from '../host/check.js';
import {
  backendShape,
  k8sDriverOptions,
  kubeConfigFrom,
  lazySandboxDriver,
  lazySandboxDriverFor,
  probeCluster,
  requireCluster,
  sandboxDriverFor,
} from './backend.js';
import { DockerDriver } from './docker-driver.js';
import type { SandboxDriver, SeatStatus } from './driver.js';

const tmp = mkdtempSync(join(tmpdir(), 'deploylab-backend-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const config = (raw: unknown = {}): Config => ConfigSchema.parse(raw);

/** A kubeconfig whose one cluster is `server`. */
function kubeconfigFile(name: string, server: string): string {
  const p = join(tmp, name);
  writeFileSync(
    p,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: lab, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: lab, user: {token: t0ken}}]',
      'contexts: [{name: lab, context: {cluster: lab, user: lab}}, {name: other, context: {cluster: lab, user: lab}}]',
      'current-context: lab',
      '',
    ].join('\n'),
  );
  return p;
}

/** A TCP listener that only counts who connects (and hangs them up). */
async function countingListener(): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((sock) => {
    n++;
    sock.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, connections: () => n };
}

/** A stand-in API server: /version, and the namespace list answering `namespaces`. */
async function fakeApiServer(namespaces: number): Promise<{ server: HttpServer; url: string; paths: string[] }> {
  const paths: string[] = [];
  const server = createHttpServer((req, res) => {
    paths.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    if (req.url === '/version') {
      res.end(JSON.stringify({ major: '1', minor: '31', gitVersion: 'v1.31.2', gitCommit: '', gitTreeState: '', buildDate: '', goVersion: '', compiler: '', platform: '' }));
    } else if (req.url?.startsWith('/api/v1/namespaces')) {
      res.statusCode = namespaces;
      res.end(JSON.stringify(namespaces === 200 ? { kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] } : { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: namespaces }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, paths };
}

const close = (s: Server | HttpServer): Promise<void> => new Promise((r) => s.close(() => r()));

function thrownAsync(p: Promise<unknown>): Promise<DeploylabError> {
  return p.then(
    () => {
      throw new Error('expected a DeploylabError');
    },
    (e: unknown) => {
      if (e instanceof DeploylabError) return e;
      throw e;
    },
  );
}

describe('sandboxDriverFor: the configured backend', () => {
  it('docker (the default): a DockerDriver over the docker section, with its toolbox and host-engine access', () => {
    const c = config({ docker: { host: 'unix:///nonexistent/docker.sock', seatSubnetPool: '10.99.0.0/16' } });
    const d = sandboxDriverFor(c);
    expect(d.name).toBe('docker');
    expect(d).toBeInstanceOf(DockerDriver);
    expect(d.toolbox).toBeDefined();
    expect(d.hostEngine).toBeDefined();
  });

  it('k8s: a driver named k8s, built without contacting the cluster, and no Docker engine for the toolbox', async () => {
    const api = await countingListener();
    try {
      const c = config({ sandbox: { driver: 'k8s', k8s: { kubeconfig: kubeconfigFile('counting.yaml', `https://127.0.0.1:${api.port}`) } } });
      const d = sandboxDriverFor(c);
      expect(d.name).toBe('k8s');
      expect(d.sandboxesPerSession).toBeNull();
      // No trusted toolbox and no host engine: the checks needing them are `error` there.
      expect(d.toolbox).toBeUndefined();
      expect(d.hostEngine).toBeUndefined();
      await new Promise((r) => setTimeout(r, 200));
      expect(api.connections()).toBe(0);
      // The first call is what reaches the cluster: this kubeconfig's one.
      await expect(d.list()).rejects.toBeInstanceOf(Error);
      expect(api.connections()).toBeGreaterThan(0);
    } finally {
      await close(api.server);
    }
  });

  it("backendShape matches what the drivers themselves say, without building them", () => {
    const c = config({ docker: { seatSubnetPool: '10.50.0.0/16' } });
    expect(backendShape(c)).toEqual({ name: 'docker', sandboxesPerSession: new DockerDriver({ subnetPool: '10.50.0.0/16', host: 'unix:///nonexistent.sock' }).sandboxesPerSession });
    expect(backendShape(config({ sandbox: { driver: 'k8s' } }))).toEqual({ name: 'k8s', sandboxesPerSession: null });
  });
});

describe('the lazy driver', () => {
  const status: SeatStatus = { ref: { session: 's', seat: 'a' }, state: 'running', task: 't', containers: [], createdAt: '' };
  const fake = (): SandboxDriver => ({ name: 'docker', sandboxesPerSession: 1013, status: vi.fn(async () => status), list: vi.fn(async () => [status]) }) as unknown as SandboxDriver;

  it('builds nothing until a method is called, then builds once', async () => {
    const real = fake();
    const factory = vi.fn(() => real);
    const d = lazySandboxDriver({ name: 'docker', sandboxesPerSession: 1013 }, factory);
    expect(d.name).toBe('docker');
    expect(d.sandboxesPerSession).toBe(1013);
    expect(factory).not.toHaveBeenCalled();
    expect(await d.status({ session: 's', seat: 'a' })).toBe(status);
    expect(await d.list({ session: 's' })).toEqual([status]);
    expect(factory).toHaveBeenCalledTimes(1);
    expect(real.status).toHaveBeenCalledWith({ session: 's', seat: 'a' });
    expect(real.list).toHaveBeenCalledWith({ session: 's' });
  });

  it('a factory that throws fails that call (as a rejection) and the next call tries again', async () => {
    let tries = 0;
    const d = lazySandboxDriver({ name: 'k8s', sandboxesPerSession: null }, () => {
      if (++tries === 1) throw new Error('no kubeconfig yet');
      return fake();
    });
    await expect(d.status({ session: 's', seat: 'a' })).rejects.toThrow('no kubeconfig yet');
    expect(await d.status({ session: 's', seat: 'a' })).toBe(status);
    expect(tries).toBe(2);
  });

  it('lazySandboxDriverFor takes name and capacity from the config and calls the injected factory only on use', async () => {
    const factory = vi.fn(fake);
    const d = lazySandboxDriverFor(config({ sandbox: { driver: 'k8s' } }), factory);
    expect([d.name, d.sandboxesPerSession]).toEqual(['k8s', null]);
    expect(factory).not.toHaveBeenCalled();
    await d.list();
    expect(factory).toHaveBeenCalledTimes(1);
  });
});

describe('Kubernetes settings', () => {
  it("the driver's options: toolbox image defaulting to the prefix's latest, timeout, grader namespace label", async () => {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    const o = k8sDriverOptions(config({ images: { prefix: 'centre/deploylab' }, sandbox: { driver: 'k8s', k8s: { readyTimeoutSeconds: 90 } } }), kc);
    expect(o).toEqual({ kubeConfig: kc, toolboxImage: 'centre/deploylab/toolbox:latest', readyTimeoutMs: 90_000, graderNamespaceLabel: { key: 'deploylab.component', value: 'harness' } });
    expect(k8sDriverOptions(config({ sandbox: { k8s: { toolboxImage: 'centre/toolbox:1' } } }), kc).toolboxImage).toBe('centre/toolbox:1');
  });

  it('the kubeconfig file and context: chosen as configured; a missing file or unknown context names the field', async () => {
    const lib = await import('@kubernetes/client-node');
    const file = kubeconfigFile('ctx.yaml', 'https://127.0.0.1:1');
    expect(kubeConfigFrom(config({ sandbox: { k8s: { kubeconfig: file } } }), lib).getCurrentContext()).toBe('lab');
    expect(kubeConfigFrom(config({ sandbox: { k8s: { kubeconfig: file, context: 'other' } } }), lib).getCurrentContext()).toBe('other');

    const missing = join(tmp, 'nope.yaml');
    let e: unknown;
    try {
      kubeConfigFrom(config({ sandbox: { k8s: { kubeconfig: missing } } }), lib);
    } catch (x) {
      e = x;
    }
    expect(e).toMatchObject({ code: 'K8S_KUBECONFIG_INVALID', fault: 'config' });
    expect((e as DeploylabError).message).toContain(missing);
    expect((e as DeploylabError).message).toContain('sandbox.k8s.kubeconfig');
    expect((e as DeploylabError).zh).toContain('sandbox.k8s.kubeconfig');

    const ctx = await thrownAsync(probeCluster(config({ sandbox: { driver: 'k8s', k8s: { kubeconfig: file, context: 'exam' } } })));
    expect(ctx).toMatchObject({ code: 'K8S_CONTEXT_UNKNOWN', fault: 'config' });
    expect(ctx.message).toContain('sandbox.k8s.context');
    expect(ctx.hint?.en).toContain('lab, other');
  });
});

describe('probeCluster and the host check item', () => {
  it('a cluster that answers: its version; the item is ok and names server and context', async () => {
    const api = await fakeApiServer(200);
    try {
      const c = config({ sandbox: { driver: 'k8s', k8s: { kubeconfig: kubeconfigFile('ok.yaml', api.url) } } });
      expect(await probeCluster(c)).toEqual({ reachable: true, server: api.url, context: 'lab', version: 'v1.31.2', canListNamespaces: true });
      await requireCluster(c);
      const item = await backendItem(c);
      expect(item).toMatchObject({ id: 'backend', driver: 'k8s', status: 'ok', details: { server: api.url, context: 'lab', version: 'v1.31.2' } });
      expect(item.message.en).toContain('v1.31.2');
      expect(api.paths.some((p) => p.startsWith('/api/v1/namespaces?'))).toBe(true);
    } finally {
      await close(api.server);
    }
  });

  it('credentials that may not list namespaces: the item fails with CLUSTER_FORBIDDEN', async () => {
    const api = await fakeApiServer(403);
    try {
      const c = config({ sandbox: { driver: 'k8s', k8s: { kubeconfig: kubeconfigFile('forbidden.yaml', api.url) } } });
      expect(await probeCluster(c)).toMatchObject({ reachable: true, canListNamespaces: false });
      expect(await thrownAsync(requireCluster(c))).toMatchObject({ code: 'CLUSTER_FORBIDDEN', fault: 'infrastructure' });
      expect(await backendItem(c)).toMatchObject({ status: 'fail', code: 'CLUSTER_FORBIDDEN' });
    } finally {
      await close(api.server);
    }
  });

  it('a cluster that does not answer: CLUSTER_UNREACHABLE (an item that could not be checked; a typed error for commands)', async () => {
    const c = config({ sandbox: { driver: 'k8s', k8s: { kubeconfig: kubeconfigFile('refused.yaml', 'https://127.0.0.1:1') } } });
    const p = await probeCluster(c);
    expect(p).toMatchObject({ reachable: false, server: 'https://127.0.0.1:1', error: { code: 'CLUSTER_UNREACHABLE' } });
    const e = await thrownAsync(requireCluster(c));
    expect(e).toMatchObject({ code: 'CLUSTER_UNREACHABLE', fault: 'infrastructure' });
    expect(e.message).toContain('https://127.0.0.1:1');
    expect(e.zh).toContain('无应答');
    expect(await backendItem(c)).toMatchObject({ status: 'error', code: 'CLUSTER_UNREACHABLE', details: { server: 'https://127.0.0.1:1' } });
  });

  it('docker: the item says so and asks nothing of a cluster', async () => {
    const probe = vi.fn();
    expect(await backendItem(config(), probe)).toMatchObject({ id: 'backend', driver: 'docker', status: 'ok' });
    expect(probe).not.toHaveBeenCalled();
  });
});
