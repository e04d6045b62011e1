import { describe, expect, it } from 'vitest';
import { LimitRange, Namespace, Pod, ResourceQuota, Service } from 'kubernetes-models/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { IPod, IResourceQuota } from 'kubernetes-models/v1';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { parseSeatPlan, type SeatPlanInput } from './driver.js';
import { namespaceOf, renderSeat, type SeatManifest } from './k8s-manifests.js';

/** Validate one object against the Kubernetes OpenAPI schema of its kind (kubernetes-models, offline). */
function validate(m: SeatManifest): void {
  const cls = { Namespace, ResourceQuota, LimitRange, NetworkPolicy, Pod, Service }[m.kind as string];
  if (!cls) throw new Error(`no schema for ${m.kind}`);
  new (cls as new (x: unknown) => { validate(): void })(m).validate();
}

const base: SeatPlanInput = {
  session: 'room-1',
  seat: 'seat-07',
  task: 'serve-llm',
  workspace: { image: 'deploylab/workspace-cpu:abc', ports: [{ name: 'api', port: 8000 }], env: { MODEL: '/opt/models/tiny.gguf' } },
  services: [{ name: 'redis', image: 'deploylab/workspace-cpu:abc', command: ['redis-server'], ports: [{ name: 'redis', port: 6379 }] }],
  resources: { cpus: 2, memoryMiB: 4096, pids: 512 },
  network: { allow: [{ target: 'model-mirror', alias: 'mirror' }] },
  gpu: { devices: ['GPU-00000000-0000-0000-0000-000000000000'] },
  dockerInSeat: { enabled: true },
};
const opts = { toolboxImage: 'deploylab/toolbox:abc' };

describe('Kubernetes manifests of a seat', () => {
  const objs = renderSeat(parseSeatPlan(base), opts);

  it('every rendered object is valid against the Kubernetes schemas', () => {
    expect(objs.map((o) => o.kind)).toEqual(['Namespace', 'ResourceQuota', 'LimitRange', 'NetworkPolicy', 'NetworkPolicy', 'Pod', 'Service', 'Pod', 'Service', 'Pod', 'Service']);
    for (const o of objs) validate(o);
    const minimal = renderSeat(parseSeatPlan({ session: 's', seat: 'a', task: 't', workspace: { image: 'x' } }), opts);
    for (const o of minimal) validate(o);
    expect(minimal.map((o) => o.kind)).toEqual(['Namespace', 'ResourceQuota', 'LimitRange', 'NetworkPolicy', 'NetworkPolicy', 'Pod']);
  });

  it('the validator does reject a broken object (so the check above can fail)', () => {
    const pod = structuredClone(objs.find((o) => o.kind === 'Pod')) as IPod;
    (pod.spec!.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = 'eighty';
    expect(() => validate(pod)).toThrow(/containerPort must be integer/);
    const svc = structuredClone(objs.find((o) => o.kind === 'Service')) as { spec: { ports: { port: unknown }[] } };
    svc.spec.ports[0]!.port = 'http';
    expect(() => validate(svc as SeatManifest)).toThrow(/port must be integer/);
  });

  it('namespace, labels, quota and limits come from the plan', () => {
    const ns = objs[0]!;
    expect(ns.metadata!.name).toBe(namespaceOf({ session: 'room-1', seat: 'seat-07' }));
    for (const o of objs) {
      expect(o.metadata!.labels!['deploylab.session']).toBe('room-1');
      expect(o.metadata!.labels!['deploylab.seat']).toBe('seat-07');
      expect(o.metadata!.labels!['deploylab.task']).toBe('serve-llm');
      expect(o.metadata!.labels!['deploylab.version']).toBeDefined();
    }
    const quota = objs[1] as IResourceQuota;
    expect(quota.spec!.hard).toMatchObject({ pods: '3', 'requests.nvidia.com/gpu': '1', 'services.nodeports': '0' });
  });

  it('default deny plus the grader allowance, DNS and the allow-listed mirror; no open egress', () => {
    const [deny, allow] = objs.filter((o) => o.kind === 'NetworkPolicy') as INetworkPolicy[];
    expect(deny!.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    expect(allow!.spec!.ingress![1]!.from![0]!.namespaceSelector!.matchLabels).toEqual({ 'deploylab.component': 'harness' });
    const egress = allow!.spec!.egress!;
    expect(egress.some((e) => Object.keys(e).length === 0)).toBe(false);
    expect(egress.some((e) => e.to?.[0]?.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'model-mirror')).toBe(true);
    const open = renderSeat(parseSeatPlan({ ...base, network: { egress: 'open' } }), opts).filter((o) => o.kind === 'NetworkPolicy')[1] as INetworkPolicy;
    expect(open.spec!.egress!.some((e) => Object.keys(e).length === 0)).toBe(true);
  });

  it('workspace pod: caps dropped, never privileged, trusted read-only files sidecar, GPU by count, DOCKER_HOST to dind', () => {
    const pod = objs.find((o) => o.kind === 'Pod' && o.metadata!.name === 'workspace') as IPod;
    const [ws, files] = pod.spec!.containers;
    expect(ws!.securityContext!.privileged).toBe(false);
    expect(ws!.securityContext!.capabilities!.drop).toEqual(['ALL']);
    expect(ws!.securityContext!.capabilities!.add).not.toContain('NET_RAW');
    expect(ws!.resources!.limits).toMatchObject({ cpu: '2000m', memory: '4096Mi', 'nvidia.com/gpu': '1' });
    expect(ws!.env).toContainEqual({ name: 'DOCKER_HOST', value: 'tcp://dind:2375' });
    expect(files!.name).toBe('files');
    expect(files!.image).toBe('deploylab/toolbox:abc');
    expect(files!.volumeMounts).toEqual([{ name: 'workspace', mountPath: '/workspace', readOnly: true }]);
    expect(pod.spec!.shareProcessNamespace).toBe(true);
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
    const dind = objs.find((o) => o.kind === 'Pod' && o.metadata!.name === 'dind') as IPod;
    const dsc = dind.spec!.containers[0]!.securityContext!;
    expect(dsc.privileged).toBe(false);
    // The Docker sidecar's set: nothing that reaches the host clock, modules, raw I/O or boot.
    expect(dsc.capabilities!.drop).toEqual(['ALL']);
    for (const cap of ['SYS_TIME', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_BOOT', 'SYSLOG', 'MAC_ADMIN', 'MAC_OVERRIDE', 'ALL']) expect(dsc.capabilities!.add).not.toContain(cap);
    expect(dsc.capabilities!.add).toEqual(expect.arrayContaining(['SYS_ADMIN', 'NET_ADMIN']));
    expect(dsc.appArmorProfile).toEqual({ type: 'Unconfined' });
    expect(dind.metadata!.annotations!['container.apparmor.security.beta.kubernetes.io/dind']).toBe('unconfined');
    // Disk bounded by the kubelet: every container's ephemeral-storage, every emptyDir's size.
    expect(ws!.resources!.limits!['ephemeral-storage']).toBe('4096Mi');
    expect(dind.spec!.containers[0]!.resources!.limits!['ephemeral-storage']).toBe('4096Mi');
    for (const p of objs.filter((o): o is IPod => o.kind === 'Pod')) {
      for (const v of p.spec!.volumes ?? []) if (v.emptyDir) expect(v.emptyDir.sizeLimit, `${p.metadata!.name}/${v.name}`).toBe('4096Mi');
    }
  });
});
