import type { ContainerInspector, ReferenceStarter, SeatControl } from '../../graders/capabilities.js';
import type { SeatFile, SeatHandle, SeatProcess } from '../../graders/probe.js';
import { DeploylabError, isDeploylabError } from '../core/errors.js';
import { TOOLBOX_FILE_MAX_BYTES, type SandboxDriver, type SeatRef, type WriteFile } from '../sandbox/driver.js';
import { LABEL } from '../sandbox/labels.js';

/** What graders read at most by default (SeatHandle.readFile's documented default). */
const DEFAULT_READ_BYTES = 16 * 1024 * 1024;
export interface SeatHandleOptions {
  driver: SandboxDriver;
  ref: SeatRef;
  task: string;
  /**
   * The trusted toolbox's image; with it and a driver that has a toolbox, `runTrusted` and
   * `startReference` are present (otherwise the checks needing them are `error`).
   */
  toolboxImage?: string | null;
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
  const toolbox = driver.toolbox;
  const image = opts.toolboxImage;
  if (toolbox && image) {
    const task = opts.task;
    handle.runTrusted = async ({ copy, cmd, timeoutMs, collect, network, put }) => {
      const own = (put ?? []).map((f) => ({ path: f.path, content: f.content, mode: f.mode ?? 0o644, uid: 0, gid: 0 }));
      const files = [...own, ...(await seatCopies(driver, ref, copy))];
      return toolbox.run(ref, { image, task, files, cmd, timeoutMs, ...(collect ? { collect } : {}), ...(network ? { network } : {}) });
    };
    handle.startReference = async ({ copy, command, port, cpus, memoryMiB }) =>
      toolbox.startService(ref, { image, task, files: await seatCopies(driver, ref, copy), command, port, cpus, memoryMiB });
  }
  // Powers of an engine on this host (Docker), declared by the driver itself.
  const engine = driver.hostEngine;
  if (engine) {
    handle.inspectContainers = () => engine.inspectContainers(ref);
    handle.imageFile = (path, o) => engine.imageFile(ref, path, { ...(o?.container ? { container: o.container } : {}), task: opts.task });
    handle.restartContainer = (role: string) => engine.restartContainer(ref, role);
    handle.signalProcess = async (p, signal) => {
      await engine.signal(ref, p, signal);
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

/** Seat files through the archive API, as entries to put into a toolbox container (root-owned, 0644). */
async function seatCopies(driver: SandboxDriver, ref: SeatRef, copy: readonly { from: string; to: string; container?: string }[]): Promise<WriteFile[]> {
  const files: WriteFile[] = [];
  for (const c of copy) {
    let data: Buffer;
    try {
      data = await driver.readFile(ref, c.from, { maxBytes: TOOLBOX_FILE_MAX_BYTES, ...(c.container ? { container: c.container } : {}) });
    } catch (e) {
      if (isDeploylabError(e) && e.code === 'SANDBOX_FILE_NOT_FOUND') {
        throw new DeploylabError({ code: 'SEAT_FILE_MISSING', fault: 'candidate', message: { zh: `考位中没有该文件：${c.from}`, en: `no such file in the seat: ${c.from}` } });
      }
      throw e;
    }
    files.push({ path: c.to, content: data, mode: 0o644, uid: 0, gid: 0 });
  }
  return files;
}
