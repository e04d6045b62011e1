import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { hasEngine } from '../helpers/docker-env.js';
import { CONTAINER_LOG_CONFIG, DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan } from '../../runner/sandbox/driver.js';
import { guardChain } from '../../runner/sandbox/host-firewall.js';
import { LABEL, seatObjectName } from '../../runner/sandbox/labels.js';
import { requireImage } from '../helpers/images.js';
import { runDockerInSeatContract } from './docker-in-seat-contract.js';
import { runDriverContract } from './driver-contract.js';
import { seatImage } from './seat-image.js';

/**
 * Objects of any kind still carrying the session label, counted straight from the engine, and
 * the host's address-guard chains of the contract's seats (a and b), read from ebtables itself.
 */
async function leftovers(session: string): Promise<number> {
  const docker = new Docker();
  const label = [`${LABEL.session}=${session}`];
  const [cs, ns, vs] = await Promise.all([
    docker.listContainers({ all: true, filters: { label } }),
    docker.listNetworks({ filters: { label } }),
    docker.listVolumes({ filters: { label } }),
  ]);
  const tables = await promisify(execFile)('ebtables', ['-L']).then((r) => r.stdout, () => '');
  const guards = ['a', 'b'].filter((seat) => tables.includes(`Bridge chain: ${guardChain(seatObjectName({ session, seat }, 'workspace'))},`));
  return cs.length + ns.length + (vs.Volumes ?? []).length + guards.length;
}

describe.skipIf(!hasEngine)('docker', () => {
  runDriverContract({
    name: 'docker',
    makeDriver: () => new DockerDriver(),
    makeUnreachableDriver: () => new DockerDriver({ host: 'unix:///nonexistent/docker.sock' }),
    seatImage,
    leftovers,
  });
});

// Kubernetes seats judge nothing from the host's /proc, so these steps run against Docker only.
describe.skipIf(!hasEngine)('docker, docker-in-seat', () => {
  runDockerInSeatContract({
    name: 'docker',
    makeDriver: () => new DockerDriver(),
    workspaceImage: () => requireImage('workspace-cpu'),
    dindImage: () => requireImage('dind'),
    nestedImage: () => requireImage('app-base'),
  });
});

// The address guard is the host's ebtables chain per workspace: made with the seat, gone with it.
describe.skipIf(!hasEngine)('docker: a seat’s address guard lives exactly as long as the seat', () => {
  const session = `ct-guard-${randomBytes(3).toString('hex')}`;
  const driver = new DockerDriver();
  afterAll(async () => {
    await driver.sweep({ session });
  });

  it('provision adds the chain with its rules and jumps; destroy removes all of it', async () => {
    const chain = guardChain(seatObjectName({ session, seat: 'g' }, 'workspace'));
    const tables = async (): Promise<string> => (await promisify(execFile)('ebtables', ['-L', '--Lx'])).stdout;
    await driver.provision(parseSeatPlan({ session, seat: 'g', task: 'contract', workspace: { image: await seatImage() }, resources: { cpus: 0.5, memoryMiB: 256, pids: 64 } }));
    const made = await tables();
    // Four rules in the chain, and a jump to it from INPUT and FORWARD.
    expect(made).toContain(`Bridge chain: ${chain}, entries: 4,`);
    expect(made.split('\n').filter((l) => l.trim().endsWith(`-j ${chain}`))).toHaveLength(2);
    expect(await leftovers(session)).toBeGreaterThan(0);
    await driver.destroy({ session, seat: 'g' });
    expect(await tables()).not.toContain(chain);
  });
});

