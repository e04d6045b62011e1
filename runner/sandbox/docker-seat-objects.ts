import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { mapLimit } from '../core/concurrency.js';
import { DIND_CAPABILITIES, DIND_COMMAND, DIND_PORT, SEAT_CAPABILITIES, type SeatPlan, type SeatRef, type SweptItem } from './driver.js';
import { CANDIDATE_USER, execIn } from './docker-exec.js';
import type { SessionNetwork, SessionNetworks } from './docker-network.js';
import { ignore404, statusCodeOf, sweptItem } from './docker-replies.js';
import type { SeatContainer } from './docker-seat-state.js';
import { allowSeatToService, removeAddressGuards, removeAllowRules } from './host-firewall.js';
import { LABEL, labelFilters, seatLabels, seatObjectName } from './labels.js';
import { buildTar, firstTarHeader } from './tar.js';

/**
 * Every container the harness creates keeps at most this much log on the host's disk (json-file
 * rotation: max-file files of max-size each), so a seat printing without end cannot fill the disk
 * the store and the evidence live on.
 */
export const CONTAINER_LOG_CONFIG = { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } } as const;
/** /dev/shm of every seat container (tmpfs, counted in the container's memory as well). */
export const SEAT_SHM_BYTES = 64 * 1024 * 1024;

const ALLOW_LABEL = 'deploylab.allow-rules';
/** Containers removed at once by destroy and sweep. */
const REMOVE_CONCURRENCY = 16;

/** What every container of a seat shares: its limits, no added privilege, bounded logs. */
export function hostConfigBase(plan: SeatPlan, network: string): Docker.HostConfig {
  return {
    NetworkMode: network,
    NanoCpus: Math.round(plan.resources.cpus * 1e9),
    Memory: plan.resources.memoryMiB * 1024 * 1024,
    // Same as Memory: no swap, so a memory hog is OOM-killed instead of thrashing the host.
    MemorySwap: plan.resources.memoryMiB * 1024 * 1024,
    PidsLimit: plan.resources.pids,
    CapDrop: ['ALL'],
    CapAdd: SEAT_CAPABILITIES,
    Privileged: false,
    Init: true,
    RestartPolicy: { Name: 'no' },
    LogConfig: { Type: CONTAINER_LOG_CONFIG.Type, Config: { ...CONTAINER_LOG_CONFIG.Config } },
    ShmSize: SEAT_SHM_BYTES,
  };
}

/** The engine objects of seats (containers, volumes, their host allow rules): made and removed. */
export class SeatObjects {
  /** Per image and workdir: whether the image already has the workdir owned by the candidate. */
  private readonly workdirShipped = new Map<string, boolean>();

  constructor(
    private readonly docker: Docker,
    private readonly networks: SessionNetworks,
    private readonly hostFirewall: boolean,
  ) {}

