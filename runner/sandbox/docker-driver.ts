import { createHash } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, Transform, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGzip } from 'node:zlib';
import Docker from 'dockerode';
import type { Config } from '../core/config.js';
import { mapLimit } from '../core/concurrency.js';
import { DeploylabError } from '../core/errors.js';
import { DIND_CAPABILITIES, DIND_COMMAND, DIND_PORT, SEAT_CAPABILITIES, TERMINAL_HANGUP_GRACE_MS } from './driver.js';
import { dockerHostEngine } from './docker-host-engine.js';
import type {
  HostEngineAccess,
  Endpoint,
  EvidenceArchive,
  ExecOptions,
  ExecResult,
  FileEntry,
  SandboxDriver,
  SeatPlan,
  SeatProcess,
  SeatDiskUsage,
  SeatRef,
  SeatStatus,
  SweepFilter,
  SweptItem,
  TerminalOptions,
  TerminalSession,
  WriteFile,
} from './driver.js';
import { allowSeatToService, bridgeName, closeHostToSeat, guardSeatAddress, hostVethOf, removeAddressGuards, removeAllowRules, removeHostRules } from './host-firewall.js';
import { driverOp, engineError, fileContent, fileNotFound, seatFrozen, seatNotFound, tooLarge } from './errors.js';
import { LABEL, labelFilters, seatLabels, seatObjectName, sessionLabels, sessionNetworkName } from './labels.js';
import { TarTooLarge, buildTar, firstTarHeader, readTar } from './tar.js';
import { pickFreeSubnet } from './subnet-pool.js';

export { SEAT_CAPABILITIES, DIND_CAPABILITIES } from './driver.js';

/**
 * Every container the harness creates keeps at most this much log on the host's disk (json-file
 * rotation: max-file files of max-size each), so a seat printing without end cannot fill the disk
 * the store and the evidence live on.
 */
export const CONTAINER_LOG_CONFIG = { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } } as const;
/** /dev/shm of every seat container (tmpfs, counted in the container's memory as well). */
export const SEAT_SHM_BYTES = 64 * 1024 * 1024;

const CANDIDATE_USER = '1000:1000';
const DEFAULT_OUTPUT_CAP = 1 << 20;
const DEFAULT_READ_CAP = 64 << 20;
const ALLOW_LABEL = 'deploylab.allow-rules';
/** Containers removed at once by destroy and sweep. */
const REMOVE_CONCURRENCY = 16;
/** Tries (about 25 s in all) before a network whose endpoints linger is reported stuck. */
const NETWORK_REMOVE_ATTEMPTS = 20;

export interface DockerDriverOptions {
  docker?: Docker;
  /** e.g. tcp://127.0.0.1:2375; empty: the local socket. */
  host?: string;
  /**
   * Add the host INPUT rule that keeps seats from reaching host services (host-firewall.ts).
   * Default: on when the engine is local (its bridges are this host's interfaces).
   */
  hostFirewall?: boolean;
  /** Where seat networks take their subnets (subnet-pool.ts). */
  subnetPool?: string;
  /** Size of one session's subnet: /22 is 1022 seats' addresses, 64 sessions in a /16. */
  subnetPrefix?: number;
}

export const DEFAULT_SUBNET_POOL = '10.213.0.0/16';

/** The driver as the config describes it: engine address and seat subnet pool. */
export function dockerDriverFor(config: Config, docker?: Docker): DockerDriver {
  return new DockerDriver({
    ...(docker ? { docker } : {}),
    ...(config.docker.host ? { host: config.docker.host } : {}),
    subnetPool: config.docker.seatSubnetPool,
  });
}
const SUBNET_ATTEMPTS = 5;

function dockerFrom(host: string | undefined): Docker {
  if (!host) return new Docker();
  const u = new URL(host);
  if (u.protocol === 'unix:') return new Docker({ socketPath: u.pathname });
  return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: u.protocol === 'https:' ? 'https' : 'http' });
}

