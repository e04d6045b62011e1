import { opendir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * How many names lie under root (files, directories, links, root itself not counted): the inodes
 * a seat's writable layer or volume takes on the host, hard links counted once per name. Symlinks
 * are not followed and other filesystems are walked like any directory (a seat's layer has none).
 * Counting stops at `limit` (the caller's quota: past it the exact figure does not matter), so one
 * sample of a seat that made millions of files costs no more than its quota's worth of readdir.
 * Null when root cannot be read from here (a remote engine, a runner without root).
 */
export async function countEntries(root: string, limit: number): Promise<number | null> {
  let n = 0;
  const stack = [root];
  while (stack.length > 0 && n < limit) {
    const dir = stack.pop()!;
    let handle;
    try {
      handle = await opendir(dir, { bufferSize: 256 });
    } catch (e) {
      if (dir === root) return null;
      // Removed while we walk, or unreadable below a readable root: counted as what we saw.
      if (['ENOENT', 'EACCES', 'ENOTDIR', 'EPERM'].includes((e as NodeJS.ErrnoException).code ?? '')) continue;
      throw e;
    }
    try {
      for await (const entry of handle) {
        n++;
        if (entry.isDirectory()) stack.push(join(dir, entry.name));
        if (n >= limit) break;
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return Math.min(n, limit);
}
