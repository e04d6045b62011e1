/**
 * The seat's view of its files, read from the host: a temporary folder stands in for
 * /proc/<pid>/root. Symlinks a candidate plants must resolve inside it, never to the host's files.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globComponent, globInRoot, HostRoot, RootError } from './host-root.js';

describe('HostRoot: files as the seat process sees them', () => {
  let dir: string;
  let root: HostRoot;
  const HOST_SECRET = `host-secret-${process.pid}`;
  let hostFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'host-root-'));
    // A file outside the root, at an absolute path the symlinks below also name.
    hostFile = join(tmpdir(), `host-root-secret-${process.pid}`);
    writeFileSync(hostFile, HOST_SECRET);
    mkdirSync(join(dir, 'workspace/nginx/conf.d'), { recursive: true });
    mkdirSync(join(dir, 'etc/nginx'), { recursive: true });
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    writeFileSync(join(dir, 'workspace/nginx/nginx.conf'), 'events {}\n');
    writeFileSync(join(dir, 'etc/nginx/mime.types'), 'types {}\n');
    writeFileSync(join(dir, 'workspace/nginx/conf.d/b.conf'), 'b');
    writeFileSync(join(dir, 'workspace/nginx/conf.d/a.conf'), 'a');
    writeFileSync(join(dir, 'workspace/nginx/conf.d/.hidden.conf'), 'h');
    // Inside the root the same absolute path holds the seat's own file.
    mkdirSync(join(dir, tmpdir()), { recursive: true });
    writeFileSync(join(dir, hostFile), 'seat-file');
    symlinkSync(hostFile, join(dir, 'workspace/nginx/abs.conf'));
    symlinkSync('../../etc/nginx/mime.types', join(dir, 'workspace/nginx/rel.conf'));
    symlinkSync('/../../../../etc', join(dir, 'workspace/etc-link'));
    symlinkSync('/', join(dir, 'workspace/rootlink'));
    symlinkSync('loop2', join(dir, 'workspace/loop1'));
    symlinkSync('loop1', join(dir, 'workspace/loop2'));
    symlinkSync('/nowhere', join(dir, 'workspace/dangling'));
    execFileSync('mkfifo', [join(dir, 'workspace/nginx/fifo.conf')]);
    root = await HostRoot.open(dir);
  });

  afterAll(async () => {
    await root?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(hostFile, { force: true });
  });

  it('reads a file with its identity (inode, change time) and where it really is', async () => {
    const f = await root.readFile('/workspace/nginx/nginx.conf', 1024);
    expect(f?.data.toString()).toBe('events {}\n');
    expect(f).toMatchObject({ real: '/workspace/nginx/nginx.conf', size: 10, truncated: false });
    expect(f!.ctimeNs).toBeGreaterThan(0n);
    expect((await root.readFile('/workspace/nginx/nginx.conf', 3))?.truncated).toBe(true);
    expect(await root.readFile('/workspace/nginx/none.conf', 1024)).toBeNull();
  });

  it('resolves absolute symlinks against the seat’s root, never the host’s', async () => {
    const f = await root.readFile('/workspace/nginx/abs.conf', 1024);
    expect(f?.data.toString()).toBe('seat-file');
    expect(f?.real).toBe(hostFile);
    expect((await root.readFile('/workspace/etc-link/nginx/mime.types', 1024))?.data.toString()).toBe('types {}\n');
    expect((await root.readFile('/workspace/rootlink/workspace/rootlink/etc/nginx/mime.types', 1024))?.real).toBe('/etc/nginx/mime.types');
    // `..` above the root stays at the root, as for the process itself.
    expect((await root.readFile('/../../../etc/nginx/mime.types', 1024))?.real).toBe('/etc/nginx/mime.types');
    expect((await root.readFile('/workspace/nginx/rel.conf', 1024))?.real).toBe('/etc/nginx/mime.types');
    expect(await root.readFile('/workspace/dangling', 1024)).toBeNull();
  });

  it('refuses symlink loops and what is not a regular file, without blocking on a FIFO', async () => {
    await expect(root.readFile('/workspace/loop1', 1024)).rejects.toBeInstanceOf(RootError);
    await expect(root.readFile('/workspace/nginx/fifo.conf', 1024)).rejects.toMatchObject({ code: 'NOT_A_FILE' });
    await expect(root.readFile('/workspace/nginx', 1024)).rejects.toMatchObject({ code: 'NOT_A_FILE' });
    expect(await root.readFile('/workspace/nginx/nginx.conf/x', 1024)).toBeNull();
  });

  it('lists folders and expands globs as glob(3): byte order, no hidden files, only what exists', async () => {
    expect((await root.list('/workspace/nginx/conf.d'))?.sort()).toEqual(['.hidden.conf', 'a.conf', 'b.conf']);
    expect(await globInRoot(root, '/workspace/nginx/conf.d/*.conf')).toEqual(['/workspace/nginx/conf.d/a.conf', '/workspace/nginx/conf.d/b.conf']);
    expect(await globInRoot(root, '/workspace/*/conf.d/[ab].conf')).toEqual(['/workspace/nginx/conf.d/a.conf', '/workspace/nginx/conf.d/b.conf']);
    expect(await globInRoot(root, '/workspace/nginx/conf.d/.*.conf')).toEqual(['/workspace/nginx/conf.d/.hidden.conf']);
    expect(await globInRoot(root, '/workspace/none/*.conf')).toEqual([]);
    expect(globComponent('[!a]?.c*').test('bx.conf')).toBe(true);
    expect(globComponent('[!a]?.c*').test('ax.conf')).toBe(false);
  });
});
