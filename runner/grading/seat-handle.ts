import Docker from 'dockerode';
import type { ContainerInspector, SeatContainerInfo } from '../../graders/container.js';
import type { SeatFile, SeatHandle, SeatProcess, TrustedRun } from '../../graders/probe.js';
import type { SeatControl } from '../../graders/recovery.js';
import { DeploylabError, isDeploylabError } from '../core/errors.js';
import type { SandboxDriver, SeatRef } from '../sandbox/driver.js';
import { LABEL } from '../sandbox/labels.js';
import { buildTar } from '../sandbox/tar.js';

/** What graders read at most by default (SeatHandle.readFile's documented default). */
const DEFAULT_READ_BYTES = 16 * 1024 * 1024;
/** A file copied into the toolbox is held in memory on the way: models for CPU seats stay far below. */
const TOOLBOX_COPY_MAX_BYTES = 1024 * 1024 * 1024;
const TOOLBOX_OUTPUT_CAP = 256 * 1024;

/** Labels every toolbox container carries, so a sweep finds what a crash left behind. */
export const TOOLBOX_COMPONENT = 'grading-toolbox';

export interface SeatHandleOptions {
  driver: SandboxDriver;
  ref: SeatRef;
  task: string;
  /** Trusted toolbox (docker engine + image ref); without it `runTrusted` is absent. */
  toolbox?: { docker: Docker; image: string };
  /**
   * The engine the seat's containers run on, for `inspectContainers` and `restartContainer`;
   * the docker driver's own engine by default. Without one both are absent.
   */
  docker?: Docker;
}

/** A seat handle with the optional capabilities the container and recovery probes use. */
export type FullSeatHandle = SeatHandle & ContainerInspector & SeatControl;

/**
 * The graders' view of one seat, built on the sandbox driver: files through the archive API,
 * processes from the host's table, endpoints on the seat network, trusted tools in a toolbox
 * container of their own. Nothing here runs inside the candidate's containers.
 */
export function seatHandleFor(opts: SeatHandleOptions): FullSeatHandle {
  const { driver, ref } = opts;
  const handle: FullSeatHandle = {
    id: `${ref.session}/${ref.seat}`,
    labels: { [LABEL.session]: ref.session, [LABEL.seat]: ref.seat, [LABEL.task]: opts.task },

    endpoint: (port, o) => driver.endpoint(ref, port, o?.container ? { container: o.container } : {}),

    async readFile(path, o): Promise<SeatFile | null> {
      const maxBytes = o?.maxBytes ?? DEFAULT_READ_BYTES;
      let entries;
      try {
        entries = await driver.readTree(ref, path, { maxBytes, prefix: true, ...(o?.container ? { container: o.container } : {}) });
      } catch (e) {
        if (isDeploylabError(e) && e.code === 'SANDBOX_FILE_NOT_FOUND') return null;
        throw e;
      }
      const f = entries[0];
      if (!f) return null;
      if (f.type !== 'file' || !f.content) {
        throw new DeploylabError({
          code: 'SEAT_NOT_A_FILE',
          fault: 'candidate',
          message: { zh: `不是普通文件（${f.type}）：${path}`, en: `not a regular file (${f.type}): ${path}` },
          details: { ...ref, path, type: f.type, linkTarget: f.linkTarget },
        });
      }
      return { path, size: f.size, mode: f.mode & 0o7777, uid: f.uid, gid: f.gid, data: f.content, truncated: f.truncated ?? false };
    },

    async listProcesses(): Promise<SeatProcess[]> {
      const procs = await driver.processes(ref);
      // The host's ps names users from the host's passwd; the seat's own names are what a task means.
      const names = new Map<string, Map<number, string>>();
      for (const role of new Set(procs.filter((p) => p.uid !== undefined).map((p) => p.role))) {
        names.set(role, await seatUsers(driver, ref, role));
      }
      return procs.map((p) => ({
        hostPid: p.hostPid,
        ppid: p.ppid,
        user: (p.uid !== undefined ? names.get(p.role)?.get(p.uid) : undefined) ?? (p.uid !== undefined ? String(p.uid) : p.user),
        command: p.command,
        role: p.role,
        // The recovery probe signals host PIDs only; a pod's own PIDs must say so.
        ...(p.pidNamespace ? { pidNamespace: p.pidNamespace } : {}),
      }));
    },

    async checkPath(): Promise<void> {
      const st = await driver.status(ref);
      const ws = st.containers.find((c) => c.role === 'workspace');
      if (!ws?.running) {
        throw new DeploylabError({
          code: 'SEAT_WORKSPACE_DOWN',
          fault: 'infrastructure',
          message: { zh: `考位工作容器未运行：${handle.id}`, en: `the seat's workspace container is not running: ${handle.id}` },
          details: { ...ref, containers: st.containers },
        });
      }
      // The workspace has an address on the seat network: the harness's route in exists.
      await driver.endpoint(ref, 1);
    },
  };
  if (opts.toolbox) {
    const tb = opts.toolbox;
    handle.runTrusted = (o) => runInToolbox(driver, ref, opts.task, tb, o);
  }
  const engine = opts.docker ?? (driver.name === 'docker' ? (driver as SandboxDriver & { docker: Docker }).docker : undefined);
  if (engine) {
    handle.inspectContainers = async (): Promise<SeatContainerInfo[]> => {
      const st = await driver.status(ref);
      const out: SeatContainerInfo[] = [];
      for (const c of st.containers) {
        try {
          out.push({ role: c.role, info: await engine.getContainer(c.id).inspect() });
        } catch (e) {
          if ((e as { statusCode?: number }).statusCode !== 404) throw e; // removed meanwhile
        }
      }
      return out;
    };
    handle.restartContainer = async (role: string): Promise<void> => {
      const st = await driver.status(ref);
      const c = st.containers.find((x) => x.role === role);
      if (!c) {
        throw new DeploylabError({
          code: 'SEAT_CONTAINER_UNKNOWN',
          fault: 'config',
          message: { zh: `考位中没有容器 ${role}`, en: `the seat has no container ${role}` },
          details: { ...ref, role, roles: st.containers.map((x) => x.role) },
        });
      }
      await engine.getContainer(c.id).restart({ t: 5 });
    };
  }
  return handle;
}

