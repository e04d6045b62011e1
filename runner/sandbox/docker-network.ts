import type Docker from 'dockerode';
import { DeploylabError } from '../core/errors.js';
import type { SeatPlan, SeatRef, SweptItem } from './driver.js';
import { ignore404, statusCodeOf, sweptItem } from './docker-replies.js';
import { bridgeName, closeHostToSeat, guardSeatAddress, hostVethOf, removeAllowRules, removeHostRules } from './host-firewall.js';
import { labelFilters, seatObjectName, sessionLabels, sessionNetworkName } from './labels.js';
import { pickFreeSubnet } from './subnet-pool.js';

export const DEFAULT_SUBNET_POOL = '10.213.0.0/16';

/** The session network's prefix length unless the driver is told otherwise. */
export const DEFAULT_SUBNET_PREFIX = 22;

/** Addresses of a session network kept for in-room services joined to it. */
const IN_ROOM_SERVICE_ADDRESSES = 8;

/**
 * Sandboxes one session network holds: every sandbox takes one address (sidecars share it); the
 * network's own address, broadcast and gateway are not usable, and in-room services joined to the
 * network (a model mirror) keep a few.
 */
export const sandboxesPerSessionFor = (prefix: number): number => 2 ** (32 - prefix) - 3 - IN_ROOM_SERVICE_ADDRESSES;

const SUBNET_ATTEMPTS = 5;
/** Tries (about 25 s in all) before a network whose endpoints linger is reported stuck. */
const NETWORK_REMOVE_ATTEMPTS = 20;

export interface SessionNetwork {
  name: string;
  bridge: string;
}

export interface SessionNetworksOptions {
  /** Add the host rules of host-firewall.ts (the bridge's INPUT rule, address guards). */
  hostFirewall: boolean;
  /** Where seat networks take their subnets (subnet-pool.ts). */
  subnetPool: string;
  /** Size of one session's subnet. */
  subnetPrefix: number;
}

/** The per-session bridge networks of one engine: made on first use, removed with the last seat. */
export class SessionNetworks {
  /** Serialises pick-and-create of session networks within this process. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Session networks this process has seen exist (a vanished one is caught at container create). */
  private readonly knownNetworks = new Set<string>();
  /** Bridges whose host INPUT rule this process has checked. */
  private readonly guardedBridges = new Set<string>();

  constructor(
    private readonly docker: Docker,
    private readonly opts: SessionNetworksOptions,
  ) {}

  /**
   * The session's network for seats with this egress, created on first use. One bridge per
   * session, not per seat: creating a network and starting a container on a fresh bridge cost
   * more than the container itself. Seats on it cannot reach each other because inter-container
   * traffic is off (icc=false: Docker drops bridge-to-same-bridge forwarding), the host still
   * reaches every seat, and a seat's sidecars share its network namespace instead of an address.
   */
  async sessionNetwork(plan: SeatPlan): Promise<SessionNetwork> {
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
      if (!this.opts.hostFirewall || this.guardedBridges.has(bridge)) return;
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
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    await next;
    this.knownNetworks.add(name);
    return { name, bridge };
  }

  /** The network went away under us: the next `sessionNetwork` looks again. */
  forget(name: string): void {
    this.knownNetworks.delete(name);
  }

  /** One try on a free subnet of the pool: `overlap` when another process took it meanwhile. */
  private async createNetworkOnce(name: string, bridge: string, open: boolean, plan: SeatPlan): Promise<'made' | 'overlap'> {
    const { subnetPool, subnetPrefix } = this.opts;
    const nets = await this.docker.listNetworks();
    const inUse = nets.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => (c as { Subnet?: string }).Subnet ?? '')).filter(Boolean);
    const subnet = pickFreeSubnet(subnetPool, subnetPrefix, inUse);
    if (!subnet) {
      throw new DeploylabError({
        code: 'SANDBOX_SUBNETS_EXHAUSTED',
        fault: 'infrastructure',
        message: {
          zh: `考场网络地址池 ${subnetPool} 已用尽（每个场次 /${subnetPrefix}）`,
          en: `the seat network pool ${subnetPool} is used up (one /${subnetPrefix} per session)`,
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

  /** Join an in-room service (not ours) to the session network; its address there. */
  async joinAllowed(target: string, network: string): Promise<string> {
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

  /** Bind the seat's port on the bridge to its own MAC and address (host-firewall.ts). */
  async guardAddress(ref: SeatRef, info: Docker.ContainerInspectInfo): Promise<void> {
    const net = Object.entries(info.NetworkSettings.Networks).find(([name]) => name.startsWith(sessionNetworkName(ref.session)))?.[1];
    const veth = info.State.Running ? await hostVethOf(info.State.Pid) : undefined;
    if (!veth || !net?.IPAddress || !net.MacAddress) {
      throw new Error(`seat ${ref.session}/${ref.seat}: its host-side interface or address was not found, so its address cannot be guarded`);
    }
    await guardSeatAddress(veth, net.IPAddress, net.MacAddress, seatObjectName(ref, 'workspace'));
  }

  /** Session networks (and their host rules) with no seat of ours left on them. */
  async removeNetworks(ref: Partial<SeatRef>, old: (createdMs: number) => boolean): Promise<SweptItem[]> {
    const removed: SweptItem[] = [];
    const networks = (await this.docker.listNetworks({ filters: { label: labelFilters(ref) } })).filter((n) => old(Date.parse(n.Created)));
    await Promise.all(
      networks.map(async (n) => {
        if (!(await this.removeNetworkIfUnused(n.Id))) return;
        this.knownNetworks.delete(n.Name);
        const bridge = n.Options?.['com.docker.network.bridge.name'];
        if (this.opts.hostFirewall && bridge) {
          await removeHostRules(bridge);
          await removeAllowRules();
        }
        removed.push(sweptItem('network', n.Id, n.Name, n.Labels));
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