  /** The seat's containers on `net`, started, its address guarded and its images preloaded. */
  async create(plan: SeatPlan, net: SessionNetwork): Promise<SeatContainer[]> {
    const ref = { session: plan.session, seat: plan.seat };
    const ws = plan.workspace;
    const env: Record<string, string> = { ...ws.env };
    if (plan.dockerInSeat.enabled) env.DOCKER_HOST = `tcp://dind:${DIND_PORT}`;
    const hostConfig = hostConfigBase(plan, net.name);
    if (plan.gpu.devices.length > 0) {
      hostConfig.DeviceRequests = [{ Driver: 'nvidia', DeviceIDs: plan.gpu.devices, Capabilities: [['gpu']] }];
    }
    // Sidecars live in the workspace's network namespace (like a pod): the seat reaches them by
    // name through /etc/hosts, which they share, and nobody else reaches them at all.
    const sidecarNames = [...(plan.dockerInSeat.enabled ? ['dind'] : []), ...plan.services.map((s) => s.name)];
    const allowed: { alias: string; ip: string }[] = [];
    for (const allow of plan.network.allow) allowed.push({ alias: allow.alias, ip: await this.networks.joinAllowed(allow.target, net.name) });
    hostConfig.ExtraHosts = [...sidecarNames.map((h) => `${h}:127.0.0.1`), ...allowed.map((a) => `${a.alias}:${a.ip}`)];
    const workspace = await this.docker.createContainer({
      name: seatObjectName(ref, 'workspace'),
      Image: ws.image,
      Cmd: ws.command ?? ['sleep', 'infinity'],
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Hostname: ws.hostname,
      WorkingDir: ws.workdir,
      // Marks a seat with host allow rules, so only such seats pay for looking them up at destroy.
      Labels: { ...seatLabels(plan, 'workspace'), ...(allowed.length > 0 ? { [ALLOW_LABEL]: 'true' } : {}) },
      ExposedPorts: Object.fromEntries([...ws.ports, ...plan.services.flatMap((s) => s.ports)].map((p) => [`${p.port}/${p.protocol}`, {}])),
      HostConfig: hostConfig,
    });
    // The workdir belongs to the candidate even when the image lacks it (Docker makes it root's).
    // Our images ship it so; learnt from the first seat of an image, later seats skip the copy.
    const key = `${ws.image}\0${ws.workdir}`;
    let shipped = this.workdirShipped.get(key);
    if (shipped === undefined) {
      shipped = await imageShipsWorkdir(workspace, ws.workdir);
      this.workdirShipped.set(key, shipped);
    }
    // The extraction sets the owner whether it lands before or after the start.
    await Promise.all([shipped ? undefined : workspace.putArchive(await buildTar([], [ws.workdir]), { path: '/' }), workspace.start()]);
    const inNamespace = `container:${workspace.id}`;

    const sidecars: Docker.Container[] = [];
    let dind: Docker.Container | undefined;
    if (plan.dockerInSeat.enabled) {
      const volName = seatObjectName(ref, 'dind-data');
      await this.docker.createVolume({ Name: volName, Labels: seatLabels(plan, 'dind-data') });
      dind = await this.docker.createContainer({
        name: seatObjectName(ref, 'dind'),
        Image: plan.dockerInSeat.image ?? plan.workspace.image,
        Cmd: [...DIND_COMMAND],
        Labels: seatLabels(plan, 'dind'),
        HostConfig: {
          ...hostConfigBase(plan, inNamespace),
          // What a nested dockerd needs and no more (never the candidate's own container): no
          // SYS_TIME, SYS_MODULE, SYS_RAWIO, SYS_BOOT, SYSLOG, MAC_* (SYS_PTRACE stays within its
          // own pid namespace), so neither it nor a nested container can set the host clock or
          // load a module; its own cgroups only, through
          // a private cgroup namespace (no host /sys/fs/cgroup), so no neighbour can be frozen or
          // re-limited. Its authorization plugin refuses privileged, host mounts, added
          // capabilities and host namespaces (sandbox-images/dind/seat-authz.py). No seccomp
          // filter: runc needs keyctl for the nested containers' session keyrings; nested containers
          // get the nested daemon's default profile. AppArmor's docker-default would forbid mount.
          CapDrop: ['ALL'],
          CapAdd: DIND_CAPABILITIES,
          ...({ CgroupnsMode: 'private' } as Docker.HostConfig), // engine API ≥ 1.41; the typings lag
          SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
          Mounts: [{ Type: 'volume', Source: volName, Target: '/var/lib/docker' }],
          // Nested images and layers need room: the pids limit stays, memory doubles.
          Memory: plan.resources.memoryMiB * 2 * 1024 * 1024,
          MemorySwap: plan.resources.memoryMiB * 2 * 1024 * 1024,
        },
      });
      sidecars.push(dind);
    }
    for (const svc of plan.services) {
      sidecars.push(
        await this.docker.createContainer({
          name: seatObjectName(ref, svc.name),
          Image: svc.image,
          ...(svc.command ? { Cmd: svc.command } : {}),
          Env: Object.entries(svc.env).map(([k, v]) => `${k}=${v}`),
          Labels: seatLabels(plan, svc.name),
          HostConfig: hostConfigBase(plan, inNamespace),
        }),
      );
    }
    await Promise.all(sidecars.map((c) => c.start()));

    if (allowed.length > 0 || this.hostFirewall) {
      const info = await workspace.inspect();
      const seatNet = info.NetworkSettings.Networks[net.name];
      const seatIp = seatNet?.IPAddress;
      if (!seatIp) throw new Error(`seat ${plan.session}/${plan.seat} has no address on ${net.name}`);
      for (const a of allowed) await allowSeatToService(net.bridge, seatIp, a.ip, seatObjectName(ref, 'workspace'));
      if (this.hostFirewall) await this.networks.guardAddress(ref, info);
    }
    if (dind && plan.dockerInSeat.preload.length > 0) await this.preloadImages(dind, plan.dockerInSeat.preload);
    const roles = ['workspace', ...sidecarNames];
    return [workspace, ...sidecars].map((c, i) => ({ id: c.id, role: roles[i]!, state: 'running', created: Date.now(), labels: seatLabels(plan, roles[i]!) }));
  }