// Log files live on the host's disk beside the store: json-file rotation is a Docker matter.
describe.skipIf(!hasEngine)('docker: the host disk is bounded against a seat that prints without end', () => {
  const session = `ct-logs-${randomBytes(3).toString('hex')}`;
  const driver = new DockerDriver();
  afterAll(async () => {
    await driver.sweep({ session });
  });

  it('a service printing 48 MiB keeps at most max-file × max-size on the host; /dev/shm is 64 MiB', async () => {
    const image = await seatImage();
    // 48 MiB of 1 KiB lines, then idle: more than the three 10 MiB files can hold.
    const spew = ['sh', '-c', "head -c 50331648 /dev/zero | tr '\\0' x | fold -w 1023; echo done; exec sleep infinity"];
    await driver.provision(
      parseSeatPlan({
        session,
        seat: 'spew',
        task: 'contract',
        workspace: { image },
        services: [{ name: 'spew', image, command: spew }],
        resources: { cpus: 0.5, memoryMiB: 256, pids: 64 },
      }),
    );
    const docker = new Docker();
    const [c] = await docker.listContainers({ filters: { label: [`${LABEL.session}=${session}`, `${LABEL.role}=spew`] } });
    const info = await docker.getContainer(c!.Id).inspect();
    expect(info.HostConfig.LogConfig).toEqual(CONTAINER_LOG_CONFIG);
    // Wait (bounded) for the writer to finish: "done" is the last line it prints.
    const until = Date.now() + 120_000;
    let tail = '';
    while (Date.now() < until) {
      tail = ((await docker.getContainer(c!.Id).logs({ stdout: true, tail: 1 })) as unknown as Buffer).toString();
      if (tail.includes('done')) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(tail).toContain('done');
    const max = 10 * 1024 * 1024;
    const files = [info.LogPath, `${info.LogPath}.1`, `${info.LogPath}.2`, `${info.LogPath}.3`];
    const sizes = files.filter((f) => existsSync(f)).map((f) => statSync(f).size);
    expect(sizes.length, 'the log rotated, keeping three files').toBe(3);
    for (const n of sizes) expect(n).toBeLessThanOrEqual(max + 64 * 1024);
    const shm = await driver.exec({ session, seat: 'spew' }, { cmd: ['df', '-k', '--output=size', '/dev/shm'] });
    expect(shm.stdout.trim().split('\n').at(-1)?.trim()).toBe(String(64 * 1024));
  }, 180_000);
});

// Every seat's candidate is uid 1000, and inotify's limits are per uid across the host.
describe.skipIf(!hasEngine)('docker: per-uid kernel limits every seat shares (after host prepare)', () => {
  const session = `ct-uid-${randomBytes(3).toString('hex')}`;
  const driver = new DockerDriver();
  afterAll(async () => {
    await driver.sweep({ session });
  });

  it('a seat holding 300 inotify instances leaves the other seats theirs', async () => {
    const image = await seatImage();
    const plan = (seat: string) => parseSeatPlan({ session, seat, task: 'contract', workspace: { image }, resources: { cpus: 0.5, memoryMiB: 256, pids: 64 } });
    await Promise.all([driver.provision(plan('hog')), driver.provision(plan('other'))]);
    const hold = [
      'import ctypes, time',
      'libc = ctypes.CDLL(None)',
      'fds = [libc.inotify_init1(0) for _ in range(300)]',
      "open('/tmp/held', 'w').write(str(sum(f >= 0 for f in fds)))",
      'time.sleep(60)',
    ].join('\n');
    await driver.exec({ session, seat: 'hog' }, { cmd: ['sh', '-c', `nohup python3 -c "${hold}" >/dev/null 2>&1 &`] });
    let held = '';
    for (let i = 0; i < 50 && !held; i++) {
      held = (await driver.exec({ session, seat: 'hog' }, { cmd: ['cat', '/tmp/held'] })).stdout.trim();
      if (!held) await new Promise((r) => setTimeout(r, 200));
    }
    expect(held).toBe('300');
    const other = await driver.exec({ session, seat: 'other' }, { cmd: ['python3', '-c', 'import ctypes; print(ctypes.CDLL(None).inotify_init1(0))'] });
    expect(Number(other.stdout.trim())).toBeGreaterThanOrEqual(0);
  }, 120_000);
});
