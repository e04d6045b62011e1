/**
 * Which program a seat process really is, judged from the host's /proc: the executable the kernel
 * runs (`/proc/<pid>/exe`, whatever argv[0] or the file's name say) compared by content with the
 * file the seat's image ships, and the files it has memory-mapped or open (a served model).
 * An imitation started as `exec -a llama-server python3 fake.py`, a script saved as
 * `llama-server`, or a real llama-server serving another model all show here.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readlink, stat } from 'node:fs/promises';

export const PROC = '/proc';

export interface FileIdentity {
  /** Where it was seen: the exe link's target, or the mapped/open file's path as the process names it. */
  path: string;
  size: number;
  sha256: string;
}

/** SHA-256 of a file read from the start; null when it is gone. Any other failure throws. */
export async function sha256Of(path: string): Promise<string | null> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  } catch (e) {
    if (isGone(e)) return null;
    throw e;
  }
  return h.digest('hex');
}

export function isGone(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH';
}

/**
 * The executable the kernel runs for `pid`: its path (as the process's mount namespace names it,
 * " (deleted)" when replaced meanwhile) and its content's digest, read through /proc/<pid>/exe,
 * which opens the very file mapped, even a deleted one. Null when the process is gone.
 */
export async function executableOf(pid: number): Promise<FileIdentity | null> {
  const exe = `${PROC}/${pid}/exe`;
  let path: string;
  let size: number;
  try {
    path = await readlink(exe);
    size = (await stat(exe)).size;
  } catch (e) {
    if (isGone(e)) return null;
    throw e;
  }
  const sha256 = await sha256Of(exe);
  return sha256 === null ? null : { path, size, sha256 };
}

export interface HeldFile {
  /** The path as the process names it (map_files and fd links). */
  path: string;
  /** A /proc path that opens the very file the process holds. */
  via: string;
  dev: number;
  ino: number;
  size: number;
}

/**
 * Files `pid` has memory-mapped (/proc/<pid>/map_files, root only) or open (/proc/<pid>/fd), one
 * entry per file. Sockets, pipes and anonymous memory are left out. Throws on EACCES/EPERM (the
 * caller turns it into PROBE_HOST_PROC_DENIED); a process that ends midway gives what was read.
 */
export async function heldFiles(pid: number): Promise<HeldFile[]> {
  const out = new Map<string, HeldFile>();
  for (const dir of ['map_files', 'fd'] as const) {
    let names: string[];
    try {
      names = await readdir(`${PROC}/${pid}/${dir}`);
    } catch (e) {
      if (isGone(e)) continue;
      throw e;
    }
    for (const n of names) {
      const via = `${PROC}/${pid}/${dir}/${n}`;
      try {
        const path = await readlink(via);
        if (!path.startsWith('/')) continue; // socket:[…], pipe:[…], anon_inode:…
        const st = await stat(via);
        if (!st.isFile()) continue;
        const key = `${st.dev}:${st.ino}`;
        if (!out.has(key)) out.set(key, { path, via, dev: st.dev, ino: st.ino, size: st.size });
      } catch (e) {
        if (isGone(e)) continue; // unmapped or closed meanwhile
        throw e;
      }
    }
  }
  return [...out.values()];
}

/**
 * Whether `pid` holds the file at `path` in its own view of the file system (/proc/<pid>/root):
 * the same inode, or a file of the same size and content (overlayfs maps the layer's own file, so
 * an inode seen through map_files need not equal the one a path lookup gives). `expected` is null
 * when nothing is at `path` for that process.
 */
export async function holdsFile(pid: number, path: string): Promise<{ expected: FileIdentity | null; held?: HeldFile; candidates: number }> {
  const at = `${PROC}/${pid}/root${path}`;
  let st;
  try {
    st = await stat(at);
  } catch (e) {
    if (isGone(e)) return { expected: null, candidates: 0 };
    throw e;
  }
  if (!st.isFile()) return { expected: null, candidates: 0 };
  const files = await heldFiles(pid);
  const same = files.find((f) => f.dev === st.dev && f.ino === st.ino);
  const bySize = files.filter((f) => f.size === st.size);
  // Hashing only happens when an inode does not settle it and a file of the very size is held.
  const sha256 = same || bySize.length === 0 ? '' : ((await sha256Of(at)) ?? '');
  const expected: FileIdentity = { path, size: st.size, sha256 };
  if (same) return { expected, held: same, candidates: files.length };
  for (const f of bySize) {
    if ((await sha256Of(f.via)) === sha256 && sha256 !== '') return { expected, held: f, candidates: files.length };
  }
  return { expected, candidates: files.length };
}
