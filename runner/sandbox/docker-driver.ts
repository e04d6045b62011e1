import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import Docker from 'dockerode';
import type { Config } from '../core/config.js';
import { DeploylabError } from '../core/errors.js';
import type {
  HostEngineAccess,
  Endpoint,
  EvidenceArchive,
  ExecOptions,
  DiskUsageFilter,
  ExecResult,
  FileEntry,
  Leftover,
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
import { execIn, startTerminal } from './docker-exec.js';
import { dockerHostEngine, engineLeftovers } from './docker-host-engine.js';
import { DEFAULT_SUBNET_POOL, DEFAULT_SUBNET_PREFIX, SessionNetworks, sandboxesPerSessionFor } from './docker-network.js';
import { statusCodeOf } from './docker-replies.js';
import { DockerToolbox } from './docker-toolbox.js';
import { SeatObjects } from './docker-seat-objects.js';
import { clearFrozen, containerProcesses, isFrozen, listSeats, markFrozen, seatContainers, seatDiskUsage, seatStatusOf, type SeatContainer } from './docker-seat-state.js';
import { removeAddressGuards, removeAllowRules, removeHostRules } from './host-firewall.js';
import { driverOp, engineError, fileContent, fileNotFound, seatExists, seatFrozen, seatNotFound, tooLarge } from './errors.js';
import { labelFilters, sessionNetworkName } from './labels.js';
import { TarTooLarge, buildTar, readTar } from './tar.js';

export { SEAT_CAPABILITIES, DIND_CAPABILITIES } from './driver.js';
export { CONTAINER_LOG_CONFIG, SEAT_SHM_BYTES } from './docker-seat-objects.js';
export { DEFAULT_SUBNET_POOL, DEFAULT_SUBNET_PREFIX, sandboxesPerSessionFor } from './docker-network.js';

const DEFAULT_READ_CAP = 64 << 20;

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

/** The driver as the config describes it: engine address and seat subnet pool. */
export function dockerDriverFor(config: Config, docker?: Docker): DockerDriver {
  return new DockerDriver({
    ...(docker ? { docker } : {}),
    ...(config.docker.host ? { host: config.docker.host } : {}),
    subnetPool: config.docker.seatSubnetPool,
  });
}

function dockerFrom(host: string | undefined): Docker {
  if (!host) return new Docker();
  const u = new URL(host);
  if (u.protocol === 'unix:') return new Docker({ socketPath: u.pathname });
  return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: u.protocol === 'https:' ? 'https' : 'http' });
}

export class DockerDriver implements SandboxDriver {
  readonly name = 'docker' as const;
  readonly docker: Docker;
  /** Open candidate terminals per seat, detached on freeze. */
  private readonly terminals = new Map<string, Set<TerminalSession>>();

  private readonly hostFirewall: boolean;

  constructor(opts: DockerDriverOptions = {}) {
    this.docker = opts.docker ?? dockerFrom(opts.host);
    this.hostFirewall = opts.hostFirewall ?? (!opts.host || opts.host.startsWith('unix:'));
    const subnetPrefix = opts.subnetPrefix ?? DEFAULT_SUBNET_PREFIX;
    this.sandboxesPerSession = sandboxesPerSessionFor(subnetPrefix);
    this.networks = new SessionNetworks(this.docker, { hostFirewall: this.hostFirewall, subnetPool: opts.subnetPool ?? DEFAULT_SUBNET_POOL, subnetPrefix });
    this.seats = new SeatObjects(this.docker, this.networks, this.hostFirewall);
    this.toolbox = new DockerToolbox(this.docker, this.hostFirewall);
    // A restarted workspace has a new interface on the bridge: its address is guarded again.
    this.hostEngine = dockerHostEngine(this.docker, this, async (ref, role) => {
      if (role === 'workspace') await this.guardAddress(ref);
    });
  }

  readonly hostEngine: HostEngineAccess;
  /** Toolbox containers on this same engine, beside the seats. */
  readonly toolbox: DockerToolbox;

  readonly sandboxesPerSession: number;
  /** The session networks seats are put on. */
  private readonly networks: SessionNetworks;
  /** Making and removing the containers and volumes of seats. */
  private readonly seats: SeatObjects;
  /** Provisions in flight per session: the last destroy leaves the network to them. */
  private readonly provisioning = new Map<string, number>();

  private op<T>(operation: string, fn: () => Promise<T>, ref?: SeatRef): Promise<T> {
    return driverOp('docker', operation, fn, ref);
  }

  // ---- provisioning -------------------------------------------------------------------------

  async provision(plan: SeatPlan): Promise<SeatStatus> {
    const ref = { session: plan.session, seat: plan.seat };
    return this.op('provision', async () => {
      // A seat that exists is left as it is: the cleanup below would otherwise remove it.
      if ((await seatContainers(this.docker, ref)).length > 0) throw seatExists(ref);
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
      return seatStatusOf(this.docker, ref, made, false);
    }, ref);
  }

  private async createSeat(plan: SeatPlan): Promise<SeatContainer[]> {
    const n = this.provisioning.get(plan.session) ?? 0;
    this.provisioning.set(plan.session, n + 1);
    try {
      const net = await this.networks.sessionNetwork(plan);
      try {
        return await this.seats.create(plan, net);
      } catch (e) {
        // The network went away under us (the last seat's destroy in another runner, a manual
        // removal after we saw it): make it again.
        if (statusCodeOf(e) !== 404 || !/network/i.test(String((e as Error).message))) throw e;
        this.networks.forget(net.name);
        await this.seats.remove({ session: plan.session, seat: plan.seat });
        return await this.seats.create(plan, await this.networks.sessionNetwork(plan));
      }
    } finally {
      const left = (this.provisioning.get(plan.session) ?? 1) - 1;
      if (left > 0) this.provisioning.set(plan.session, left);
      else this.provisioning.delete(plan.session);
    }
  }

