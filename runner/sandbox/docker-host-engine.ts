import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { DeploylabError } from '../core/errors.js';
import { toolboxLabels } from './docker-toolbox.js';
import type { HostEngineAccess, ImageFileDigest, Leftover, SandboxDriver, SeatContainerRecord, SeatRef } from './driver.js';
import { LABEL } from './labels.js';
import { readTar } from './tar.js';

/**
 * What the Docker engine on this host tells graders beyond the common driver interface: its own
 * record of each seat container, the bytes an image ships at a path, and restarting one container
 * or signalling one process (the recovery probe's failure injection). `afterRestart` re-applies
 * what a new interface needs (the seat's address guard).
 */
export function dockerHostEngine(engine: Docker, driver: Pick<SandboxDriver, 'status' | 'processes'>, afterRestart: (ref: SeatRef, role: string) => Promise<void>): HostEngineAccess {
  const containerOf = async (ref: SeatRef, role: string): Promise<string> => {
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
    return c.id;
  };
  return {
    async inspectContainers(ref) {
      const st = await driver.status(ref);
      const out: SeatContainerRecord[] = [];
      for (const c of st.containers) {
        try {
          out.push({ role: c.role, info: await engine.getContainer(c.id).inspect() });
        } catch (e) {
          if ((e as { statusCode?: number }).statusCode !== 404) throw e; // removed meanwhile
        }
      }
      return out;
    },
    async imageFile(ref, path, opts) {
      const image = (await engine.getContainer(await containerOf(ref, opts.container ?? 'workspace')).inspect()).Image;
      return imageFileDigest(engine, image, path, toolboxLabels(ref, opts.task, 'image-file'));
    },
    async dataRoot() {
      return ((await engine.info()) as { DockerRootDir?: string }).DockerRootDir ?? null;
    },
    async restartContainer(ref, role) {
      await engine.getContainer(await containerOf(ref, role)).restart({ t: 5 });
      await afterRestart(ref, role);
    },
    async signal(ref, p, signal) {
      // Listed again now, as graders listed it: the PID is still that seat's, in that container.
      const now = (await driver.processes(ref)).find((x) => x.hostPid === p.hostPid && x.role === p.role);
      // ps clips long argument lists: the listed text must be a prefix of the live one.
      if (!now || !now.command.trim().startsWith(p.command.trim())) return 'gone';
      try {
        process.kill(p.hostPid, signal);
        return 'sent';
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ESRCH') return 'gone';
        throw new DeploylabError({
          code: 'SANDBOX_SIGNAL_FAILED',
          fault: 'infrastructure',
          message: { zh: `无法向考位进程 ${p.hostPid} 发送 ${signal}：${(e as Error).message}`, en: `cannot send ${signal} to seat process ${p.hostPid}: ${(e as Error).message}` },
          hint: { zh: '在容器引擎所在主机上以 root 运行评分程序', en: "run the grader as root on the engine's host" },
          details: { ...ref, pid: p.hostPid, role: p.role, signal },
          cause: e,
        });
      }
    },
  };
}

/** Image files by image id (content-addressed, so an entry never goes stale) and path. */
const imageFiles = new Map<string, Promise<ImageFileDigest | null>>();
const IMAGE_FILE_MAX_BYTES = 512 * 1024 * 1024;

/**
 * SHA-256 of the file an image ships at `path`, symlinks followed: read through a container
 * created from the image and never started, then removed (labelled, so a sweep finds a leftover).
 */
export function imageFileDigest(engine: Docker, image: string, path: string, labels: Record<string, string>): Promise<ImageFileDigest | null> {
  const key = `${image}\0${path}`;
  let p = imageFiles.get(key);
  if (!p) {
    p = readImageFile(engine, image, path, labels);
    imageFiles.set(key, p);
    p.catch(() => imageFiles.delete(key));
  }
  return p;
}

async function readImageFile(engine: Docker, image: string, path: string, labels: Record<string, string>): Promise<ImageFileDigest | null> {
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

/**
 * Everything on the engine labelled for the session, whatever component made it (seats, the
 * toolbox, anything else), with the host ports its containers hold: the Docker driver's `leftovers`.
 */
export async function engineLeftovers(engine: Docker, session: string): Promise<Leftover[]> {
  const label = [`${LABEL.session}=${session}`];
  const out: Leftover[] = [];
  for (const c of await engine.listContainers({ all: true, filters: { label } })) {
    const ports = (c.Ports ?? []).filter((p) => p.PublicPort).map((p) => `${p.IP ?? ''}:${p.PublicPort}`);
    out.push({ kind: 'container', name: c.Names[0]?.replace(/^\//, '') ?? c.Id, ...(ports.length > 0 ? { hostPorts: ports } : {}) });
  }
  for (const n of await engine.listNetworks({ filters: { label } })) out.push({ kind: 'network', name: n.Name });
  for (const v of (await engine.listVolumes({ filters: { label } })).Volumes ?? []) out.push({ kind: 'volume', name: v.Name });
  return out;
}
