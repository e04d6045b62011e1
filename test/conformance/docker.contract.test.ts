import Docker from 'dockerode';
import { describe } from 'vitest';
import { hasEngine } from '../helpers/docker-env.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { LABEL } from '../../runner/sandbox/labels.js';
import { runDriverContract } from './driver-contract.js';
import { seatImage } from './seat-image.js';

/** Objects of any kind still carrying the session label, counted straight from the engine. */
async function leftovers(session: string): Promise<number> {
  const docker = new Docker();
  const label = [`${LABEL.session}=${session}`];
  const [cs, ns, vs] = await Promise.all([
    docker.listContainers({ all: true, filters: { label } }),
    docker.listNetworks({ filters: { label } }),
    docker.listVolumes({ filters: { label } }),
  ]);
  return cs.length + ns.length + (vs.Volumes ?? []).length;
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
