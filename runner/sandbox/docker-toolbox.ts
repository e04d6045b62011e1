/**
 * The Docker driver's trusted toolbox (driver.ts `TrustedToolbox`): a one-off run on copies of seat
 * files with no network (`runInToolbox`), and a reference service the harness alone can reach
 * (`startReference`). Both are labelled containers of their own, removed afterwards even on
 * failure, and swept with the session (`sweepToolboxes`) when a crash leaves one behind.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { DeploylabError, isDeploylabError } from '../core/errors.js';
import { CONTAINER_LOG_CONFIG } from './docker-seat-objects.js';
import { TOOLBOX_FILE_MAX_BYTES, type SeatRef, type SweepFilter, type SweptItem, type ToolboxRun, type ToolboxService, type ToolboxServiceSpec, type TrustedToolbox, type WriteFile } from './driver.js';
import { BRIDGE_PREFIX, closeHostToSeat, removeHostRules } from './host-firewall.js';
import { LABEL } from './labels.js';
import { seatContainers } from './docker-seat-state.js';
import { buildTar, readTar } from './tar.js';

const TOOLBOX_OUTPUT_CAP = 256 * 1024;
const logConfig = (): Docker.HostConfig['LogConfig'] => ({ Type: CONTAINER_LOG_CONFIG.Type, Config: { ...CONTAINER_LOG_CONFIG.Config } });

/** Labels every toolbox container carries, so a sweep finds what a crash left behind. */
export const TOOLBOX_COMPONENT = 'grading-toolbox';
/** Role label of a reference service and its network. */
export const REFERENCE_ROLE = 'reference';

export interface Toolbox {
  docker: Docker;
  image: string;
  /**
   * Close the host to a reference service's bridge (iptables INPUT rule, as for seat bridges).
   * Default: when the engine is local (a unix socket), as the docker driver decides.
   */
  hostFirewall?: boolean;
}

export function toolboxLabels(ref: SeatRef, task: string, role?: string): Record<string, string> {
  return {
    [LABEL.session]: ref.session,
    [LABEL.seat]: ref.seat,
    [LABEL.task]: task,
    [LABEL.component]: TOOLBOX_COMPONENT,
    ...(role ? { [LABEL.role]: role } : {}),
  };
}

function toolboxFailed(e: unknown): DeploylabError {
  if (isDeploylabError(e)) return e;
  return new DeploylabError({
    code: 'TOOLBOX_FAILED',
    fault: 'infrastructure',
    message: { zh: `可信工具箱容器运行失败：${(e as Error).message}`, en: `the trusted toolbox container failed: ${(e as Error).message}` },
    cause: e,
  });
}

/** Run one command in a fresh toolbox container without network, on the given files. */
export async function runInToolbox(
  tb: Toolbox,
  labels: Record<string, string>,
  files: WriteFile[],
  o: { cmd: string[]; timeoutMs: number; collect?: string[]; networkMode?: string },
): Promise<ToolboxRun> {
  const started = Date.now();
  let container: Docker.Container | undefined;
  try {
    container = await tb.docker.createContainer({
      Image: tb.image,
      Cmd: ['sleep', 'infinity'],
      Labels: labels,
      // No network: the toolbox judges copies and talks to nothing; or (networkMode) the seat's own
      // network namespace, which reaches no more than the candidate's shell does.
      HostConfig: {
        NetworkMode: o.networkMode ?? 'none',
        // In the seat's namespace, candidate code (a page's scripts, a collection's) runs here: no
        // capability at all, so no raw packets onto the seat network and no way back to more.
        ...(o.networkMode ? { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] } : {}),
        NanoCpus: 1e9,
        Memory: 2048 * 1024 * 1024,
        MemorySwap: 2048 * 1024 * 1024,
        PidsLimit: 512,
        Init: true,
        LogConfig: logConfig(),
      },
    });
    await container.putArchive(await buildTar(files), { path: '/' });
    await container.start();
    const exec = await container.exec({ Cmd: ['timeout', '-s', 'KILL', `${Math.ceil(o.timeoutMs / 1000)}`, ...o.cmd], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const keep = (arr: Buffer[]) => ({
      write: (c: Buffer) => {
        if (arr.reduce((a, b) => a + b.length, 0) < TOOLBOX_OUTPUT_CAP) arr.push(c);
        return true;
      },
    });
    tb.docker.modem.demuxStream(stream, keep(out) as unknown as NodeJS.WritableStream, keep(err) as unknown as NodeJS.WritableStream);
    await new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    const info = await exec.inspect();
    const timedOut = info.ExitCode === 137 && Date.now() - started >= o.timeoutMs - 1000;
    const collected: Record<string, Buffer> = {};
    for (const path of o.collect ?? []) {
      const archive = await container.getArchive({ path }).catch((e: { statusCode?: number }) => {
        if (e.statusCode === 404) return null;
        throw e;
      });
      const [entry] = archive ? await readTar(archive as unknown as Readable, TOOLBOX_FILE_MAX_BYTES) : [];
      if (entry?.type === 'file' && entry.content) collected[path] = entry.content;
    }
    return {
      exitCode: timedOut ? null : info.ExitCode ?? null,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      timedOut,
      durationMs: Date.now() - started,
      where: `toolbox ${tb.image}`,
      ...(o.collect ? { files: collected } : {}),
    };
  } catch (e) {
    throw toolboxFailed(e);
  } finally {
    await container?.remove({ force: true, v: true }).catch(() => undefined);
  }
}

/** Docker's multiplexed log stream (8-byte frame headers) as text; a TTY-less container's logs come so. */
function demuxLogs(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && buf[i]! <= 2 && buf[i + 1] === 0) {
    const n = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + n));
    i += 8 + n;
  }
  return i === 0 ? buf.toString('utf8') : Buffer.concat(parts).toString('utf8');
}

