/**
 * A seat container's file system as the host sees it, through /proc/<pid>/root of one of its
 * processes: metadata and directory listings the archive API does not give (directories, modes of
 * folders, what a folder holds). Symlinks are followed inside the seat's root only: an absolute
 * link is the seat's path, never the host's.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, readFile, readlink } from 'node:fs/promises';
import { DeploylabError } from '../../runner/core/errors.js';
import { PROC } from '../shared/process-identity.js';
import { cmdlineText, sameCommand } from '../parsers/proc-net.js';
import type { SeatProcess } from '../probe.js';
import { normalize } from './parse.js';

export type EntryType = 'file' | 'directory' | 'symlink' | 'other';
export interface Entry {
  type: EntryType;
  /** Permission bits with setuid/setgid/sticky, no type bits. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
}

export interface SeatFs {
  /** The entry at `path` itself (its parents' links followed in the seat), null when absent. */
  lstat(path: string): Promise<Entry | null>;
  /** `path` with every link followed in the seat; null when a part is missing or links loop. */
  resolve(path: string): Promise<string | null>;
  /** Names in a directory (links followed), null when it is not one. */
  list(path: string): Promise<string[] | null>;
  /** Content digest of the file at `path` (links followed), null when absent or not a file. */
  sha256(path: string): Promise<string | null>;
  /** Up to `max` bytes of the file at `path` (links followed), null when absent or not a file. */
  read(path: string, max: number): Promise<Buffer | null>;
}

const gone = (e: unknown): boolean => ['ENOENT', 'ENOTDIR', 'ESRCH', 'ELOOP'].includes((e as NodeJS.ErrnoException).code ?? '');

function typeOf(st: import('node:fs').Stats): EntryType {
  return st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other';
}

/** The seat file system under `root`, a host path standing for the seat's "/". */
export function seatFsAt(root: string): SeatFs {
  const host = (p: string): string => (p === '/' ? root : `${root}${p}`);
  const rawLstat = async (p: string): Promise<Entry | null> => {
    try {
      const st = await lstat(host(p));
      return { type: typeOf(st), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size };
    } catch (e) {
      if (gone(e)) return null;
      throw e;
    }
  };
  /** Follow links component by component, each target read as the seat names it. */
  async function walk(path: string, followLast: boolean): Promise<string | null> {
    let todo = normalize(path).split('/').filter(Boolean);
    let cur = '/';
    let hops = 0;
    while (todo.length > 0) {
      const [part, ...rest] = todo;
      const next = cur === '/' ? `/${part}` : `${cur}/${part}`;
      const st = await rawLstat(next);
      if (!st) return null;
      if (st.type === 'symlink' && (rest.length > 0 || followLast)) {
        if (++hops > 40) return null;
        const target = await readlink(host(next));
        const base = target.startsWith('/') ? target : `${cur}/${target}`;
        todo = [...normalize(base).split('/').filter(Boolean), ...rest];
        cur = '/';
        continue;
      }
      cur = next;
      todo = rest;
    }
    return cur;
  }
  /**
   * The file's bytes, opened without following a last-moment link and without blocking, then
   * checked on the open descriptor: a seat with root that swaps the file for a link or a FIFO
   * between the walk and the read gets null, never a read of the host's file or a grader stuck on
   * a pipe. (A directory above it swapped for a link in that window is not caught: see README.)
   */
  async function readRegular(path: string, max: number): Promise<Buffer | null> {
    const p = await walk(path, true);
    if (p === null) return null;
    let fh;
    try {
      fh = await open(host(p), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      if (gone(e) || (e as NodeJS.ErrnoException).code === 'ELOOP') return null;
      throw e;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return null;
      const want = Math.min(st.size, max);
      const buf = Buffer.alloc(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  }
  return {
    async lstat(path) {
      const p = await walk(path, false);
      return p === null ? null : rawLstat(p);
    },
    resolve: (path) => walk(path, true),
    async list(path) {
      const p = await walk(path, true);
      if (p === null || (await rawLstat(p))?.type !== 'directory') return null;
      try {
        return (await readdir(host(p))).sort();
      } catch (e) {
        if (gone(e)) return null;
        throw e;
      }
    },
    async sha256(path) {
      const b = await readRegular(path, Infinity);
      return b === null ? null : createHash('sha256').update(b).digest('hex');
    },
    read: (path, max) => readRegular(path, max),
  };
}

function unavailable(zh: string, en: string, details: Record<string, unknown>): DeploylabError {
  return new DeploylabError({
    code: 'PROBE_HOST_PROC_UNAVAILABLE',
    fault: 'infrastructure',
    message: { zh: `无法从主机查看考位的文件系统：${zh}`, en: `cannot see the seat's file system from the host: ${en}` },
    hint: { zh: '在容器引擎所在主机上以 root 运行评分程序（Docker 驱动）', en: "run the grader as root on the engine's host (Docker driver)" },
    details,
  });
}

/**
 * The container's root as the host sees it: /proc/<pid>/root of a process of that container
 * whose root is the container's own ("/": a chroot'ed process shows another path) and whose live
 * command line is the listed one (the PID is this seat's, not reused).
 */
export async function containerRoot(all: readonly SeatProcess[], container: string): Promise<string> {
  const mine = all.filter((p) => p.role === container);
  if (mine.some((p) => p.pidNamespace === 'pod')) throw unavailable('进程号是 Pod 内的', "the PIDs are a pod's own", { container });
  for (const p of mine) {
    try {
      const cmd = await readFile(`${PROC}/${p.hostPid}/cmdline`, 'utf8');
      if (!sameCommand(p.command, cmdlineText(cmd))) continue;
      if ((await readlink(`${PROC}/${p.hostPid}/root`)) !== '/') continue;
      return `${PROC}/${p.hostPid}/root`;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') throw unavailable(`无权读取进程 ${p.hostPid}`, `no permission to read process ${p.hostPid}`, { hostPid: p.hostPid });
      continue;
    }
  }
  throw unavailable(`本机 /proc 中看不到容器 ${container} 的进程`, `no process of container ${container} shows in this machine's /proc`, { container, listed: mine.length });
}
