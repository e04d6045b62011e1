import Docker from 'dockerode';
import { describe } from 'vitest';
import { hasEngine } from '../helpers/docker-env.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { LABEL } from '../../runner/sandbox/labels.js';
import { requireImage } from '../helpers/images.js';
import { runDockerInSeatContract } from './docker-in-seat-contract.js';
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
