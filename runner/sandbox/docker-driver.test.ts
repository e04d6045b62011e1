import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { DEV_SEAT_IMAGE } from '../../test/conformance/seat-image.js';
import { DockerDriver } from './docker-driver.js';
import { parseSeatPlan } from './driver.js';

/**
 * Docker-in-seat needs an image with dockerd. workspace-cpu carries only the docker client, so
 * this runs where an image with the daemon is present (the development seat image here).
 */
const docker = new Docker();
const dindImage = await docker.getImage(DEV_SEAT_IMAGE).inspect().then(() => DEV_SEAT_IMAGE, () => undefined);
if (hasEngine && !dindImage) process.stderr.write(`\n!!! no image with dockerd (${DEV_SEAT_IMAGE}): docker-in-seat test SKIPPED !!!\n\n`);

describe.skipIf(!hasEngine || !dindImage)('docker-in-seat sidecar', () => {
  const session = `dind-${randomBytes(3).toString('hex')}`;
  const tiny = `deploylab-dev/tiny:${session}`;
  const driver = new DockerDriver();
  afterAll(async () => {
    await driver.sweep({ session });
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

    await driver.provision(parseSeatPlan({
      session, seat: 'a', task: 'dind', workspace: { image: dindImage! },
      dockerInSeat: { enabled: true, preload: [tiny] },
    }));
    await driver.provision(parseSeatPlan({ session, seat: 'b', task: 'dind', workspace: { image: dindImage! } }));
    const st = await driver.status({ session, seat: 'a' });
    expect(st.containers.map((c) => c.role).sort()).toEqual(['dind', 'workspace']);
    const imgs = await driver.exec({ session, seat: 'a' }, { cmd: ['sh', '-c', 'echo $DOCKER_HOST; docker images --format "{{.Repository}}:{{.Tag}}"'], deadlineMs: 30_000 });
    expect(imgs.stdout).toContain('tcp://dind:2375');
    expect(imgs.stdout).toContain(tiny);
    // The candidate's own container is not privileged and has no docker socket.
    const info = await docker.getContainer(st.containers.find((c) => c.role === 'workspace')!.id).inspect();
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.CapAdd).not.toContain('ALL');
    expect((info.Mounts ?? []).some((m) => String(m.Source).includes('docker.sock'))).toBe(false);
    const other = await driver.exec({ session, seat: 'b' }, { cmd: ['docker', '-H', 'tcp://dind:2375', 'info'], deadlineMs: 20_000 });
    expect(other.exitCode).not.toBe(0);
  }, 240_000);
});
