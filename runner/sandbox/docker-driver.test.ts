import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { requireImage } from '../../test/helpers/images.js';
import { DockerDriver } from './docker-driver.js';
import { parseSeatPlan } from './driver.js';
import { sessionNetworkName } from './labels.js';

const run = promisify(execFile);
const docker = new Docker();
const images = hasEngine ? await Promise.all([requireImage('workspace-cpu'), requireImage('dind')]).catch(() => null) : null;
if (hasEngine && !images) process.stderr.write('\n!!! workspace-cpu or dind image not built: docker-driver tests SKIPPED !!!\n\n');
const [workspaceImage, dindImage] = images ?? ['', ''];

/** Whether `from` gets a TCP connection to host:port (bash's /dev/tcp; exit 0 = connected). */
async function connects(driver: DockerDriver, from: { session: string; seat: string }, host: string, port: number): Promise<boolean> {
  const r = await driver.exec(from, { cmd: ['timeout', '4', 'bash', '-c', `echo > /dev/tcp/${host}/${port}`], deadlineMs: 10_000 });
  return r.exitCode === 0;
}

describe.skipIf(!images)('docker driver: session network, sidecars, allow-list', () => {
  const session = `dd-${randomBytes(3).toString('hex')}`;
  const tiny = `deploylab-dev/tiny:${session}`;
  const mirror = `dl-dev-mirror-${session}`;
  const driver = new DockerDriver();
  afterAll(async () => {
    await driver.sweep({ session });
    await docker.getContainer(mirror).remove({ force: true }).catch(() => undefined);
    await docker.getImage(tiny).remove().catch(() => undefined);
  });

  it('the candidate reaches its own seat daemon at tcp://dind:2375 with preloaded images; another seat cannot', async () => {
    // A one-file image built here (FROM scratch needs no registry) to preload into the seat daemon.
    const ctx = mkdtempSync(join(tmpdir(), 'dl-tiny-'));
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\nLABEL deploylab.component=dev\n');
    writeFileSync(join(ctx, 'hello.txt'), 'hi\n');
    const build = await docker.buildImage({ context: ctx, src: ['Dockerfile', 'hello.txt'] }, { t: tiny });
    await new Promise((res, rej) => docker.modem.followProgress(build, (e) => (e ? rej(e) : res(null))));
    rmSync(ctx, { recursive: true, force: true });

    const a = { session, seat: 'a' };
    const b = { session, seat: 'b' };
    await driver.provision(parseSeatPlan({
      ...a, task: 'dind', workspace: { image: workspaceImage },
      dockerInSeat: { enabled: true, image: dindImage, preload: [tiny] },
    }));
    await driver.provision(parseSeatPlan({ ...b, task: 'dind', workspace: { image: workspaceImage } }));
    const st = await driver.status(a);
    expect(st.containers.map((c) => c.role).sort()).toEqual(['dind', 'workspace']);
    const imgs = await driver.exec(a, { cmd: ['sh', '-c', 'echo $DOCKER_HOST; docker images --format "{{.Repository}}:{{.Tag}}"'], deadlineMs: 30_000 });
    expect(imgs.stdout).toContain('tcp://dind:2375');
    expect(imgs.stdout).toContain(tiny);
    // The candidate's own container is not privileged and has no docker socket.
    const info = await docker.getContainer(st.containers.find((c) => c.role === 'workspace')!.id).inspect();
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.CapAdd).not.toContain('ALL');
    expect((info.Mounts ?? []).some((m) => String(m.Source).includes('docker.sock'))).toBe(false);
    // Both seats share the session network, yet b reaches neither a's daemon nor a's workspace.
    const aIp = info.NetworkSettings.Networks[sessionNetworkName(session)]?.IPAddress;
    expect(aIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(await connects(driver, b, aIp!, 2375)).toBe(false);
    expect((await driver.exec(b, { cmd: ['docker', '-H', 'tcp://dind:2375', 'info'], deadlineMs: 20_000 })).exitCode).not.toBe(0);
    // Graders reach the sidecar's port at the seat's address.
    const ep = await driver.endpoint(a, 2375, { container: 'dind' });
    expect(ep.host).toBe(aIp);
    const ping = await fetch(`http://${ep.host}:${ep.port}/_ping`);
    expect(await ping.text()).toBe('OK');
    // The seat daemon's data volume lies on the host engine's disk: where the host runs overlay2,
    // so does the seat daemon (vfs would copy every image for each build step and container).
    const inner = (await (await fetch(`http://${ep.host}:${ep.port}/info`)).json()) as { Driver: string };
    if ((await docker.info()).Driver === 'overlay2') expect(inner.Driver).toBe('overlay2');
  }, 240_000);

  it('an allow-listed in-room service is reachable from that seat only, and its rules go with the seat', async () => {
    await docker.createContainer({
      name: mirror,
      Image: workspaceImage,
      Cmd: ['python3', '-m', 'http.server', '8000'],
      Labels: { 'deploylab.component': 'dev' },
      HostConfig: { NetworkMode: 'bridge' },
    }).then((c) => c.start());
    const c = { session, seat: 'c' };
    await driver.provision(parseSeatPlan({ ...c, task: 'allow', workspace: { image: workspaceImage }, network: { allow: [{ target: mirror, alias: 'mirror' }] } }));
    const got = await driver.exec(c, { cmd: ['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', 'http://mirror:8000/'], deadlineMs: 15_000 });
    expect(got.stdout).toBe('200');
    const mirrorIp = (await docker.getContainer(mirror).inspect()).NetworkSettings.Networks[sessionNetworkName(session)]?.IPAddress;
    expect(mirrorIp).toBeTruthy();
    expect(await connects(driver, { session, seat: 'b' }, mirrorIp!, 8000)).toBe(false);
    const rules = async (): Promise<number> => (await run('iptables', ['-S', 'DOCKER-USER'])).stdout.split('\n').filter((l) => l.includes(`dl-${session}-c-workspace`)).length;
    expect(await rules()).toBe(2);
    await driver.destroy(c);
    expect(await rules()).toBe(0);
  }, 120_000);

  it('the workdir is the candidate\'s whether the image ships it or not', async () => {
    for (const [seat, workdir] of [['w1', '/workspace'], ['w2', '/srv/answers'], ['w3', '/srv/answers']] as const) {
      await driver.provision(parseSeatPlan({ session, seat, task: 'wd', workspace: { image: workspaceImage, workdir } }));
      const r = await driver.exec({ session, seat }, { cmd: ['sh', '-c', 'touch mine && stat -c %U .'] });
      expect([seat, r.exitCode, r.stdout.trim()]).toEqual([seat, 0, 'candidate']);
      await driver.destroy({ session, seat });
    }
  }, 120_000);

  it('the last seat destroyed takes the session network with it', async () => {
    await driver.destroy({ session, seat: 'a' });
    expect((await docker.listNetworks({ filters: { name: [sessionNetworkName(session)] } })).length).toBe(1);
    await driver.destroy({ session, seat: 'b' });
    const left = await docker.listNetworks({ filters: { label: [`deploylab.session=${session}`] } });
    expect(left).toEqual([]);
  }, 60_000);
});