  /**
   * Bind the seat's port on the bridge to its own MAC and address (host-firewall.ts). Again after
   * the workspace container restarts: its interface is new then, and the old guard is gone with it.
   */
  async guardAddress(ref: SeatRef, inspected?: Docker.ContainerInspectInfo): Promise<void> {
    if (!this.hostFirewall) return;
    await this.networks.guardAddress(ref, inspected ?? (await (await this.container(ref)).inspect()));
  }

  // ---- inspection ---------------------------------------------------------------------------

  private async container(ref: SeatRef, role = 'workspace'): Promise<Docker.Container> {
    const all = await this.op('find', () => seatContainers(this.docker, ref), ref);
    const c = all.find((x) => x.role === role);
    if (!c) throw seatNotFound(ref);
    return this.docker.getContainer(c.id);
  }

  async status(ref: SeatRef): Promise<SeatStatus> {
    return this.op('status', async () => {
      const found = await seatContainers(this.docker, ref);
      if (found.length === 0) throw seatNotFound(ref);
      return seatStatusOf(this.docker, ref, found, await isFrozen(this.docker, ref));
    }, ref);
  }

  async list(filter: SweepFilter = {}): Promise<SeatStatus[]> {
    return this.op('list', () => listSeats(this.docker, filter));
  }

  // ---- exec -------------------------------------------------------------------------------

  async exec(ref: SeatRef, opts: ExecOptions): Promise<ExecResult> {
    const user = opts.user ?? 'candidate';
    if (user === 'candidate' && (await this.op('exec', () => isFrozen(this.docker, ref), ref))) throw seatFrozen(ref);
    const container = await this.container(ref, opts.container ?? 'workspace');
    return this.op('exec', () => execIn(this.docker, container, opts), ref);
  }

  async openTerminal(ref: SeatRef, opts: TerminalOptions = {}): Promise<TerminalSession> {
    const root = opts.user === 'root';
    if (!root && (await this.op('terminal', () => isFrozen(this.docker, ref), ref))) throw seatFrozen(ref);
    const container = await this.container(ref);
    return this.op('terminal', async () => {
      const key = `${ref.session}/${ref.seat}`;
      const session = await startTerminal(container, opts, (ended) => this.terminals.get(key)?.delete(ended));
      if (!this.terminals.has(key)) this.terminals.set(key, new Set());
      this.terminals.get(key)!.add(session);
      return session;
    }, ref);
  }

  /** Detach the seat's open terminals (the shells run on). */
  private detachTerminals(ref: SeatRef): void {
    const key = `${ref.session}/${ref.seat}`;
    for (const t of this.terminals.get(key) ?? []) t.close();
    this.terminals.delete(key);
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

  async processes(ref: SeatRef): Promise<SeatProcess[]> {
    return this.op('processes', async () => {
      const found = (await seatContainers(this.docker, ref)).filter((c) => c.state === 'running');
      if (found.length === 0) throw seatNotFound(ref);
      return containerProcesses(this.docker, found);
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
    await this.op('freeze', () => markFrozen(this.docker, ref, status.task), ref);
    this.detachTerminals(ref);
  }

  async thaw(ref: SeatRef): Promise<void> {
    await this.status(ref);
    await this.op('thaw', () => clearFrozen(this.docker, ref), ref);
  }

  async diskUsage(filter: DiskUsageFilter = {}): Promise<SeatDiskUsage[]> {
    return this.op('diskUsage', () => seatDiskUsage(this.docker, filter));
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
    this.detachTerminals(ref);
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
      await this.seats.remove(ref);
      // The last seat of a session takes the session network with it, unless a provision in
      // this process is about to use it (one in another process recreates it: createSeat).
      if (!this.provisioning.has(ref.session)) {
        const rest = await this.docker.listContainers({ all: true, filters: { label: labelFilters({ session: ref.session }) } });
        if (rest.length === 0) await this.networks.removeNetworks({ session: ref.session }, () => true);
      }
    }, ref);
    this.terminals.delete(`${ref.session}/${ref.seat}`);
  }

  async sweep(filter: SweepFilter = {}): Promise<SweptItem[]> {
    return this.op('sweep', async () => {
      const ref = { session: filter.session };
      const now = Date.now();
      const old = (createdMs: number): boolean => filter.olderThanMs === undefined || now - createdMs >= filter.olderThanMs;
      // The toolbox's containers and reference networks first: they are the session's too.
      const removed = await this.toolbox.sweep(filter);
      removed.push(...(await this.seats.remove(ref, old)));
      removed.push(...(await this.networks.removeNetworks(ref, old)));
      // Rules whose bridge vanished some other way (engine restart, manual removal).
      if (this.hostFirewall) {
        await removeHostRules();
        await removeAllowRules();
        await removeAddressGuards();
      }
      return removed;
    });
  }

  leftovers(filter: { session: string }): Promise<Leftover[]> {
    return this.op('leftovers', () => engineLeftovers(this.docker, filter.session));
  }
}
