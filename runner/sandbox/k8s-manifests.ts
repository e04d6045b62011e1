import type { IObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta';
import type { ILimitRange, INamespace, IPod, IResourceQuota, IService, IContainer } from 'kubernetes-models/v1';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { DIND_CAPABILITIES, DIND_COMMAND, DIND_PORT, SEAT_CAPABILITIES, type SeatPlan, type SeatRef } from './driver.js';
import { LABEL, seatLabels } from './labels.js';

/**
 * Pure rendering of one seat as Kubernetes objects, from the same SeatPlan the Docker driver uses.
 * Typed with kubernetes-models, so an unknown field fails to compile; the tests validate every
 * object against the Kubernetes OpenAPI schemas that package ships (offline).
 *
 * Layout: namespace `dl-<session>-<seat>`; pod `workspace` = the candidate's container plus the
 * trusted `files` sidecar (sharing the workspace volume and the process namespace) through which
 * the harness reads files and lists processes without running candidate binaries; one pod and one
 * Service per plan service; a `dind` pod when docker-in-seat is on.
 */

export interface K8sRenderOptions {
  /** Trusted image of the `files` sidecar (tar, ps, sleep): the project's toolbox image. */
  toolboxImage: string;
  /** Label that marks the harness's own namespace; graders there may reach seat services. */
  graderNamespaceLabel?: { key: string; value: string };
}

export type SeatManifest = INamespace | IResourceQuota | ILimitRange | INetworkPolicy | IPod | IService;

export const WORKSPACE_VOLUME = 'workspace';
export const FILES_CONTAINER = 'files';
export const FROZEN_LABEL = 'deploylab.frozen';

export function namespaceOf(ref: SeatRef): string {
  return `dl-${ref.session}-${ref.seat}`.slice(0, 63).replace(/-+$/, '');
}


function resources(plan: SeatPlan): IContainer['resources'] {
  const limits: Record<string, string> = {
    cpu: `${Math.round(plan.resources.cpus * 1000)}m`,
    memory: `${plan.resources.memoryMiB}Mi`,
    'ephemeral-storage': `${plan.resources.diskMiB}Mi`,
  };
  return { limits, requests: { cpu: `${Math.max(10, Math.round(plan.resources.cpus * 250))}m`, memory: `${Math.ceil(plan.resources.memoryMiB / 4)}Mi` } };
}

const proto = (p: 'tcp' | 'udp'): 'TCP' | 'UDP' => (p === 'udp' ? 'UDP' : 'TCP');

const sidecarResources = { limits: { cpu: '200m', memory: '128Mi', 'ephemeral-storage': '1Gi' }, requests: { cpu: '10m', memory: '16Mi' } };

export function renderSeat(plan: SeatPlan, opts: K8sRenderOptions): SeatManifest[] {
  const ref = { session: plan.session, seat: plan.seat };
  const namespace = namespaceOf(ref);
  const meta = (name: string, role: string): IObjectMeta => ({ name, namespace, labels: seatLabels(plan, role) });
  const grader = opts.graderNamespaceLabel ?? { key: LABEL.component, value: 'harness' };
  const podCount = 1 + plan.services.length + (plan.dockerInSeat.enabled ? 1 : 0);
  const out: SeatManifest[] = [];

  out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { ...seatLabels(plan, 'namespace'), [FROZEN_LABEL]: 'false' } } });

  // Quota for the whole seat: every pod at the plan's limits, plus the sidecar.
  const cpuMilli = Math.round(plan.resources.cpus * 1000) * podCount + 200;
  const memMi = plan.resources.memoryMiB * podCount + 128 + (plan.dockerInSeat.enabled ? plan.resources.memoryMiB : 0);
  const hard: Record<string, string> = {
    pods: String(podCount),
    'limits.cpu': `${cpuMilli}m`,
    'limits.memory': `${memMi}Mi`,
    'requests.cpu': `${cpuMilli}m`,
    'requests.memory': `${memMi}Mi`,
    'limits.ephemeral-storage': `${plan.resources.diskMiB * podCount + 1024}Mi`,
    services: String(podCount),
    'services.nodeports': '0',
    'services.loadbalancers': '0',
    persistentvolumeclaims: '0',
  };
  if (plan.gpu.devices.length > 0) hard['requests.nvidia.com/gpu'] = String(plan.gpu.devices.length);
  out.push({ apiVersion: 'v1', kind: 'ResourceQuota', metadata: meta('seat-quota', 'quota'), spec: { hard } });

  out.push({
    apiVersion: 'v1',
    kind: 'LimitRange',
    metadata: meta('seat-limits', 'limits'),
    spec: {
      limits: [
        {
          type: 'Container',
          default: { cpu: `${Math.round(plan.resources.cpus * 1000)}m`, memory: `${plan.resources.memoryMiB}Mi` },
          defaultRequest: { cpu: '50m', memory: '64Mi' },
          max: { cpu: `${Math.round(plan.resources.cpus * 1000)}m`, memory: `${plan.resources.memoryMiB * (plan.dockerInSeat.enabled ? 2 : 1)}Mi` },
        },
      ],
    },
  });

  // Default deny both ways, then: pods of the seat talk among themselves; the harness namespace
  // reaches in; DNS; allow-listed in-room services; everything out only if egress is open.
  out.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta('default-deny', 'netpol'), spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } });
  out.push({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta('seat-allow', 'netpol'),
    spec: {
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        { from: [{ podSelector: {} }] },
        { from: [{ namespaceSelector: { matchLabels: { [grader.key]: grader.value } } }] },
      ],
      egress: [
        { to: [{ podSelector: {} }] },
        {
          to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
          ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
        },
        ...plan.network.allow.map((a) => ({ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': a.target } } }] })),
        ...(plan.network.egress === 'open' ? [{}] : []),
      ],
    },
  });

  const ws = plan.workspace;
  const env = Object.entries(ws.env).map(([name, value]) => ({ name, value }));
  if (plan.dockerInSeat.enabled) env.push({ name: 'DOCKER_HOST', value: `tcp://dind:${DIND_PORT}` });
  const wsResources = resources(plan)!;
  if (plan.gpu.devices.length > 0) {
    // The device plugin picks the GPUs on the node; UUID pinning is a Docker-driver feature.
    wsResources.limits = { ...wsResources.limits, 'nvidia.com/gpu': String(plan.gpu.devices.length) };
  }
  out.push({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta('workspace', 'workspace'),
    spec: {
      hostname: ws.hostname,
      shareProcessNamespace: true,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      restartPolicy: 'Never',
      containers: [
        {
          name: 'workspace',
          image: ws.image,
          command: ws.command ?? ['sleep', 'infinity'],
          env,
          workingDir: ws.workdir,
          ports: ws.ports.map((p) => ({ name: p.name, containerPort: p.port, protocol: proto(p.protocol) })),
          resources: wsResources,
          securityContext: { privileged: false, capabilities: { drop: ['ALL'], add: [...SEAT_CAPABILITIES] }, seccompProfile: { type: 'RuntimeDefault' } },
          volumeMounts: [{ name: WORKSPACE_VOLUME, mountPath: ws.workdir }],
        },
        {
          name: FILES_CONTAINER,
          image: opts.toolboxImage,
          command: ['sleep', 'infinity'],
          resources: sidecarResources,
          securityContext: { privileged: false, capabilities: { drop: ['ALL'], add: ['DAC_READ_SEARCH', 'SYS_PTRACE'] }, seccompProfile: { type: 'RuntimeDefault' } },
          // Read-only: the harness reads the candidate's files here, it never writes through it.
          volumeMounts: [{ name: WORKSPACE_VOLUME, mountPath: ws.workdir, readOnly: true }],
        },
      ],
      securityContext: { fsGroup: 1000 },
      volumes: [{ name: WORKSPACE_VOLUME, emptyDir: { sizeLimit: `${plan.resources.diskMiB}Mi` } }],
    },
  });
  if (ws.ports.length > 0) {
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('workspace', 'workspace'),
      spec: { selector: { [LABEL.role]: 'workspace' }, ports: ws.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.port, protocol: proto(p.protocol) })) },
    });
  }

  for (const svc of plan.services) {
    out.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: meta(svc.name, svc.name),
      spec: {
        hostname: svc.name,
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        restartPolicy: 'Never',
        containers: [
          {
            name: svc.name,
            image: svc.image,
            ...(svc.command ? { command: svc.command } : {}),
            env: Object.entries(svc.env).map(([name, value]) => ({ name, value })),
            ports: svc.ports.map((p) => ({ name: p.name, containerPort: p.port, protocol: proto(p.protocol) })),
            resources: resources(plan),
            securityContext: { privileged: false, capabilities: { drop: ['ALL'], add: [...SEAT_CAPABILITIES] }, seccompProfile: { type: 'RuntimeDefault' } },
          },
        ],
      },
    });
    if (svc.ports.length > 0) {
      out.push({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: meta(svc.name, svc.name),
        spec: { selector: { [LABEL.role]: svc.name }, ports: svc.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.port, protocol: proto(p.protocol) })) },
      });
    }
  }

  if (plan.dockerInSeat.enabled) {
    out.push({
      apiVersion: 'v1',
      kind: 'Pod',
      // The field needs 1.30; older clusters (Debian's 1.20) read the beta annotation and drop the field.
      metadata: { ...meta('dind', 'dind'), annotations: { 'container.apparmor.security.beta.kubernetes.io/dind': 'unconfined' } },
      spec: {
        hostname: 'dind',
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        restartPolicy: 'Never',
        containers: [
          {
            name: 'dind',
            image: plan.dockerInSeat.image ?? ws.image,
            command: [...DIND_COMMAND],
            ports: [{ name: 'docker', containerPort: DIND_PORT }],
            resources: {
              limits: { cpu: `${Math.round(plan.resources.cpus * 1000)}m`, memory: `${plan.resources.memoryMiB * 2}Mi`, 'ephemeral-storage': `${plan.resources.diskMiB}Mi` },
            },
            // The Docker driver's sidecar profile: only what a nested dockerd needs (no SYS_TIME,
            // SYS_MODULE, SYS_RAWIO, SYS_BOOT, SYSLOG, MAC_*), no seccomp filter (runc needs keyctl),
            // AppArmor unconfined (docker-default forbids mount); the pod's cgroup namespace is its
            // own under cgroup v2. Not exercised here: no cluster.
            securityContext: {
              privileged: false,
              capabilities: { drop: ['ALL'], add: [...DIND_CAPABILITIES] },
              seccompProfile: { type: 'Unconfined' },
              appArmorProfile: { type: 'Unconfined' },
            },
            volumeMounts: [{ name: 'docker-data', mountPath: '/var/lib/docker' }],
          },
        ],
        volumes: [{ name: 'docker-data', emptyDir: { sizeLimit: `${plan.resources.diskMiB}Mi` } }],
      },
    });
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('dind', 'dind'),
      spec: { selector: { [LABEL.role]: 'dind' }, ports: [{ name: 'docker', port: DIND_PORT, targetPort: DIND_PORT }] },
    });
  }
  return out;
}