/**
 * A reference service in a toolbox container on an `internal` bridge network of its own: no route
 * out, no other container on it, and (local engine) no way into the host's own services; the
 * harness reaches it at its address on that network. Everything is removed by `stop()`, also when
 * starting fails half-way.
 */
export async function startReference(tb: Toolbox, labels: Record<string, string>, files: WriteFile[], spec: ToolboxServiceSpec): Promise<ToolboxService> {
  const id = randomBytes(5).toString('hex').slice(0, 9);
  const netName = `dl-ref-${id}`;
  // Linux interface names are at most 15 characters; the seat prefix makes sweeps find the rule.
  const bridge = `${BRIDGE_PREFIX}${id}`;
  const hostFirewall = tb.hostFirewall ?? !(tb.docker.modem as { host?: string }).host;
  const refLabels = { ...labels, [LABEL.component]: TOOLBOX_COMPONENT, [LABEL.role]: REFERENCE_ROLE };
  let network: Docker.Network | undefined;
  let ruleSet = false;
  let container: Docker.Container | undefined;
  const stop = async (): Promise<void> => {
    await container?.remove({ force: true, v: true }).catch(() => undefined);
    await network?.remove().catch(() => undefined);
    if (ruleSet) await removeHostRules(bridge).catch(() => undefined);
  };
  try {
    network = await tb.docker.createNetwork({
      Name: netName,
      Driver: 'bridge',
      Internal: true,
      CheckDuplicate: true,
      Options: { 'com.docker.network.bridge.name': bridge },
      Labels: refLabels,
    });
    if (hostFirewall) {
      ruleSet = true;
      await closeHostToSeat(bridge);
    }
    const port = `${spec.port}/tcp`;
    container = await tb.docker.createContainer({
      name: netName,
      Image: tb.image,
      Cmd: spec.command,
      WorkingDir: '/work',
      Labels: refLabels,
      ExposedPorts: { [port]: {} },
      HostConfig: {
        NetworkMode: netName,
        NanoCpus: Math.round(spec.cpus * 1e9),
        Memory: spec.memoryMiB * 1024 * 1024,
        MemorySwap: spec.memoryMiB * 1024 * 1024,
        PidsLimit: 256,
        Init: true,
        LogConfig: logConfig(),
        // Enough for a server that drops to its own user (nginx); nothing to gain beyond that.
        CapDrop: ['ALL'],
        CapAdd: ['CHOWN', 'SETUID', 'SETGID', 'NET_BIND_SERVICE'],
        SecurityOpt: ['no-new-privileges'],
        RestartPolicy: { Name: 'no' },
      },
    });
    if (files.length > 0) await container.putArchive(await buildTar(files), { path: '/' });
    await container.start();
    const info = await container.inspect();
    const ip = info.NetworkSettings.Networks[netName]?.IPAddress;
    if (!ip) throw new Error(`no address on ${netName}`);
    const c = container;
    return {
      endpoint: { host: ip, port: spec.port },
      where: `toolbox ${tb.image} (${netName})`,
      async running() {
        const s = (await c.inspect()).State;
        return { running: s.Running, exitCode: s.Running ? null : s.ExitCode };
      },
      async logs() {
        const b = (await c.logs({ stdout: true, stderr: true, tail: 200 })) as unknown as Buffer;
        return demuxLogs(Buffer.isBuffer(b) ? b : Buffer.from(String(b)));
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw toolboxFailed(e);
  }
}

/** Remove toolbox containers and reference networks a crashed run left behind (by session and age, or all). */
export async function sweepToolboxes(docker: Docker, filter: SweepFilter = {}): Promise<SweptItem[]> {
  const label = [`${LABEL.component}=${TOOLBOX_COMPONENT}`, ...(filter.session ? [`${LABEL.session}=${filter.session}`] : [])];
  const now = Date.now();
  const old = (createdMs: number): boolean => filter.olderThanMs === undefined || now - createdMs >= filter.olderThanMs;
  const item = (kind: string, id: string, name: string, labels: Record<string, string> | undefined): SweptItem => ({
    kind, id, name, session: labels?.[LABEL.session] ?? '', seat: labels?.[LABEL.seat] ?? '',
  });
  const list = (await docker.listContainers({ all: true, filters: { label } })).filter((c) => old(c.Created * 1000));
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
  const nets = (await docker.listNetworks({ filters: { label } })).filter((n) => old(Date.parse(n.Created)));
  await Promise.all(nets.map((n) => docker.getNetwork(n.Id).remove().catch(() => undefined)));
  // The INPUT rules of bridges that are gone now (only ever set on a local engine).
  if (nets.length > 0 && !(docker.modem as { host?: string }).host) await removeHostRules().catch(() => undefined);
  return [
    ...list.map((c) => item('container', c.Id, c.Names[0]?.replace(/^\//, '') ?? '', c.Labels)),
    ...nets.map((n) => item('network', n.Id, n.Name, n.Labels)),
  ];
}

/** The toolbox of a Docker driver: containers on the same engine as its seats. */
export class DockerToolbox implements TrustedToolbox {
  constructor(
    private readonly docker: Docker,
    private readonly hostFirewall: boolean,
  ) {}

  async run(ref: SeatRef, o: Parameters<TrustedToolbox['run']>[1]): Promise<ToolboxRun> {
    const { image, task, files, network, ...cmd } = o;
    const networkMode = network === 'seat' ? `container:${await this.workspaceId(ref)}` : undefined;
    return runInToolbox({ docker: this.docker, image, hostFirewall: this.hostFirewall }, toolboxLabels(ref, task), files, { ...cmd, ...(networkMode ? { networkMode } : {}) });
  }

  /** The seat's running workspace container, whose network namespace a `network: 'seat'` run joins. */
  private async workspaceId(ref: SeatRef): Promise<string> {
    const found = await seatContainers(this.docker, ref).catch((e: unknown) => {
      throw toolboxFailed(e);
    });
    const ws = found.find((c) => c.role === 'workspace' && c.state === 'running');
    if (!ws) {
      throw new DeploylabError({
        code: 'SEAT_WORKSPACE_DOWN',
        fault: 'infrastructure',
        message: { zh: `考位工作容器未运行，工具箱无法进入考位网络：${ref.session}/${ref.seat}`, en: `the seat's workspace container is not running, so the toolbox cannot join the seat network: ${ref.session}/${ref.seat}` },
        details: { ...ref },
      });
    }
    return ws.id;
  }

  startService(ref: SeatRef, o: Parameters<TrustedToolbox['startService']>[1]): Promise<ToolboxService> {
    const { image, task, files, ...spec } = o;
    return startReference({ docker: this.docker, image, hostFirewall: this.hostFirewall }, toolboxLabels(ref, task), files, spec);
  }

  sweep(filter: SweepFilter = {}): Promise<SweptItem[]> {
    return sweepToolboxes(this.docker, filter);
  }
}
