/**
 * Files as a seat process sees them, read by the harness on the host through /proc/<pid>/root,
 * without ever letting the seat's symlinks lead outside that root. The kernel resolves an
 * absolute symlink met below /proc/<pid>/root against the *reader's* root (the host's), so a path
 * is never handed to the kernel whole: each component is opened on its own below the directory
 * already opened (/proc/self/fd/<dir>/<name>, O_NOFOLLOW), and symlinks are resolved here against
 * the process's root, as the process itself would resolve them. A component swapped for a symlink
 * meanwhile is refused by O_NOFOLLOW, not followed.
 *
 * The same code reads any directory as a root (the tests use a temporary folder).
 */
import { constants } from 'node:fs';
import { open, readdir, readlink, type FileHandle } from 'node:fs/promises';

/** Symlinks followed in one lookup at most (the kernel's limit is 40). */
const MAX_HOPS = 40;

export interface RootFile {
  /** The path asked for. */
  path: string;
  /** The path after every symlink was resolved, inside the root. */
  real: string;
  data: Buffer;
  size: number;
  /** First `maxBytes` only. */
  truncated: boolean;
  dev: bigint;
  ino: bigint;
  /** Status change time (any write, rename or chmod moves it; no user can set it back). */
  ctimeNs: bigint;
  mtimeNs: bigint;
}

export class RootError extends Error {
  constructor(
    readonly code: 'NOT_A_FILE' | 'LOOP',
    readonly path: string,
  ) {
    super(code === 'LOOP' ? `too many symlinks resolving ${path}` : `not a regular file: ${path}`);
  }
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

export class HostRoot {
  private constructor(
    private readonly rootFh: FileHandle,
    readonly root: string,
  ) {}

  /** Open `root` (e.g. /proc/<pid>/root). Throws as fs.open does (ENOENT: the process is gone). */
  static async open(root: string): Promise<HostRoot> {
    return new HostRoot(await open(root, constants.O_RDONLY | constants.O_DIRECTORY), root);
  }

  async close(): Promise<void> {
    await this.rootFh.close().catch(() => undefined);
  }

  /**
   * Open `path` (absolute, in the root's terms), symlinks resolved inside the root; null when it is
   * not there. The caller closes the handle.
   */
  private async walk(path: string, dir: boolean): Promise<{ fh: FileHandle; real: string } | null> {
    const stack: { fh: FileHandle; name: string }[] = [];
    const closeAll = async (): Promise<void> => {
      for (const s of stack.splice(0)) await s.fh.close().catch(() => undefined);
    };
    let parts = path.split('/').filter((x) => x !== '');
    let hops = 0;
    try {
      while (parts.length > 0) {
        const name = parts.shift()!;
        if (name === '.') continue;
        if (name === '..') {
          await stack.pop()?.fh.close().catch(() => undefined);
          continue;
        }
        const parent = stack.at(-1)?.fh ?? this.rootFh;
        const at = `/proc/self/fd/${parent.fd}/${name}`;
        const last = parts.length === 0;
        const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | (last && !dir ? 0 : constants.O_DIRECTORY);
        try {
          stack.push({ fh: await open(at, flags), name });
          continue;
        } catch (e) {
          const code = errno(e);
          if (code === 'ENOENT') {
            await closeAll();
            return null;
          }
          if (code !== 'ELOOP' && code !== 'ENOTDIR') throw e;
        }
        // A symlink (ELOOP under O_NOFOLLOW), or not a directory where one is needed.
        let target: string;
        try {
          target = await readlink(at);
        } catch (e) {
          if (errno(e) === 'EINVAL' || errno(e) === 'ENOENT') {
            await closeAll();
            return null; // not a symlink: a file where a directory is needed
          }
          throw e;
        }
        if (++hops > MAX_HOPS) throw new RootError('LOOP', path);
        if (target.startsWith('/')) await closeAll();
        parts = [...target.split('/').filter((x) => x !== ''), ...parts];
      }
      const top = stack.pop();
      const real = '/' + stack.map((s) => s.name).concat(top ? [top.name] : []).join('/');
      await closeAll();
      if (!top) {
        // The root itself.
        return { fh: await open(`/proc/self/fd/${this.rootFh.fd}`, constants.O_RDONLY | constants.O_DIRECTORY), real: '/' };
      }
      return { fh: top.fh, real };
    } catch (e) {
      await closeAll();
      throw e;
    }
  }

  /** A regular file's first `maxBytes` and its identity; null when nothing is there. */
  async readFile(path: string, maxBytes: number): Promise<RootFile | null> {
    const w = await this.walk(path, false);
    if (!w) return null;
    try {
      const st = await w.fh.stat({ bigint: true });
      if (!st.isFile()) throw new RootError('NOT_A_FILE', path);
      const size = Number(st.size);
      const want = Math.min(size, maxBytes);
      const data = Buffer.alloc(want);
      let n = 0;
      while (n < want) {
        const { bytesRead } = await w.fh.read(data, n, want - n, n);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      return {
        path,
        real: w.real,
        data: data.subarray(0, n),
        size,
        truncated: size > maxBytes,
        dev: st.dev,
        ino: st.ino,
        ctimeNs: st.ctimeNs,
        mtimeNs: st.mtimeNs,
      };
    } finally {
      await w.fh.close().catch(() => undefined);
    }
  }

  /** Names in a directory (no . or ..); null when it is not there or not a directory. */
  async list(path: string): Promise<string[] | null> {
    const w = await this.walk(path, true);
    if (!w) return null;
    try {
      return await readdir(`/proc/self/fd/${w.fh.fd}`);
    } finally {
      await w.fh.close().catch(() => undefined);
    }
  }
}

/** glob(3) for one path component: * ? [...] ([!...] negates); a leading dot must be matched literally. */
export function globComponent(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${pattern.startsWith('.') ? '' : '(?!\\.)'}${re}$`);
}

/** glob(3) of an absolute pattern inside the root, sorted in byte order; only paths that exist. */
export async function globInRoot(root: HostRoot, pattern: string): Promise<string[]> {
  // glob(3) without GLOB_ERR skips what it cannot read (a symlink loop on the way).
  const list = async (p: string): Promise<string[] | null> => {
    try {
      return await root.list(p);
    } catch (e) {
      if (e instanceof RootError) return null;
      throw e;
    }
  };
  const parts = pattern.split('/').filter((x) => x !== '');
  let bases = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const b of bases) {
      if (!/[*?[]/.test(part)) {
        next.push(`${b}/${part}`);
        continue;
      }
      const names = await list(b || '/');
      if (!names) continue;
      const re = globComponent(part);
      for (const n of names) if (re.test(n)) next.push(`${b}/${n}`);
    }
    bases = next;
  }
  const out: string[] = [];
  for (const p of bases) {
    // glob(3) lists what exists: a file, or a directory (nginx then fails to read it).
    if ((await list(p)) !== null) out.push(p);
    else {
      try {
        if ((await root.readFile(p, 0)) !== null) out.push(p);
      } catch (e) {
        if (e instanceof RootError) out.push(p);
        else throw e;
      }
    }
  }
  return out.sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
}
