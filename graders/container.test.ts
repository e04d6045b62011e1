/**
 * The container probe against a real seat daemon: the project's dind sidecar image started with
 * the docker driver's flags, the base image preloaded into it (no registry), an image built FROM
 * it and a container running there. Both ways: what matches passes, what differs fails; a daemon
 * that does not answer is an error.
 */
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerParamsSchema } from '../runner/tasks/probe-params.js';
import { buildTar } from '../runner/sandbox/tar.js';
import { hasEngine } from '../test/helpers/docker-env.js';
import { requireImage } from '../test/helpers/images.js';
import { containerProbe, isRootUser } from './container.js';
import { Deadline, runProbe, type SeatHandle } from './probe.js';

const docker = new Docker();
const TEST = 'container-probe';
const LABELS = { 'deploylab.component': 'test-container-probe', 'deploylab.test': TEST };
const NET = 'deploylab-test-container-probe';

async function removeOurs(): Promise<void> {
  const left = await docker.listContainers({ all: true, filters: { label: [`deploylab.test=${TEST}`] } });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
  const nets = await docker.listNetworks({ filters: { label: [`deploylab.test=${TEST}`] } });
  await Promise.all(nets.map((n) => docker.getNetwork(n.Id).remove().catch(() => undefined)));
}

const run = async (c: Docker.Container, cmd: string[]): Promise<void> => {
  const exec = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const s = await exec.start({});
  s.resume();
  await new Promise((r) => s.on('end', r));
};