function statusCodeOf(e: unknown): number | undefined {
  const c = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

/** A Transform that keeps at most `cap` bytes and remembers whether it dropped any. */
class Capped {
  readonly chunks: Buffer[] = [];
  kept = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    const room = this.cap - this.kept;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (part.length < chunk.length) this.truncated = true;
    this.chunks.push(part);
    this.kept += part.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

interface SeatContainer {
  id: string;
  role: string;
  state: string;
  created: number;
  labels: Record<string, string>;
}

/** Addresses of a session network kept for in-room services joined to it. */
const IN_ROOM_SERVICE_ADDRESSES = 8;

/** The session network's prefix length unless the driver is told otherwise. */
export const DEFAULT_SUBNET_PREFIX = 22;

/**
 * Sandboxes one session network holds: every sandbox takes one address (sidecars share it); the
 * network's own address, broadcast and gateway are not usable, and in-room services joined to the
 * network (a model mirror) keep a few.
 */
export const sandboxesPerSessionFor = (prefix: number): number => 2 ** (32 - prefix) - 3 - IN_ROOM_SERVICE_ADDRESSES;

export class DockerDriver implements SandboxDriver {
  readonly name = 'docker' as const;
  readonly docker: Docker;
  /** Open candidate terminals per seat, detached on freeze. */
  private readonly terminals = new Map<string, Set<TerminalSession>>();

  private readonly hostFirewall: boolean;

  constructor(opts: DockerDriverOptions = {}) {
    this.docker = opts.docker ?? dockerFrom(opts.host);
    this.hostFirewall = opts.hostFirewall ?? (!opts.host || opts.host.startsWith('unix:'));
    this.subnetPool = opts.subnetPool ?? DEFAULT_SUBNET_POOL;
    this.subnetPrefix = opts.subnetPrefix ?? DEFAULT_SUBNET_PREFIX;
    this.sandboxesPerSession = sandboxesPerSessionFor(this.subnetPrefix);
    // A restarted workspace has a new interface on the bridge: its address is guarded again.
    this.hostEngine = dockerHostEngine(this.docker, this, async (ref, role) => {
      if (role === 'workspace') await this.guardAddress(ref);
    });
  }

  readonly hostEngine: HostEngineAccess;

  private readonly subnetPool: string;
  private readonly subnetPrefix: number;
  readonly sandboxesPerSession: number;
  /** Serialises pick-and-create of session networks within this process. */
  private networkQueue: Promise<unknown> = Promise.resolve();
  /** Per image and workdir: whether the image already has the workdir owned by the candidate. */
  private readonly workdirShipped = new Map<string, boolean>();
  /** Session networks this process has seen exist (a vanished one is caught at container create). */
  private readonly knownNetworks = new Set<string>();
  /** Bridges whose host INPUT rule this process has checked. */
  private readonly guardedBridges = new Set<string>();
  /** Provisions in flight per session: the last destroy leaves the network to them. */
  private readonly provisioning = new Map<string, number>();

  /**
   * The session's network for seats with this egress, created on first use. One bridge per
   * session, not per seat: creating a network and starting a container on a fresh bridge cost
   * more than the container itself. Seats on it cannot reach each other because inter-container
   * traffic is off (icc=false: Docker drops bridge-to-same-bridge forwarding), the host still
   * reaches every seat, and a seat's sidecars share its network namespace instead of an address.
   */
  private async sessionNetwork(plan: SeatPlan): Promise<{ name: string; bridge: string }> {
    const open = plan.network.egress === 'open';
    const name = sessionNetworkName(plan.session) + (open ? '-open' : '');
    const bridge = bridgeName(plan.session + (open ? '/open' : ''));
    const exists = async (): Promise<boolean> =>
      this.docker.getNetwork(name).inspect().then(() => true, (e: unknown) => {
        if (statusCodeOf(e) === 404) return false;
        throw e;
      });
    // Once per bridge and process, before any seat starts on it: nothing a seat starts reaches
    // the host. (Networks outlive a host reboot; the rule does not, hence not only at creation.)
    const guard = async (): Promise<void> => {
      if (!this.hostFirewall || this.guardedBridges.has(bridge)) return;
      await closeHostToSeat(bridge);
      this.guardedBridges.add(bridge);
    };
    if (this.knownNetworks.has(name) || (await exists())) {
      await guard();
      this.knownNetworks.add(name);
      return { name, bridge };
    }
    const run = async (): Promise<void> => {
      if (!(await exists())) {
        for (let attempt = 1; ; attempt++) {
          if ((await this.createNetworkOnce(name, bridge, open, plan)) === 'made') break;
          if (attempt >= SUBNET_ATTEMPTS) throw new Error(`no free subnet for ${name} after ${attempt} attempts (others took them meanwhile)`);
        }
      }
      await guard();
    };
    const next = this.networkQueue.then(run, run);
    this.networkQueue = next.catch(() => undefined);
    await next;
    this.knownNetworks.add(name);
    return { name, bridge };
  }

  /** One try on a free subnet of the pool: `overlap` when another process took it meanwhile. */
  private async createNetworkOnce(name: string, bridge: string, open: boolean, plan: SeatPlan): Promise<'made' | 'overlap'> {
    const nets = await this.docker.listNetworks();
    const inUse = nets.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => (c as { Subnet?: string }).Subnet ?? '')).filter(Boolean);
    const subnet = pickFreeSubnet(this.subnetPool, this.subnetPrefix, inUse);
    if (!subnet) {
      throw new DeploylabError({
        code: 'SANDBOX_SUBNETS_EXHAUSTED',
        fault: 'infrastructure',
        message: {
          zh: `考场网络地址池 ${this.subnetPool} 已用尽（每个场次 /${this.subnetPrefix}）`,
          en: `the seat network pool ${this.subnetPool} is used up (one /${this.subnetPrefix} per session)`,
        },
        hint: { zh: '清理旧场次（deploylab sandbox sweep），或配置更大的地址池', en: 'sweep old sessions (deploylab sandbox sweep) or configure a larger pool' },
      });
    }
    try {
      await this.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        // No route out unless the plan opens egress; the host still reaches seat IPs directly.
        Internal: !open,
        CheckDuplicate: true,
        Options: { 'com.docker.network.bridge.name': bridge, 'com.docker.network.bridge.enable_icc': 'false' },
        IPAM: { Driver: 'default', Config: [{ Subnet: subnet }] },
        Labels: sessionLabels(plan, 'network'),
      });
      return 'made';
    } catch (e) {
      // Another runner made it meanwhile: use theirs.
      if (statusCodeOf(e) === 409 || /already exists/i.test(String((e as Error).message))) return 'made';
      if (/overlap/i.test(String((e as Error).message))) return 'overlap';
      throw e;
    }
  }

  private op<T>(operation: string, fn: () => Promise<T>, ref?: SeatRef): Promise<T> {
    return driverOp('docker', operation, fn, ref);
  }

  // ---- provisioning -------------------------------------------------------------------------

  async provision(plan: SeatPlan): Promise<SeatStatus> {
    const ref = { session: plan.session, seat: plan.seat };
    return this.op('provision', async () => {
      let made: SeatContainer[];
      try {
        made = await this.createSeat(plan);
      } catch (e) {
        // Leave nothing half-made behind; the caller may retry from scratch.
        await this.destroy(ref).catch(() => undefined);
        if (statusCodeOf(e) === 404 && /image/i.test(String((e as Error).message))) {
          throw new DeploylabError({
            code: 'SANDBOX_IMAGE_MISSING',
            fault: 'infrastructure',
            message: { zh: `考位镜像不存在：${(e as Error).message}`, en: `seat image missing: ${(e as Error).message}` },
            hint: { zh: '先运行 deploylab images build', en: 'run `deploylab images build` first' },
            details: { ...ref },
            cause: e,
          });
        }
        throw e;
      }
      // What we just made, inspected once: a fresh seat is not frozen, no listing needed.
      return this.statusOf(ref, made, false);
    }, ref);
  }

  private hostConfigBase(plan: SeatPlan, network: string): Docker.HostConfig {
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

  private async createSeat(plan: SeatPlan): Promise<SeatContainer[]> {
    const n = this.provisioning.get(plan.session) ?? 0;
    this.provisioning.set(plan.session, n + 1);
    try {
      const net = await this.sessionNetwork(plan);
      try {
        return await this.createSeatOn(plan, net);
      } catch (e) {
        // The network went away under us (the last seat's destroy in another runner, a manual
        // removal after we saw it): make it again.
        if (statusCodeOf(e) !== 404 || !/network/i.test(String((e as Error).message))) throw e;
        this.knownNetworks.delete(net.name);
        await this.removeSeatObjects({ session: plan.session, seat: plan.seat });
        return await this.createSeatOn(plan, await this.sessionNetwork(plan));
      }
    } finally {
      const left = (this.provisioning.get(plan.session) ?? 1) - 1;
      if (left > 0) this.provisioning.set(plan.session, left);
      else this.provisioning.delete(plan.session);
    }
  }

  private async createSeatOn(plan: SeatPlan, net: { name: string; bridge: string }): Promise<SeatContainer[]> {
    const ref = { session: plan.session, seat: plan.seat };
    const ws = plan.workspace;
    const env: Record<string, string> = { ...ws.env };
    if (plan.dockerInSeat.enabled) env.DOCKER_HOST = `tcp://dind:${DIND_PORT}`;
    const hostConfig = this.hostConfigBase(plan, net.name);
    if (plan.gpu.devices.length > 0) {
      hostConfig.DeviceRequests = [{ Driver: 'nvidia', DeviceIDs: plan.gpu.devices, Capabilities: [['gpu']] }];
    }
    // Sidecars live in the workspace's network namespace (like a pod): the seat reaches them by
    // name through /etc/hosts, which they share, and nobody else reaches them at all.
    const sidecarNames = [...(plan.dockerInSeat.enabled ? ['dind'] : []), ...plan.services.map((s) => s.name)];
    const allowed: { alias: string; ip: string }[] = [];
    for (const allow of plan.network.allow) allowed.push({ alias: allow.alias, ip: await this.joinAllowed(allow.target, net.name) });
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
      shipped = await this.imageShipsWorkdir(workspace, ws.workdir);
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
          ...this.hostConfigBase(plan, inNamespace),
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
          HostConfig: this.hostConfigBase(plan, inNamespace),
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
      if (this.hostFirewall) await this.guardAddress(ref, info);
    }
    if (dind && plan.dockerInSeat.preload.length > 0) await this.preloadImages(dind, plan.dockerInSeat.preload);
    const roles = ['workspace', ...sidecarNames];
    return [workspace, ...sidecars].map((c, i) => ({ id: c.id, role: roles[i]!, state: 'running', created: Date.now(), labels: seatLabels(plan, roles[i]!) }));
  }

  /**
   * Bind the seat's port on the bridge to its own MAC and address (host-firewall.ts). Again after
   * the workspace container restarts: its interface is new then, and the old guard is gone with it.
   */
  async guardAddress(ref: SeatRef, inspected?: Docker.ContainerInspectInfo): Promise<void> {
    if (!this.hostFirewall) return;
    const info = inspected ?? (await (await this.container(ref)).inspect());
    const net = Object.entries(info.NetworkSettings.Networks).find(([name]) => name.startsWith(sessionNetworkName(ref.session)))?.[1];
    const veth = info.State.Running ? await hostVethOf(info.State.Pid) : undefined;
    if (!veth || !net?.IPAddress || !net.MacAddress) {
      throw new Error(`seat ${ref.session}/${ref.seat}: its host-side interface or address was not found, so its address cannot be guarded`);
    }
    await guardSeatAddress(veth, net.IPAddress, net.MacAddress, seatObjectName(ref, 'workspace'));
  }

  /** Whether a created (not started) container's image has `workdir` as a directory owned by the candidate. */
  private async imageShipsWorkdir(container: Docker.Container, workdir: string): Promise<boolean> {
    try {
      const head = await firstTarHeader((await container.getArchive({ path: workdir })) as Readable);
      return head?.type === 'directory' && `${head.uid}:${head.gid}` === CANDIDATE_USER;
    } catch (e) {
      if (statusCodeOf(e) === 404) return false;
      throw e;
    }
  }

  /** Join an in-room service (not ours) to the session network; its address there. */
  private async joinAllowed(target: string, network: string): Promise<string> {
    const addr = async (): Promise<string | undefined> => (await this.docker.getContainer(target).inspect()).NetworkSettings.Networks[network]?.IPAddress || undefined;
    const ip = await addr();
    if (ip) return ip;
    await this.docker.getNetwork(network).connect({ Container: target }).catch((e: unknown) => {
      if (statusCodeOf(e) !== 403 && !/already exists/i.test(String((e as Error).message))) throw e;
    });
    const joined = await addr();
    if (!joined) throw new Error(`in-room service ${target} has no address on ${network}`);
    return joined;
  }

  /** Copy images from the host engine into the seat's own daemon (no registry needed). */
  private async preloadImages(dind: Docker.Container, images: string[]): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await this.execIn(dind, { cmd: ['docker', '-H', `tcp://127.0.0.1:${DIND_PORT}`, 'info'], user: 'root', deadlineMs: 10_000 });
      if (r.exitCode === 0) break;
      if (Date.now() > deadline) throw new Error(`docker-in-seat daemon not ready: ${r.stderr.slice(-400)}`);
      await new Promise((res) => setTimeout(res, 500));
    }
    for (const image of images) {
      const tarStream = (await this.docker.getImage(image).get()) as Readable;
      const r = await this.execIn(dind, {
        cmd: ['docker', '-H', `tcp://127.0.0.1:${DIND_PORT}`, 'load'],
        user: 'root',
        stdin: tarStream,
        deadlineMs: 300_000,
      });
      if (r.exitCode !== 0) throw new Error(`docker load of ${image} into the seat failed: ${r.stderr.slice(-400)}`);
    }
  }

  // ---- inspection ---------------------------------------------------------------------------

  private async seatContainers(ref: Partial<SeatRef>): Promise<SeatContainer[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: labelFilters(ref) } });
    return list.map((c) => ({
      id: c.Id,
      role: c.Labels[LABEL.role] ?? '?',
      state: c.State,
      created: c.Created * 1000,
      labels: c.Labels,
    }));
  }

  private async container(ref: SeatRef, role = 'workspace'): Promise<Docker.Container> {
    const all = await this.op('find', () => this.seatContainers(ref), ref);
    const c = all.find((x) => x.role === role);
    if (!c) throw seatNotFound(ref);
    return this.docker.getContainer(c.id);
  }

  private async isFrozen(ref: SeatRef): Promise<boolean> {
    try {
      await this.docker.getVolume(seatObjectName(ref, 'frozen')).inspect();
      return true;
    } catch (e) {
      if (statusCodeOf(e) === 404) return false;
      throw e;
    }
  }

  async status(ref: SeatRef): Promise<SeatStatus> {
    return this.op('status', async () => {
      const found = await this.seatContainers(ref);
      if (found.length === 0) throw seatNotFound(ref);
      return this.statusOf(ref, found, await this.isFrozen(ref));
    }, ref);
  }

  private async statusOf(ref: SeatRef, found: SeatContainer[], frozen: boolean): Promise<SeatStatus> {
    const inspected = await Promise.all(
      found.map(async (c) => {
        // Removed between the listing and now (a destroy or re-provision running elsewhere): gone.
        const info = await this.docker
          .getContainer(c.id)
          .inspect()
          .catch((e: unknown) => {
            if ((e as { statusCode?: number }).statusCode === 404) return null;
            throw e;
          });
        if (!info) return null;
        return {
          role: c.role,
          id: c.id,
          running: info.State.Running,
          exitCode: info.State.Running ? null : info.State.ExitCode,
          oomKilled: info.State.OOMKilled,
        };
      }),
    );
    const containers = inspected.filter((c): c is NonNullable<typeof c> => c !== null);
    const allUp = containers.every((c) => c.running) && containers.some((c) => c.role === 'workspace');
    return {
      ref,
      state: !allUp ? 'degraded' : frozen ? 'frozen' : 'running',
      task: found[0]?.labels[LABEL.task] ?? '',
      containers,
      createdAt: new Date(Math.min(...found.map((c) => c.created))).toISOString(),
    };
  }

  async list(filter: SweepFilter = {}): Promise<SeatStatus[]> {
    return this.op('list', async () => {
      const found = await this.seatContainers({ session: filter.session });
      const bySeat = new Map<string, SeatContainer[]>();
      for (const c of found) {
        const key = `${c.labels[LABEL.session]}/${c.labels[LABEL.seat]}`;
        bySeat.set(key, [...(bySeat.get(key) ?? []), c]);
      }
      const now = Date.now();
      const out: SeatStatus[] = [];
      for (const [key, cs] of bySeat) {
        if (filter.olderThanMs !== undefined && now - Math.min(...cs.map((c) => c.created)) < filter.olderThanMs) continue;
        const [session, seat] = key.split('/') as [string, string];
        const ref = { session, seat };
        out.push(await this.statusOf(ref, cs, await this.isFrozen(ref)));
      }
      return out.sort((a, b) => `${a.ref.session}/${a.ref.seat}`.localeCompare(`${b.ref.session}/${b.ref.seat}`));
    });
  }

  // ---- exec -------------------------------------------------------------------------------

  async exec(ref: SeatRef, opts: ExecOptions): Promise<ExecResult> {
    const user = opts.user ?? 'candidate';
    if (user === 'candidate' && (await this.op('exec', () => this.isFrozen(ref), ref))) throw seatFrozen(ref);
    const container = await this.container(ref, opts.container ?? 'workspace');
    return this.op('exec', () => this.execIn(container, opts), ref);
  }

  private async execIn(container: Docker.Container, opts: Omit<ExecOptions, 'stdin'> & { stdin?: string | Buffer | Readable }): Promise<ExecResult> {
    const started = Date.now();
    const tty = opts.tty ?? false;
    const exec = await container.exec({
      Cmd: opts.cmd,
      User: (opts.user ?? 'candidate') === 'candidate' ? CANDIDATE_USER : '0:0',
      Tty: tty,
      AttachStdin: opts.stdin !== undefined,
      AttachStdout: true,
      AttachStderr: true,
      Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
      ...(opts.workdir ? { WorkingDir: opts.workdir } : {}),
    });
    const stream = (await exec.start({ hijack: true, stdin: opts.stdin !== undefined, Tty: tty })) as Duplex;
    const cap = opts.outputCapBytes ?? DEFAULT_OUTPUT_CAP;
    const out = new Capped(cap);
    const err = new Capped(cap);
    const sink = (which: 'stdout' | 'stderr', target: Capped): PassThrough => {
      const p = new PassThrough();
      p.on('data', (c: Buffer) => {
        target.push(c);
        opts.onOutput?.(which, c);
      });
      return p;
    };
    const outP = sink('stdout', out);
    const errP = sink('stderr', err);
    if (tty) stream.pipe(outP);
    else this.docker.modem.demuxStream(stream, outP, errP);

    let timedOut = false;
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = opts.deadlineMs
      ? new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          timedOut = true;
          resolve();
        }, opts.deadlineMs);
      })
      : new Promise<void>(() => undefined);

    if (opts.stdin !== undefined) {
      const src = opts.stdin;
      if (typeof src === 'string' || Buffer.isBuffer(src)) stream.end(src);
      else src.pipe(stream);
    }
    await Promise.race([ended, deadline]);
    if (timer) clearTimeout(timer);
    if (timedOut) {
      await this.killExec(exec, container.id);
      stream.destroy();
    }
    let exitCode: number | null = null;
    for (let i = 0; i < 50; i++) {
      const info = await exec.inspect();
      if (!info.Running) {
        exitCode = timedOut ? null : info.ExitCode;
        break;
      }
      if (timedOut) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    return {
      exitCode,
      stdout: out.text(),
      stderr: err.text(),
      truncated: out.truncated || err.truncated,
      timedOut,
      durationMs: Date.now() - started,
    };
  }

  /**
   * Docker has no "kill exec": kill the exec's process from the host, after checking through
   * /proc that the PID still belongs to this container (PIDs are reused). Only possible when the
   * engine is local; otherwise the stream is cut and the process is left to the seat's end.
   */
  private async killExec(exec: Docker.Exec, containerId: string): Promise<void> {
    try {
      const info = await exec.inspect();
      const pid = info.Pid;
      if (!info.Running || !pid) return;
      if (!inContainer(pid, containerId)) return;
      // The whole process group the exec leads, then the leader itself.
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        process.kill(pid, 'SIGKILL');
      }
    } catch {
      // best effort: the result already says timedOut
    }
  }

  async openTerminal(ref: SeatRef, opts: TerminalOptions = {}): Promise<TerminalSession> {
    const root = opts.user === 'root';
    if (!root && (await this.op('terminal', () => this.isFrozen(ref), ref))) throw seatFrozen(ref);
    const container = await this.container(ref);
    return this.op('terminal', async () => {
      const exec = await container.exec({
        Cmd: opts.cmd ?? ['/bin/bash', '-l'],
        User: root ? '0' : CANDIDATE_USER,
        Tty: true,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Env: root ? ['TERM=xterm-256color', 'HOME=/root', 'USER=root'] : ['TERM=xterm-256color', 'HOME=/home/candidate', 'USER=candidate'],
      });
      const stream = (await exec.start({ hijack: true, stdin: true, Tty: true })) as Duplex;
      await exec.resize({ h: opts.rows ?? 24, w: opts.cols ?? 80 }).catch(() => undefined);
      const key = `${ref.session}/${ref.seat}`;
      const done = new Promise<number | null>((resolve) => {
        const finish = (): void => {
          this.terminals.get(key)?.delete(session);
          exec.inspect().then((i) => resolve(i.Running ? null : i.ExitCode), () => resolve(null));
        };
        stream.on('close', finish);
        stream.on('end', finish);
      });
      const session: TerminalSession = {
        stream,
        resize: async (cols, rows) => {
          await exec.resize({ h: rows, w: cols });
        },
        done,
        close: () => stream.destroy(),
        hangUp: async () => {
          await this.hangUpExec(exec, container.id);
          stream.destroy();
        },
      };
      if (!this.terminals.has(key)) this.terminals.set(key, new Set());
      this.terminals.get(key)!.add(session);
      return session;
    }, ref);
  }

  // ---- files --------------------------------------------------------------------------------

  private async archive(ref: SeatRef, path: string, container?: string): Promise<Readable> {
    const c = await this.container(ref, container);
    try {
      return (await c.getArchive({ path })) as Readable;
    } catch (e) {
      if (statusCodeOf(e) === 404) throw fileNotFound(ref, path);
      throw engineError('docker', 'getArchive', e, ref);
    }
  }

  async readTree(ref: SeatRef, path: string, opts: { maxBytes?: number; container?: string; prefix?: boolean } = {}): Promise<FileEntry[]> {
    const max = opts.maxBytes ?? DEFAULT_READ_CAP;
    const stream = await this.archive(ref, path, opts.container);
    return this.op('readTree', async () => {
      let entries: FileEntry[];
      try {
        entries = await readTar(stream, max, { prefix: opts.prefix ?? false });
      } catch (e) {
        if (e instanceof TarTooLarge) throw tooLarge(ref, `${path} (${e.entry})`, max);
        throw e;
      }
      // The archive is rooted at the basename of `path`; make paths relative to `path` itself.
      const root = entries[0]?.path ?? '';
      return entries.map((e) => ({ ...e, path: e.path === root ? '.' : e.path.slice(root.length + 1) }));
    }, ref);
  }

  async readFile(ref: SeatRef, path: string, opts: { maxBytes?: number; container?: string } = {}): Promise<Buffer> {
    return fileContent(await this.readTree(ref, path, opts), ref, path);
  }

  async writeFiles(ref: SeatRef, files: WriteFile[], opts: { container?: string } = {}): Promise<void> {
    const c = await this.container(ref, opts.container);
    await this.op('writeFiles', async () => c.putArchive(await buildTar(files), { path: '/' }), ref);
  }

  // ---- processes, endpoints -------------------------------------------------------------

  /**
   * Docker leaves an exec running when its stream closes, so a closed browser terminal would
   * leave its shell behind (one per page reload, until the seat's pids limit). Signal the shell
   * from the host like a terminal hang-up, with the same PID check as `killExec`.
   */
  private async hangUpExec(exec: Docker.Exec, containerId: string): Promise<void> {
    const ours = async (): Promise<number | undefined> => {
      const info = await exec.inspect().catch(() => undefined);
      const pid = info?.Pid;
      // Not running, or not ours on this host (gone, or the engine is not local): nothing to signal.
      return info?.Running && pid && inContainer(pid, containerId) ? pid : undefined;
    };
    const signal = (pid: number, sig: NodeJS.Signals): void => {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    };
    const pid = await ours();
    if (pid === undefined) return;
    signal(pid, 'SIGHUP');
    const until = Date.now() + TERMINAL_HANGUP_GRACE_MS;
    while (Date.now() < until) {
      await sleep(100);
      if ((await ours()) === undefined) return;
    }
    // A shell that ignores SIGHUP (`trap '' HUP`, which its jobs inherit): kill it and the job in
    // the terminal's foreground, which a real terminal's hang-up would have ended.
    if ((await ours()) !== pid) return;
    const foreground = foregroundGroup(pid);
    if (foreground !== undefined && foreground !== pid && inContainer(foreground, containerId)) signal(-foreground, 'SIGKILL');
    signal(-pid, 'SIGKILL');
    signal(pid, 'SIGKILL');
  }

  async processes(ref: SeatRef): Promise<SeatProcess[]> {
    return this.op('processes', async () => {
      const found = (await this.seatContainers(ref)).filter((c) => c.state === 'running');
      if (found.length === 0) throw seatNotFound(ref);
      const out: SeatProcess[] = [];
      for (const c of found) {
        // `docker top` runs ps on the host for the container's cgroup: host PIDs, nothing runs inside.
        const top = (await this.docker.getContainer(c.id).top({ ps_args: '-o pid,ppid,uid,user,args' })) as {
          Titles: string[];
          Processes: string[][];
        };
        const col = (name: string): number => top.Titles.findIndex((t) => t.trim().toUpperCase() === name);
        const [pid, ppid, uid, user, cmd] = [col('PID'), col('PPID'), col('UID'), col('USER'), col('COMMAND')];
        for (const row of top.Processes) {
          out.push({
            hostPid: Number(row[pid]),
            ppid: Number(row[ppid]),
            user: row[user] ?? '',
            ...(uid >= 0 && /^\d+$/.test(row[uid] ?? '') ? { uid: Number(row[uid]) } : {}),
            command: row[cmd] ?? '',
            role: c.role,
            pidNamespace: 'host',
          });
        }
      }
      return out;
    }, ref);
  }

  /**
   * Graders reach a seat's service at the container's address on the seat network, which the
   * host routes to directly. (Docker publishes no ports for containers on `internal` networks,
   * so a 127.0.0.1 mapping is not available for seats without egress.) The runner must therefore
   * run on the engine's host.
   */
  async endpoint(ref: SeatRef, port: number, opts: { container?: string } = {}): Promise<Endpoint> {
    const c = await this.container(ref, opts.container);
    return this.op('endpoint', async () => {
      let info = await c.inspect();
      // A sidecar shares the workspace's network namespace: its ports are at the workspace's address.
      if (info.HostConfig.NetworkMode?.startsWith('container:')) {
        const running = info.State.Running;
        info = await this.docker.getContainer(info.HostConfig.NetworkMode.slice('container:'.length)).inspect();
        if (!running) info.State.Running = false;
      }
      const net = Object.entries(info.NetworkSettings.Networks).find(([name]) => name.startsWith(sessionNetworkName(ref.session)))?.[1];
      if (!info.State.Running || !net?.IPAddress) {
        throw new DeploylabError({
          code: 'SANDBOX_NO_ENDPOINT',
          fault: 'candidate',
          message: { zh: `考位容器未运行，无法访问端口 ${port}`, en: `seat container is not running; port ${port} unreachable` },
          details: { ...ref, port },
        });
      }
      return { host: net.IPAddress, port };
    }, ref);
  }

  // ---- freeze, evidence, teardown ---------------------------------------------------------

  /**
   * Freeze = candidate access closed: a labelled marker volume says so (it survives a runner
   * restart and is swept with the seat), new candidate execs and terminals are refused, and the
   * terminals this driver opened are detached. Nothing is paused or killed: graders probe the
   * candidate's services live.
   */
  async freeze(ref: SeatRef): Promise<void> {
    const status = await this.status(ref);
    await this.op('freeze', async () => {
      if (!(await this.isFrozen(ref))) {
        await this.docker.createVolume({
          Name: seatObjectName(ref, 'frozen'),
          Labels: {
            [LABEL.session]: ref.session,
            [LABEL.seat]: ref.seat,
            [LABEL.task]: status.task,
            [LABEL.component]: 'seat',
            [LABEL.role]: 'frozen-marker',
          },
        });
      }
    }, ref);
    const key = `${ref.session}/${ref.seat}`;
    for (const t of this.terminals.get(key) ?? []) t.close();
    this.terminals.delete(key);
  }

  async thaw(ref: SeatRef): Promise<void> {
    await this.status(ref);
    await this.op('thaw', async () => {
      try {
        await this.docker.getVolume(seatObjectName(ref, 'frozen')).remove();
      } catch (e) {
        if (statusCodeOf(e) !== 404) throw e;
      }
    }, ref);
  }

  /**
   * From the engine's own accounting (`/system/df`: each container's writable layer, each volume's
   * size, the nested daemon's images and containers included in its data volume), one call for every
   * seat; the seat cannot shape what is counted.
   */
  async diskUsage(filter: { session?: string } = {}): Promise<SeatDiskUsage[]> {
    return this.op('diskUsage', async () => {
      const df = (await this.docker.df()) as {
        Containers?: { Labels?: Record<string, string>; SizeRw?: number }[];
        Volumes?: { Labels?: Record<string, string> | null; UsageData?: { Size?: number } | null }[];
      };
      const seats = new Map<string, SeatDiskUsage>();
      const add = (labels: Record<string, string> | null | undefined, kind: 'container' | 'volume', bytes: number): void => {
        if (!labels || labels[LABEL.component] !== 'seat') return;
        const session = labels[LABEL.session];
        const seat = labels[LABEL.seat];
        if (!session || !seat || (filter.session && session !== filter.session)) return;
        const key = `${session}/${seat}`;
        let u = seats.get(key);
        if (!u) seats.set(key, (u = { ref: { session, seat }, bytes: 0, parts: [] }));
        const b = Math.max(0, bytes);
        u.bytes += b;
        u.parts.push({ kind, role: labels[LABEL.role] ?? '?', bytes: b });
      };
      for (const c of df.Containers ?? []) add(c.Labels, 'container', c.SizeRw ?? 0);
      for (const v of df.Volumes ?? []) add(v.Labels, 'volume', v.UsageData?.Size ?? 0);
      return [...seats.values()];
    });
  }

  /** Halt = the engine's freezer on every container of the seat (docker pause). */
  async halt(ref: SeatRef): Promise<void> {
    const status = await this.status(ref);
    await this.op('halt', async () => {
      for (const c of status.containers) {
        const info = await this.docker.getContainer(c.id).inspect();
        if (info.State.Running && !info.State.Paused) await this.docker.getContainer(c.id).pause();
      }
    }, ref);
    const key = `${ref.session}/${ref.seat}`;
    for (const t of this.terminals.get(key) ?? []) t.close();
    this.terminals.delete(key);
  }

  async release(ref: SeatRef): Promise<void> {
    const status = await this.status(ref);
    await this.op('release', async () => {
      for (const c of status.containers) {
        const info = await this.docker.getContainer(c.id).inspect();
        if (info.State.Paused) await this.docker.getContainer(c.id).unpause();
      }
    }, ref);
  }

  async captureEvidence(ref: SeatRef, destFile: string, opts: { path?: string } = {}): Promise<EvidenceArchive> {
    let path = opts.path;
    if (!path) {
      const info = await (await this.container(ref)).inspect();
      path = info.Config.WorkingDir || '/workspace';
    }
    const stream = await this.archive(ref, path);
    return this.op('captureEvidence', async () => {
      const hash = createHash('sha256');
      const hashing = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      await pipeline(stream, createGzip(), hashing, createWriteStream(destFile));
      return { file: destFile, bytes: (await stat(destFile)).size, sha256: hash.digest('hex') };
    }, ref);
  }

  async destroy(ref: SeatRef): Promise<void> {
    await this.op('destroy', async () => {
      await this.removeSeatObjects(ref);
      // The last seat of a session takes the session network with it, unless a provision in
      // this process is about to use it (one in another process recreates it: createSeat).
      if (!this.provisioning.has(ref.session)) {
        const rest = await this.docker.listContainers({ all: true, filters: { label: labelFilters({ session: ref.session }) } });
        if (rest.length === 0) await this.removeNetworks({ session: ref.session }, () => true);
      }
    }, ref);
    this.terminals.delete(`${ref.session}/${ref.seat}`);
  }

  async sweep(filter: SweepFilter = {}): Promise<SweptItem[]> {
    return this.op('sweep', async () => {
      const ref = { session: filter.session };
      const now = Date.now();
      const old = (createdMs: number): boolean => filter.olderThanMs === undefined || now - createdMs >= filter.olderThanMs;
      const removed = await this.removeSeatObjects(ref, old);
      removed.push(...(await this.removeNetworks(ref, old)));
      // Rules whose bridge vanished some other way (engine restart, manual removal).
      if (this.hostFirewall) {
        await removeHostRules();
        await removeAllowRules();
        await removeAddressGuards();
      }
      return removed;
    });
  }

  private static item(kind: string, id: string, name: string, labels: Record<string, string> | undefined): SweptItem {
    return { kind, id, name, session: labels?.[LABEL.session] ?? '', seat: labels?.[LABEL.seat] ?? '' };
  }

  /** Containers and volumes carrying the labels (one seat, a session, or all), and a seat's allow rules. */
  private async removeSeatObjects(ref: Partial<SeatRef>, old: (createdMs: number) => boolean = () => true): Promise<SweptItem[]> {
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
        removed.push(DockerDriver.item('container', c.Id, c.Names[0]?.replace(/^\//, '') ?? '', c.Labels));
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
        removed.push(DockerDriver.item('volume', v.Name, v.Name, v.Labels));
      }),
    );
    return removed;
  }

  /** Session networks (and their host rules) with no seat of ours left on them. */
  private async removeNetworks(ref: Partial<SeatRef>, old: (createdMs: number) => boolean): Promise<SweptItem[]> {
    const removed: SweptItem[] = [];
    const networks = (await this.docker.listNetworks({ filters: { label: labelFilters(ref) } })).filter((n) => old(Date.parse(n.Created)));
    await Promise.all(
      networks.map(async (n) => {
        if (!(await this.removeNetworkIfUnused(n.Id))) return;
        this.knownNetworks.delete(n.Name);
        const bridge = n.Options?.['com.docker.network.bridge.name'];
        if (this.hostFirewall && bridge) {
          await removeHostRules(bridge);
          await removeAllowRules();
        }
        removed.push(DockerDriver.item('network', n.Id, n.Name, n.Labels));
      }),
    );
    return removed;
  }

  /**
   * Remove a network unless a seat of ours is on it. Endpoints of containers removed a moment ago
   * can linger (seen with 210 seats removed at once: "has active endpoints"), so those and in-room
   * services joined for an allow-list are disconnected, and the removal is tried again a while.
   */
  private async removeNetworkIfUnused(id: string): Promise<boolean> {
    const net = this.docker.getNetwork(id);
    for (let attempt = 0; ; attempt++) {
      const info = (await net.inspect().catch((e: unknown) => (ignore404(e), null))) as { Containers?: Record<string, unknown> } | null;
      if (!info) return false;
      const attached = Object.keys(info.Containers ?? {});
      const ours = attached.length ? await this.docker.listContainers({ all: true, filters: { label: labelFilters({}), id: attached } }) : [];
      if (ours.length > 0) return false; // seats still use it (a sweep of old seats only, a seat joining)
      for (const c of attached) await net.disconnect({ Container: c, Force: true }).catch(() => undefined);
      try {
        await net.remove();
        return true;
      } catch (e) {
        if (statusCodeOf(e) === 404) return false;
        if (statusCodeOf(e) !== 403 && statusCodeOf(e) !== 409) throw e;
        if (attempt >= NETWORK_REMOVE_ATTEMPTS) throw networkStuck(id, e);
        await new Promise((r) => setTimeout(r, 250 + 100 * attempt));
      }
    }
  }
}

