import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import type { ContainerInspector, ReferenceStarter, SeatContainerInfo, SeatControl } from '../../graders/capabilities.js';
import type { SeatFile, SeatHandle, SeatProcess } from '../../graders/probe.js';
import { DeploylabError, isDeploylabError } from '../core/errors.js';
import type { SandboxDriver, SeatRef } from '../sandbox/driver.js';
import { LABEL } from '../sandbox/labels.js';
import { readTar } from '../sandbox/tar.js';
import { runInToolbox, seatCopies, startReference, toolboxLabels, type Toolbox } from './toolbox.js';

export { sweepToolboxes, TOOLBOX_COMPONENT } from './toolbox.js';

/** What graders read at most by default (SeatHandle.readFile's documented default). */
const DEFAULT_READ_BYTES = 16 * 1024 * 1024;
export interface SeatHandleOptions {
  driver: SandboxDriver;
  ref: SeatRef;
  task: string;
  /** Trusted toolbox (docker engine + image ref); without it `runTrusted` and `startReference` are absent. */
  toolbox?: Toolbox;
  /**
   * The engine the seat's containers run on, for `inspectContainers` and `restartContainer`;
   * the docker driver's own engine by default. Without one both are absent.
   */
  docker?: Docker;
}

/** A seat handle with the optional capabilities the container, recovery and load probes use. */
export type FullSeatHandle = SeatHandle & ContainerInspector & SeatControl & ReferenceStarter;

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
    handle.runTrusted = async (o) => runInToolbox(tb, toolboxLabels(ref, opts.task), await seatCopies(driver, ref, o.copy), o);
    handle.startReference = async (spec) => startReference(tb, toolboxLabels(ref, opts.task), await seatCopies(driver, ref, spec.copy), spec);
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
    handle.imageFile = async (path, o) => {
      const role = o?.container ?? 'workspace';
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
      const image = (await engine.getContainer(c.id).inspect()).Image;
      return imageFileDigest(engine, image, path, toolboxLabels(ref, opts.task, 'image-file'));
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
      // A restarted workspace has a new interface on the bridge: guard its address again.
      const guard = (driver as SandboxDriver & { guardAddress?: (r: SeatRef) => Promise<void> }).guardAddress;
      if (role === 'workspace' && guard) await guard.call(driver, ref);
    };
  }
  return handle;
}

/** Image files by image id (content-addressed, so an entry never goes stale) and path. */
const imageFiles = new Map<string, Promise<{ path: string; size: number; sha256: string } | null>>();
const IMAGE_FILE_MAX_BYTES = 512 * 1024 * 1024;

/**
 * SHA-256 of the file an image ships at `path`, symlinks followed: read through a container
 * created from the image and never started, then removed (labelled, so a sweep finds a leftover).
 */
export function imageFileDigest(engine: Docker, image: string, path: string, labels: Record<string, string>): Promise<{ path: string; size: number; sha256: string } | null> {
  const key = `${image}\0${path}`;
  let p = imageFiles.get(key);
  if (!p) {
    p = readImageFile(engine, image, path, labels);
    imageFiles.set(key, p);
    p.catch(() => imageFiles.delete(key));
  }
  return p;
}

async function readImageFile(engine: Docker, image: string, path: string, labels: Record<string, string>): Promise<{ path: string; size: number; sha256: string } | null> {
  const c = await engine.createContainer({ Image: image, Entrypoint: ['/deploylab-never-started'], Cmd: [], Labels: labels, NetworkDisabled: true });
  try {
    let at = path;
    for (let hop = 0; hop < 16; hop++) {
      let stream;
      try {
        stream = await c.getArchive({ path: at });
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode === 404) return null;
        throw e;
      }
      const [entry] = await readTar(stream as unknown as Readable, IMAGE_FILE_MAX_BYTES);
      if (!entry) return null;
      if (entry.type === 'symlink' && entry.linkTarget) {
        at = entry.linkTarget.startsWith('/') ? entry.linkTarget : posix.join(posix.dirname(at), entry.linkTarget);
        continue;
      }
      if (entry.type !== 'file' || !entry.content) return null;
      return { path: at, size: entry.size, sha256: createHash('sha256').update(entry.content).digest('hex') };
    }
    return null;
  } finally {
    await c.remove({ force: true }).catch(() => undefined);
  }
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