describe.skipIf(!hasEngine)('container probe on a real seat daemon (dind sidecar)', () => {
  let dind: Docker.Container;
  let inner: Docker;
  let base: string;
  const seat = (alive = true): SeatHandle => ({
    id: TEST,
    labels: LABELS,
    async endpoint(port, o) {
      expect(o?.container).toBe('dind');
      const ip = (await dind.inspect()).NetworkSettings.Networks[NET]?.IPAddress ?? '';
      return { host: alive ? ip : '127.0.0.1', port: alive ? port : 1 };
    },
    async readFile() {
      return null;
    },
    async listProcesses() {
      return [];
    },
    async checkPath() {},
  });
  const probe = (p: unknown) => runProbe(containerProbe, seat(), ContainerParamsSchema.parse(p), Deadline.after(30_000));

  beforeAll(async () => {
    const dindImage = await requireImage('dind');
    base = await requireImage('base');
    await removeOurs();
    await docker.createNetwork({ Name: NET, Labels: LABELS, Internal: true });
    // The docker driver's sidecar settings (runner/sandbox/docker-driver.ts).
    dind = await docker.createContainer({
      Image: dindImage,
      Labels: LABELS,
      HostConfig: {
        NetworkMode: NET,
        CapDrop: ['SYS_RESOURCE'],
        CapAdd: ['ALL'],
        SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
        Binds: ['/sys/fs/cgroup:/sys/fs/cgroup:rw'],
        // Docker's tmpfs default is noexec: inner containers could not run anything.
        Tmpfs: { '/var/lib/docker': 'rw,exec,dev,suid' },
        Memory: 2048 * 1024 * 1024,
        PidsLimit: 1024,
        Init: true,
      },
    });
    await dind.start();
    const ip = (await dind.inspect()).NetworkSettings.Networks[NET]!.IPAddress;
    inner = new Docker({ host: ip, port: 2375, protocol: 'http' });
    const until = Date.now() + 60_000;
    for (;;) {
      try {
        await inner.ping();
        break;
      } catch {
        if (Date.now() > until) throw new Error('dind did not start');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    // Preload without a registry, as the driver does.
    await inner.loadImage((await docker.getImage(base).get()) as Readable);
    await inner.getImage(base).tag({ repo: 'deploylab/base', tag: 'latest' });
    const build = async (tag: string, dockerfile: string): Promise<void> => {
      const ctx = await buildTar([{ path: 'Dockerfile', content: dockerfile, mode: 0o644, uid: 0, gid: 0 }]);
      const stream = await inner.buildImage(ctx as unknown as NodeJS.ReadableStream, { t: tag, networkmode: 'none' });
      await new Promise((res, rej) => inner.modem.followProgress(stream, (err) => (err ? rej(err) : res(undefined))));
    };
    await build('exam/app:1.0', 'FROM deploylab/base:latest\nLABEL org.opencontainers.image.title=app\nEXPOSE 8000\nUSER candidate\nCMD ["sleep","infinity"]\n');
    await build('exam/rooty:1.0', 'FROM deploylab/base:latest\nEXPOSE 9000\nCMD ["sleep","infinity"]\n');
    const c = await inner.createContainer({
      Image: 'exam/app:1.0',
      name: 'exam-api-1',
      Labels: { 'com.docker.compose.service': 'api', 'com.docker.compose.project': 'exam' },
      Healthcheck: { Test: ['CMD', 'true'], Interval: 1e9, Retries: 1, StartPeriod: 0 },
      HostConfig: { RestartPolicy: { Name: 'unless-stopped' }, Memory: 256 * 1024 * 1024, NanoCpus: 5e8, NetworkMode: 'none' },
    });
    await c.start();
    const healthyBy = Date.now() + 20_000;
    while ((await c.inspect()).State.Health?.Status !== 'healthy' && Date.now() < healthyBy) await new Promise((r) => setTimeout(r, 500));
  }, 240_000);

  afterAll(async () => {
    if (dind) await run(dind, ['sh', '-c', 'docker -H tcp://127.0.0.1:2375 rm -f $(docker -H tcp://127.0.0.1:2375 ps -aq) || true']).catch(() => undefined);
    await removeOurs();
  }, 60_000);

  it('reads image config from the seat daemon: ports, non-root user, labels, built FROM the preloaded base', async () => {
    const ok = await probe({
      kind: 'container',
      image: { ref: 'exam/app:1.0', exposes: [8000], nonRootUser: true, labels: { 'org.opencontainers.image.title': 'app' }, basedOn: 'deploylab/base:latest' },
    });
    expect(ok.status, JSON.stringify(ok.summary)).toBe('pass');
    const bad = await probe({ kind: 'container', image: { ref: 'exam/rooty:1.0', exposes: [8000], nonRootUser: true, basedOn: 'deploylab/base:latest' } });
    expect(bad.status).toBe('fail');
    expect(bad.summary.en).toMatch(/exposes:8000, user/);
    // The base itself is not "built FROM" the base.
    const same = await probe({ kind: 'container', image: { ref: 'deploylab/base:latest', basedOn: 'deploylab/base:latest' } });
    expect(same.status).toBe('fail');
    const missing = await probe({ kind: 'container', image: { ref: 'exam/none:1', nonRootUser: true } });
    expect(missing.status).toBe('fail');
  }, 30_000);

  it('judges containers of the seat daemon by compose service: running, healthy, restart policy, limits, user', async () => {
    const ok = await probe({
      kind: 'container',
      match: { composeService: 'api' },
      expect: { healthy: true, restartPolicy: 'unless-stopped', maxMemoryMiB: 512, maxCpus: 1, nonRootUser: true, count: { min: 1, max: 1 } },
    });
    expect(ok.status, JSON.stringify(ok.evidence)).toBe('pass');
    const wrong = await probe({ kind: 'container', match: { composeService: 'api' }, expect: { restartPolicy: 'always', maxMemoryMiB: 128 } });
    expect(wrong.status).toBe('fail');
    expect(wrong.summary.en).toMatch(/restartPolicy, maxMemoryMiB/);
    const none = await probe({ kind: 'container', match: { composeService: 'nginx' } });
    expect(none.status).toBe('fail');
  }, 30_000);

  it('is an error when the seat daemon does not answer', async () => {
    const o = await runProbe(containerProbe, seat(false), ContainerParamsSchema.parse({ kind: 'container', match: { name: 'x' } }), Deadline.after(10_000));
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_INNER_DAEMON_UNREACHABLE');
  });

  it('tells root users apart', () => {
    for (const u of ['', 'root', '0', '0:0', 'root:app']) expect(isRootUser(u), u).toBe(true);
    for (const u of ['candidate', '1000', '1000:1000', 'app:root']) expect(isRootUser(u), u).toBe(false);
  });
});