/** No container on it, and still "has active endpoints": the engine's own stale state. */
function networkStuck(id: string, cause: unknown): DeploylabError {
  return new DeploylabError({
    code: 'SANDBOX_NETWORK_STUCK',
    fault: 'infrastructure',
    message: {
      zh: `考场网络 ${id.slice(0, 12)} 已无容器，引擎仍拒绝删除（残留端点）`,
      en: `network ${id.slice(0, 12)} has no container left, yet the engine refuses to remove it (stale endpoints)`,
    },
    hint: { zh: '重启 Docker 引擎后再运行 deploylab sandbox sweep', en: 'restart the Docker engine, then run `deploylab sandbox sweep`' },
    details: { network: id },
    cause,
  });
}

function ignore404(e: unknown): void {
  if (statusCodeOf(e) !== 404) throw e;
}

/** The foreground process group of the terminal `pid` controls (`tpgid` in /proc/PID/stat), if any. */
function foregroundGroup(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state ppid pgrp session tty_nr tpgid …; comm may hold spaces, so cut at the last ')'.
    const tpgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[5]);
    return Number.isInteger(tpgid) && tpgid > 0 ? tpgid : undefined;
  } catch {
    return undefined;
  }
}

function inContainer(pid: number, containerId: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(containerId);
  } catch {
    return false;
  }
}
