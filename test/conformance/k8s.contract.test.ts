import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { describe } from 'vitest';
import { K8sDriver } from '../../runner/sandbox/k8s-driver.js';
import { LABEL } from '../../runner/sandbox/labels.js';
import { requireImage } from '../helpers/images.js';
import { runDriverContract } from './driver-contract.js';

/**
 * The same contract on a real cluster, whenever KUBECONFIG is set. The images must be pullable by
 * the cluster under the refs the image helper returns. Seat endpoints are cluster DNS names, so
 * the reachability checks run only from inside the cluster (KUBERNETES_SERVICE_HOST is set there).
 */
const kubeconfig = process.env.KUBECONFIG;
if (!kubeconfig) {
  process.stderr.write('\n!!! KUBECONFIG is not set: the Kubernetes driver contract suite is SKIPPED (no cluster here). !!!\n\n');
}

describe.skipIf(!kubeconfig)('k8s', () => {
  runDriverContract({
    name: 'k8s',
    diskWatch: false,
    makeDriver: async () => new K8sDriver({ toolboxImage: await requireImage('toolbox') }),
    makeUnreachableDriver: () => {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'none', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
        users: [{ name: 'none' }],
        contexts: [{ name: 'none', cluster: 'none', user: 'none' }],
        currentContext: 'none',
      });
      return new K8sDriver({ toolboxImage: 'unused', kubeConfig: kc });
    },
    seatImage: () => requireImage('workspace-cpu'),
    leftovers: async (session) => {
      const kc = new KubeConfig();
      kc.loadFromDefault();
      const core = kc.makeApiClient(CoreV1Api);
      // Namespace deletion is asynchronous: wait (bounded) until terminating ones are gone.
      for (let i = 0; ; i++) {
        const list = await core.listNamespace({ labelSelector: `${LABEL.session}=${session}` });
        if (list.items.length === 0 || i >= 120) return list.items.length;
        if (list.items.some((n) => !n.metadata?.deletionTimestamp)) return list.items.length;
        await new Promise((r) => setTimeout(r, 1000));
      }
    },
    endpointsReachable: Boolean(process.env.KUBERNETES_SERVICE_HOST),
  });
});
