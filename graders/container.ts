/**
 * `container` probe: containers and images as a Docker daemon reports them, never by running the
 * candidate's docker client.
 * - scope `inner`: the seat's own daemon (the docker-in-seat sidecar), reached from the harness at
 *   the sidecar's seat address (`endpoint(2375, { container: 'dind' })`) with dockerode;
 * - scope `seat`: the seat's own containers, through the seat handle's `inspectContainers`.
 * Containers: running, count, health, restart policy, CPU/memory limits, published ports, user.
 * Images (`image`): exposed ports, a non-root user, labels, built FROM a preloaded base.
 */
import Docker from 'dockerode';
import type { z } from 'zod';
import { DeploylabError } from '../runner/core/errors.js';
import { ContainerParamsSchema } from '../runner/tasks/probe-params.js';
import { judge, show, type Assertion } from './assertions.js';
import { defineProbe, failed, note, type Deadline, type SeatHandle } from './probe.js';

export type ContainerParams = z.output<typeof ContainerParamsSchema>;

/** Port of the docker-in-seat sidecar's daemon on the seat network (runner/sandbox/docker-driver.ts). */
export const DIND_PORT = 2375;
export const DIND_ROLE = 'dind';

/** A seat container as an engine reports it, with the seat role it plays. */
export interface SeatContainerInfo {
  role: string;
  info: Docker.ContainerInspectInfo;
}

/** Optional seat capability for scope `seat`; the docker adapter inspects the seat's containers. */
export interface ContainerInspector {
  inspectContainers?(): Promise<SeatContainerInfo[]>;
}

function dindDown(cause: unknown): DeploylabError {
  return new DeploylabError({
    code: 'PROBE_INNER_DAEMON_UNREACHABLE',
    fault: 'infrastructure',
    message: { zh: '无法连接考位内的 Docker 守护进程（dind 边车）', en: "the seat's own Docker daemon (dind sidecar) is unreachable" },
    hint: { zh: '检查考位是否以 docker-in-seat 方式创建、dind 容器是否运行', en: 'check the seat was provisioned docker-in-seat and its dind container runs' },
    cause,
  });
}

/** dockerode for the seat's own daemon; throws (infrastructure) when it does not answer. */
export async function innerDocker(seat: SeatHandle, deadline: Deadline): Promise<Docker> {
  let ep;
  try {
    ep = await seat.endpoint(DIND_PORT, { container: DIND_ROLE });
  } catch (e) {
    throw dindDown(e);
  }
  const docker = new Docker({ host: ep.host, port: ep.port, protocol: 'http', timeout: Math.max(1_000, Math.min(15_000, deadline.remainingMs())) });
  try {
    await docker.ping();
  } catch (e) {
    throw dindDown(e);
  }
  return docker;
}

/** Config.User names root: empty, "root", "0", or a "0:group" / "root:group" form. */
export function isRootUser(user: string | undefined): boolean {
  const u = (user ?? '').trim().split(':')[0] ?? '';
  return u === '' || u === 'root' || u === '0';
}

const portKey = (p: number): string => `${p}/tcp`;

export function checkImage(info: Docker.ImageInspectInfo, spec: NonNullable<ContainerParams['image']>, base?: Docker.ImageInspectInfo | null): Assertion[] {
  const a: Assertion[] = [];
  const cfg = info.Config;
  const exposed = Object.keys(cfg.ExposedPorts ?? {});
  for (const p of spec.exposes ?? []) {
    a.push({ id: `exposes:${p}`, ok: exposed.includes(portKey(p)), expected: portKey(p), actual: exposed.join(', ') || '(none)' });
  }
  if (spec.nonRootUser !== undefined) {
    const root = isRootUser(cfg.User);
    a.push({ id: 'user', ok: spec.nonRootUser ? !root : root, expected: spec.nonRootUser ? 'a non-root USER' : 'root', actual: cfg.User || '(empty: root)' });
  }
  for (const [k, v] of Object.entries(spec.labels ?? {})) {
    const got = cfg.Labels?.[k];
    a.push({ id: `label:${k}`, ok: got === v, expected: v, actual: got ?? '(absent)' });
  }
  if (spec.basedOn !== undefined) {
    const mine = info.RootFS?.Layers ?? [];
    const theirs = base?.RootFS?.Layers ?? [];
    // A prefix of layers and another image (a Dockerfile with only metadata adds no layer).
    const ok = base != null && base.Id !== info.Id && theirs.length > 0 && theirs.length <= mine.length && theirs.every((l, i) => mine[i] === l);
    a.push({ id: 'basedOn', ok, expected: `built FROM ${spec.basedOn}`, actual: base == null ? `${spec.basedOn} not in the daemon` : ok ? 'its layers come first' : 'layers differ' });
  }
  return a;
}