  /** Copy images from the host engine into the seat's own daemon (no registry needed). */
  private async preloadImages(dind: Docker.Container, images: string[]): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await execIn(this.docker, dind, { cmd: ['docker', '-H', `tcp://127.0.0.1:${DIND_PORT}`, 'info'], user: 'root', deadlineMs: 10_000 });
      if (r.exitCode === 0) break;
      if (Date.now() > deadline) throw new Error(`docker-in-seat daemon not ready: ${r.stderr.slice(-400)}`);
      await new Promise((res) => setTimeout(res, 500));
    }
    for (const image of images) {
      const tarStream = (await this.docker.getImage(image).get()) as Readable;
      const r = await execIn(this.docker, dind, {
        cmd: ['docker', '-H', `tcp://127.0.0.1:${DIND_PORT}`, 'load'],
        user: 'root',
        stdin: tarStream,
        deadlineMs: 300_000,
      });
      if (r.exitCode !== 0) throw new Error(`docker load of ${image} into the seat failed: ${r.stderr.slice(-400)}`);
    }
  }

  /** Containers and volumes carrying the labels (one seat, a session, or all), and a seat's allow rules. */
  async remove(ref: Partial<SeatRef>, old: (createdMs: number) => boolean = () => true): Promise<SweptItem[]> {
    const label = labelFilters(ref);
    const removed: SweptItem[] = [];
    const containers = (await this.docker.listContainers({ all: true, filters: { label } })).filter((c) => old(c.Created * 1000));
    // Sidecars first: they live in their workspace's network namespace.
    const sidecarsFirst = [...containers].sort((a, b) => Number(a.Labels[LABEL.role] === 'workspace') - Number(b.Labels[LABEL.role] === 'workspace'));
    const isSidecar = (c: Docker.ContainerInfo): boolean => c.Labels[LABEL.role] !== 'workspace';
    for (const batch of [sidecarsFirst.filter(isSidecar), sidecarsFirst.filter((c) => !isSidecar(c))]) {
      // Bounded: removing hundreds at once timed out containerd shims and left network endpoints
      // behind that only an engine restart clears (a 30-seat room's reset, 210 containers).
      await mapLimit(batch, REMOVE_CONCURRENCY, async (c) => {
        await this.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(ignore404);
        removed.push(sweptItem('container', c.Id, c.Names[0]?.replace(/^\//, '') ?? '', c.Labels));
      });
    }
    // A seat's allow rules go with it: a later seat given the same address must not inherit them.
    const nameOf = (c: Docker.ContainerInfo): string => c.Names[0]?.replace(/^\//, '') ?? '';
    const workspaces = containers.filter((c) => c.Labels[ALLOW_LABEL] === 'true').map(nameOf);
    if (this.hostFirewall && workspaces.length > 0) await removeAllowRules(new Set(workspaces));
    const guarded = containers.filter((c) => c.Labels[LABEL.role] === 'workspace').map(nameOf);
    if (this.hostFirewall && guarded.length > 0) await removeAddressGuards(new Set(guarded));
    const vols = ((await this.docker.listVolumes({ filters: { label } })).Volumes ?? []).filter((v) =>
      old(Date.parse((v as { CreatedAt?: string }).CreatedAt ?? '') || 0),
    );
    await Promise.all(
      vols.map(async (v) => {
        await this.docker.getVolume(v.Name).remove().catch(ignore404);
        removed.push(sweptItem('volume', v.Name, v.Name, v.Labels));
      }),
    );
    return removed;
  }
}

/** Whether a created (not started) container's image has `workdir` as a directory owned by the candidate. */
async function imageShipsWorkdir(container: Docker.Container, workdir: string): Promise<boolean> {
  try {
    const head = await firstTarHeader((await container.getArchive({ path: workdir })) as Readable);
    return head?.type === 'directory' && `${head.uid}:${head.gid}` === CANDIDATE_USER;
  } catch (e) {
    if (statusCodeOf(e) === 404) return false;
    throw e;
  }
}