/** uid → name from a seat container's /etc/passwd, read through the archive API (empty when unreadable). */
async function seatUsers(driver: SandboxDriver, ref: SeatRef, container: string): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  try {
    const text = (await driver.readFile(ref, '/etc/passwd', { container, maxBytes: 1024 * 1024 })).toString('utf8');
    for (const line of text.split('\n')) {
      const [name, , uid] = line.split(':');
      if (name && uid && /^\d+$/.test(uid) && !out.has(Number(uid))) out.set(Number(uid), name);
    }
  } catch {
    // A container without a readable passwd: numeric uids stand.
  }
  return out;
}

async function runInToolbox(
  driver: SandboxDriver,
  ref: SeatRef,
  task: string,
  tb: { docker: Docker; image: string },
  o: { copy: { from: string; to: string; container?: string }[]; cmd: string[]; timeoutMs: number },
): Promise<TrustedRun> {
  const started = Date.now();
  const files = [];
  for (const c of o.copy) {
    let data: Buffer;
    try {
      data = await driver.readFile(ref, c.from, { maxBytes: TOOLBOX_COPY_MAX_BYTES, ...(c.container ? { container: c.container } : {}) });
    } catch (e) {
      if (isDeploylabError(e) && e.code === 'SANDBOX_FILE_NOT_FOUND') {
        throw new DeploylabError({ code: 'SEAT_FILE_MISSING', fault: 'candidate', message: { zh: `考位中没有该文件：${c.from}`, en: `no such file in the seat: ${c.from}` } });
      }
      throw e;
    }
    files.push({ path: c.to, content: data, mode: 0o644, uid: 0, gid: 0 });
  }
  let container: Docker.Container | undefined;
  try {
    container = await tb.docker.createContainer({
      Image: tb.image,
      Cmd: ['sleep', 'infinity'],
      Labels: {
        [LABEL.session]: ref.session,
        [LABEL.seat]: ref.seat,
        [LABEL.task]: task,
        [LABEL.component]: TOOLBOX_COMPONENT,
      },
      // No network: the toolbox judges copies, it never talks to the seat or anything else.
      HostConfig: { NetworkMode: 'none', NanoCpus: 1e9, Memory: 2048 * 1024 * 1024, MemorySwap: 2048 * 1024 * 1024, PidsLimit: 256, Init: true },
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
    return {
      exitCode: timedOut ? null : info.ExitCode ?? null,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      timedOut,
      durationMs: Date.now() - started,
      where: `toolbox ${tb.image}`,
    };
  } catch (e) {
    if (isDeploylabError(e)) throw e;
    throw new DeploylabError({
      code: 'TOOLBOX_FAILED',
      fault: 'infrastructure',
      message: { zh: `可信工具箱容器运行失败：${(e as Error).message}`, en: `the trusted toolbox container failed: ${(e as Error).message}` },
      cause: e,
    });
  } finally {
    await container?.remove({ force: true, v: true }).catch(() => undefined);
  }
}

/** Remove toolbox containers a crashed run left behind for a session. */
export async function sweepToolboxes(docker: Docker, session: string): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL.component}=${TOOLBOX_COMPONENT}`, `${LABEL.session}=${session}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
  return list.length;
}