function nameOf(c: Docker.ContainerInspectInfo): string {
  return c.Name.replace(/^\//, '');
}

export function matchesContainer(c: Docker.ContainerInspectInfo, m: NonNullable<ContainerParams['match']>, role?: string): boolean {
  if (m.name !== undefined && !new RegExp(m.name).test(role ?? nameOf(c))) return false;
  if (m.image !== undefined && !new RegExp(m.image).test(c.Config.Image)) return false;
  const labels = c.Config.Labels ?? {};
  for (const [k, v] of Object.entries(m.labels ?? {})) if (labels[k] !== v) return false;
  if (m.composeService !== undefined && labels['com.docker.compose.service'] !== m.composeService) return false;
  return true;
}

export function checkContainers(found: Docker.ContainerInspectInfo[], e: ContainerParams['expect']): Assertion[] {
  const a: Assertion[] = [];
  const running = found.filter((c) => c.State.Running);
  if (!e.running) {
    a.push({ id: 'running', ok: running.length === 0, expected: 'none running', actual: `${running.length} running` });
    return a;
  }
  const min = Math.max(1, e.count?.min ?? 1);
  const max = e.count?.max;
  a.push({
    id: 'count',
    ok: running.length >= min && (max === undefined || running.length <= max),
    expected: max === undefined ? `≥ ${min} running` : `${min}..${max} running`,
    actual: `${running.length} running of ${found.length}`,
  });
  const each = (id: string, expected: string, f: (c: Docker.ContainerInspectInfo) => [boolean, string]): void => {
    const r = running.map((c) => ({ name: nameOf(c), ...((([ok, actual]) => ({ ok, actual }))(f(c))) }));
    a.push({ id, ok: r.length > 0 && r.every((x) => x.ok), expected, actual: r.map((x) => `${x.name}: ${x.actual}`).join('; ') || '(no container)' });
  };
  if (e.healthy !== undefined) {
    each('healthy', e.healthy ? 'healthy' : 'not healthy', (c) => {
      const s = c.State.Health?.Status ?? 'no healthcheck';
      return [(s === 'healthy') === e.healthy, s];
    });
  }
  if (e.restartPolicy !== undefined) {
    each('restartPolicy', e.restartPolicy, (c) => {
      const n = c.HostConfig.RestartPolicy?.Name || 'no';
      return [n === e.restartPolicy, n];
    });
  }
  if (e.maxCpus !== undefined) {
    const max = e.maxCpus;
    each('maxCpus', `≤ ${max} CPUs`, (c) => {
      const nano = c.HostConfig.NanoCpus ?? 0;
      const quota = c.HostConfig.CpuQuota ?? 0;
      const period = c.HostConfig.CpuPeriod || 100_000;
      const cpus = nano > 0 ? nano / 1e9 : quota > 0 ? quota / period : Infinity;
      return [cpus <= max + 1e-9, Number.isFinite(cpus) ? `${cpus} CPUs` : 'unlimited'];
    });
  }
  if (e.maxMemoryMiB !== undefined) {
    const max = e.maxMemoryMiB;
    each('maxMemoryMiB', `≤ ${max} MiB`, (c) => {
      const mem = c.HostConfig.Memory ?? 0;
      return [mem > 0 && mem <= max * 1024 * 1024, mem > 0 ? `${Math.round(mem / 1048576)} MiB` : 'unlimited'];
    });
  }
  for (const port of e.publishes ?? []) {
    // Published on the daemon's host side (for an inner daemon: the sidecar's address).
    const anyPublishes = running.some((c) =>
      Object.values(c.NetworkSettings.Ports ?? {}).some((bindings) => (bindings ?? []).some((b) => Number(b.HostPort) === port)),
    );
    a.push({ id: `publishes:${port}`, ok: anyPublishes, expected: `host port ${port} published`, actual: anyPublishes ? 'published' : 'not published' });
  }
  if (e.nonRootUser !== undefined) {
    const want = e.nonRootUser;
    each('user', want ? 'non-root' : 'root', (c) => [want ? !isRootUser(c.Config.User) : isRootUser(c.Config.User), c.Config.User || '(root)']);
  }
  return a;
}

async function inspectAll(docker: Docker): Promise<Docker.ContainerInspectInfo[]> {
  const list = await docker.listContainers({ all: true });
  const out: Docker.ContainerInspectInfo[] = [];
  for (const c of list) {
    try {
      out.push(await docker.getContainer(c.Id).inspect());
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e; // removed meanwhile
    }
  }
  return out;
}

async function imageInfo(docker: Docker, ref: string): Promise<Docker.ImageInspectInfo | null> {
  try {
    return await docker.getImage(ref).inspect();
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return null;
    throw e;
  }
}

export const containerProbe = defineProbe({
  kind: 'container',
  params: ContainerParamsSchema,
  async run(handle, p, deadline) {
    const seat = handle as SeatHandle & ContainerInspector;
    if (p.image) {
      const docker = await innerDocker(seat, deadline);
      const info = await imageInfo(docker, p.image.ref);
      deadline.check();
      if (!info) {
        return failed({ zh: `考位 Docker 中没有镜像 ${p.image.ref}`, en: `no image ${p.image.ref} in the seat's daemon` }, [
          note('镜像不存在', 'image absent', { ref: p.image.ref }),
        ]);
      }
      const base = p.image.basedOn !== undefined ? await imageInfo(docker, p.image.basedOn) : undefined;
      const evidence = [
        note('镜像配置', 'image config', {
          ref: p.image.ref,
          id: info.Id,
          user: info.Config.User,
          exposedPorts: Object.keys(info.Config.ExposedPorts ?? {}),
          labels: info.Config.Labels ?? {},
          layers: info.RootFS?.Layers?.length ?? 0,
        }),
      ];
      return judge(checkImage(info, p.image, base), 'all', { zh: `镜像 ${p.image.ref}`, en: `image ${p.image.ref}` }, evidence);
    }
    const match = p.match!;
    let found: Docker.ContainerInspectInfo[];
    if (p.scope === 'inner') {
      const docker = await innerDocker(seat, deadline);
      found = (await inspectAll(docker)).filter((c) => matchesContainer(c, match));
    } else {
      if (!seat.inspectContainers) {
        throw new DeploylabError({
          code: 'PROBE_SEAT_UNSUPPORTED',
          fault: 'bug',
          message: { zh: '考位接口不能查看考位容器', en: 'the seat handle cannot inspect seat containers' },
        });
      }
      found = (await seat.inspectContainers()).filter((c) => matchesContainer(c.info, match, c.role)).map((c) => c.info);
    }
    deadline.check();
    const evidence = [
      note('匹配的容器', 'matching containers', {
        scope: p.scope,
        match,
        containers: found.slice(0, 20).map((c) => ({
          name: nameOf(c),
          image: c.Config.Image,
          state: c.State.Status,
          health: c.State.Health?.Status ?? null,
          restart: c.HostConfig.RestartPolicy?.Name ?? '',
          user: c.Config.User,
          compose: show(c.Config.Labels?.['com.docker.compose.service'] ?? '', 60),
        })),
      }),
    ];
    return judge(checkContainers(found, p.expect), 'all', { zh: '容器检查', en: 'container check' }, evidence);
  },
});
