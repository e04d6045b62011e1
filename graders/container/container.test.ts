/**
 * The container probe against a real seat daemon: the project's dind sidecar image started with
 * the docker driver's flags, the base image preloaded into it (no registry), an image built FROM
 * it and a container running there. Both ways: what matches passes, what differs fails; a daemon
 * that does not answer is an error.
 */
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerParamsSchema } from './params.js';
import { buildTar } from '../../runner/sandbox/tar.js';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { requireImage } from '../../test/helpers/images.js';
import { containerProbe, isRootUser } from './container.js';
import { Deadline, runProbe, type SeatHandle } from '../probe.js';

const docker = new Docker();
const COPY_DOCKERFILE = 'FROM deploylab/base:latest\nCOPY app.txt /app/app.txt\nUSER candidate\nCMD ["sleep","infinity"]\n';
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
  const seatFiles = new Map<string, string>();
  const seat = (alive = true): SeatHandle => ({
    id: TEST,
    labels: LABELS,
    async endpoint(port, o) {
      expect(o?.container).toBe('dind');
      const ip = (await dind.inspect()).NetworkSettings.Networks[NET]?.IPAddress ?? '';
      return { host: alive ? ip : '127.0.0.1', port: alive ? port : 1 };
    },
    async readFile(path) {
      const text = seatFiles.get(path);
      if (text === undefined) return null;
      const data = Buffer.from(text);
      return { path, size: data.length, mode: 0o644, uid: 1000, gid: 1000, data, truncated: false };
    },
    async listProcesses() {
      // The sidecar's init, as the driver lists it from the host: the inner containers descend from it.
      const pid = (await dind.inspect()).State.Pid;
      return [{ hostPid: pid, ppid: 0, user: 'root', command: 'docker-init', role: 'dind' }];
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
    const build = async (tag: string, dockerfile: string, files: Record<string, string> = {}): Promise<void> => {
      const ctx = await buildTar([
        { path: 'Dockerfile', content: dockerfile, mode: 0o644, uid: 0, gid: 0 },
        ...Object.entries(files).map(([path, content]) => ({ path, content, mode: 0o644, uid: 0, gid: 0 })),
      ]);
      const stream = await inner.buildImage(ctx as unknown as NodeJS.ReadableStream, { t: tag, networkmode: 'none' });
      await new Promise((res, rej) => inner.modem.followProgress(stream, (err) => (err ? rej(err) : res(undefined))));
    };
    await build('exam/app:1.0', 'FROM deploylab/base:latest\nLABEL org.opencontainers.image.title=app\nEXPOSE 8000\nUSER candidate\nCMD ["sleep","infinity"]\n');
    await build('exam/rooty:1.0', 'FROM deploylab/base:latest\nEXPOSE 9000\nCMD ["sleep","infinity"]\n');
    await build('exam/copy:1.0', COPY_DOCKERFILE, { 'app.txt': 'the app\n' });
    // A service whose health shows: it bumps a counter ten times a second, as the candidate user.
    await build('exam/beat:1.0', 'FROM deploylab/base:latest\nUSER candidate\nCMD ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/beat; sleep 0.1; done"]\n');
    const beat = await inner.createContainer({
      Image: 'exam/beat:1.0',
      name: 'exam-beat-1',
      Labels: { 'com.docker.compose.service': 'beat' },
      // Really tests the service: the counter must move within half a second.
      Healthcheck: { Test: ['CMD-SHELL', 'a=$(cat /tmp/beat); sleep 0.5; [ "$(cat /tmp/beat)" != "$a" ]'], Interval: 1e9, Timeout: 2e9, Retries: 3, StartPeriod: 0 },
      HostConfig: { NetworkMode: 'none' },
    });
    await beat.start();
    const over = await inner.createContainer({ Image: 'exam/app:1.0', name: 'exam-over-1', Cmd: ['sleep', '1000'], Labels: { 'com.docker.compose.service': 'over' }, HostConfig: { NetworkMode: 'none' } });
    await over.start();
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
    while ((await beat.inspect()).State.Health?.Status !== 'healthy' && Date.now() < healthyBy + 10_000) await new Promise((r) => setTimeout(r, 500));
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

  it('builtFrom: the history beyond the base lists the Dockerfile’s steps; addsFiles: a COPY put files in', async () => {
    const spec = (ref: string) => ({ kind: 'container', image: { ref, basedOn: 'deploylab/base:latest', builtFrom: { dockerfile: '/workspace/Dockerfile' }, addsFiles: true } });
    seatFiles.set('/workspace/Dockerfile', COPY_DOCKERFILE);
    const ok = await probe(spec('exam/copy:1.0'));
    expect(ok.status, JSON.stringify(ok.evidence)).toBe('pass');
    // Another file's steps (one instruction more) are not what the image was built from.
    seatFiles.set('/workspace/Dockerfile', COPY_DOCKERFILE + 'EXPOSE 8000\n');
    const other = await probe(spec('exam/copy:1.0'));
    expect(other.status).toBe('fail');
    expect(other.summary.en).toContain('builtFrom');
    // A metadata-only image matches its Dockerfile but adds no files.
    seatFiles.set('/workspace/Dockerfile', 'FROM deploylab/base:latest\nLABEL org.opencontainers.image.title=app\nEXPOSE 8000\nUSER candidate\nCMD ["sleep","infinity"]\n');
    const meta = await probe(spec('exam/app:1.0'));
    expect(meta.status).toBe('fail');
    expect(meta.summary.en).toMatch(/\(addsFiles\)/);
    // The base re-tagged: nothing beyond it.
    await inner.getImage('deploylab/base:latest').tag({ repo: 'exam/tagged', tag: '1.0' });
    const tagged = await probe(spec('exam/tagged:1.0'));
    expect(tagged.summary.en).toMatch(/basedOn, addsFiles, builtFrom/);
    seatFiles.delete('/workspace/Dockerfile');
    const noFile = await probe(spec('exam/copy:1.0'));
    expect(noFile.status).toBe('fail');
  }, 30_000);

  it('imageCommand: a container whose command was overridden does not run its image', async () => {
    expect((await probe({ kind: 'container', match: { composeService: 'beat' }, expect: { imageCommand: true } })).status).toBe('pass');
    const o = await probe({ kind: 'container', match: { composeService: 'over' }, expect: { imageCommand: true } });
    expect(o.status).toBe('fail');
    expect(JSON.stringify(o.evidence)).toContain('overridden: sleep 1000');
  });

  it('healthcheckFailsWhenStopped: a real healthcheck fails while the container is stopped; `true` does not', async () => {
    const real = await probe({ kind: 'container', match: { composeService: 'beat' }, expect: { healthy: true, healthcheckFailsWhenStopped: true } });
    expect(real.status, JSON.stringify(real.evidence)).toBe('pass');
    const fake = await probe({ kind: 'container', match: { composeService: 'api' }, expect: { healthy: true, healthcheckFailsWhenStopped: true } });
    expect(fake.status).toBe('fail');
    expect(JSON.stringify(fake.evidence)).toContain('succeeds while the container');
    // Its processes run again afterwards: the counter moves.
    const c = inner.getContainer('exam-beat-1');
    expect((await c.inspect()).State.Status).toBe('running');
    const beats = async (): Promise<string> => {
      const e = await c.exec({ Cmd: ['cat', '/tmp/beat'], AttachStdout: true });
      const st = await e.start({});
      let out = '';
      st.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((r) => st.on('end', r));
      return out;
    };
    const first = await beats();
    await new Promise((r) => setTimeout(r, 400));
    expect(await beats()).not.toBe(first);
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
