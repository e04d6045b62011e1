import type { Readable } from 'node:stream';
import { extract, pack } from 'tar-stream';
import type { FileEntry, WriteFile } from './driver.js';

/** Thrown inside readTar when the archive holds more content than allowed; callers map it. */
export class TarTooLarge extends Error {
  constructor(readonly entry: string) {
    super(`archive content over the limit at ${entry}`);
  }
}

/**
 * Parse a tar stream into entries. `maxBytes` caps the total content kept; passing it aborts the
 * read (graders ask for bounded evidence, a candidate may leave a 10 GB file behind).
 */
export async function readTar(stream: Readable, maxBytes: number, opts: { prefix?: boolean } = {}): Promise<FileEntry[]> {
  const ex = extract();
  const entries: FileEntry[] = [];
  let total = 0;
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, body, next) => {
      const type = header.type === 'file' || header.type === 'contiguous-file' ? 'file'
        : header.type === 'directory' ? 'directory'
          : header.type === 'symlink' ? 'symlink' : 'other';
      const entry: FileEntry = {
        path: header.name.replace(/\/$/, ''),
        type,
        size: header.size ?? 0,
        mode: header.mode ?? 0,
        uid: header.uid ?? 0,
        gid: header.gid ?? 0,
        mtime: header.mtime ?? new Date(0),
      };
      if (header.linkname) entry.linkTarget = header.linkname;
      entries.push(entry);
      if (type !== 'file') {
        body.resume();
        body.on('end', next);
        return;
      }
      if (opts.prefix && total + entry.size > maxBytes) {
        // Keep what fits of this file (a header check reads a prefix of a multi-GB model), then stop.
        const room = maxBytes - total;
        const chunks: Buffer[] = [];
        let kept = 0;
        entry.truncated = true;
        const stop = (): void => {
          entry.content = Buffer.concat(chunks);
          ex.destroy();
          stream.destroy();
          resolve();
        };
        if (room <= 0) return stop();
        body.on('data', (d: unknown) => {
          const c = d as Buffer;
          if (kept >= room) return;
          const part = c.length > room - kept ? c.subarray(0, room - kept) : c;
          chunks.push(part);
          kept += part.length;
          if (kept >= room) stop();
        });
        body.on('error', reject);
        return;
      }
      total += entry.size;
      if (total > maxBytes) {
        reject(new TarTooLarge(entry.path));
        ex.destroy();
        stream.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      body.on('data', (c: unknown) => chunks.push(c as Buffer));
      body.on('end', () => {
        entry.content = Buffer.concat(chunks);
        next();
      });
      body.on('error', reject);
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
    stream.on('error', reject);
  });
  stream.pipe(ex);
  await done;
  return entries;
}

/**
 * Build an uncompressed tar of absolute paths, rooted at `/` (extract it at `/`). `dirs` become
 * directory entries owned by `dirOwner`, the candidate (uid/gid 1000) by default.
 */
export async function buildTar(files: WriteFile[], dirs: string[] = [], dirOwner: { uid: number; gid: number } = { uid: 1000, gid: 1000 }): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const d of dirs) {
    p.entry({ name: `${d.replace(/^\/+|\/+$/g, '')}/`, type: 'directory', mode: 0o755, uid: dirOwner.uid, gid: dirOwner.gid, mtime: new Date() });
  }
  for (const f of files) {
    const content = typeof f.content === 'string' ? Buffer.from(f.content) : f.content;
    p.entry(
      {
        name: f.path.replace(/^\/+/, ''),
        mode: f.mode ?? 0o644,
        uid: f.uid ?? 1000,
        gid: f.gid ?? 1000,
        mtime: new Date(),
        size: content.length,
      },
      content,
    );
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** The first entry's header of a tar stream (e.g. the directory an archive of a path starts with); the rest is not read. */
export async function firstTarHeader(stream: Readable): Promise<{ type: string; uid: number; gid: number } | null> {
  const ex = extract();
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (v: { type: string; uid: number; gid: number } | null): void => {
      if (settled) return;
      settled = true;
      resolve(v);
      stream.unpipe(ex);
      stream.destroy();
      ex.destroy();
    };
    ex.on('entry', (header) => finish({ type: header.type ?? 'file', uid: header.uid ?? 0, gid: header.gid ?? 0 }));
    ex.on('finish', () => finish(null));
    ex.on('error', (e) => {
      if (!settled) reject(e);
    });
    stream.on('error', (e) => {
      if (!settled) reject(e);
    });
    stream.pipe(ex);
  });
}
