import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IMAGE_DEFS, SANDBOX_IMAGES_DIR } from './inputs.js';
import { ensureNpmTree, npmTreeKey } from './npm-tree.js';

describe('npm trees of images', () => {
  const root = mkdtempSync(join(tmpdir(), 'dl-npm-tree-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const pinned = (name: string, pkg: object, lock: object): string => {
    const dir = join(root, name);
    execFileSync('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg));
    writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock));
    return dir;
  };
  const emptyLock = (name: string) => ({ name, version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name, version: '1.0.0' } } });

  it('keys the cache by both pin files', () => {
    const a = pinned('a', { name: 'a', version: '1.0.0' }, emptyLock('a'));
    const b = pinned('b', { name: 'a', version: '1.0.0' }, { ...emptyLock('a'), requires: false });
    expect(npmTreeKey(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(npmTreeKey(a)).toBe(npmTreeKey(a));
    expect(npmTreeKey(a)).not.toBe(npmTreeKey(b));
  });

  it('names the folder when a pin file is missing', async () => {
    const dir = join(root, 'nolock');
    execFileSync('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'package.json'), '{}');
    await expect(ensureNpmTree(join(root, 'data'), dir)).rejects.toMatchObject({ code: 'NPM_PACKAGES_UNAVAILABLE', fault: 'infrastructure' });
  });

  it('installs a tree once and hands back its tar (a tree without dependencies needs no registry)', async () => {
    const dir = pinned('empty', { name: 'empty', version: '1.0.0' }, emptyLock('empty'));
    const lines: string[] = [];
    const tar = await ensureNpmTree(join(root, 'data'), dir, (l) => lines.push(l));
    expect(lines.some((l) => l.startsWith('npm ci'))).toBe(true);
    const listed = execFileSync('tar', ['-tf', tar], { encoding: 'utf8' }).split('\n');
    expect(listed).toContain('package.json');
    expect(listed).toContain('package-lock.json');
    const again: string[] = [];
    expect(await ensureNpmTree(join(root, 'data'), dir, (l) => again.push(l))).toBe(tar);
    expect(again).toEqual([]);
  });

  it('every image pins exact versions of its packages, the toolbox newman and playwright-core, the workspace newman', () => {
    const trees = Object.values(IMAGE_DEFS).flatMap((d) => (d.npmTree ? [{ image: d.name, dir: join(SANDBOX_IMAGES_DIR, d.name, d.npmTree) }] : []));
    expect(trees.map((t) => t.image).sort()).toEqual(['toolbox', 'workspace-cpu']);
    const names: Record<string, string[]> = {};
    for (const t of trees) {
      const pkg = JSON.parse(readFileSync(join(t.dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
      names[t.image] = Object.keys(pkg.dependencies).sort();
      for (const v of Object.values(pkg.dependencies)) expect(v).toMatch(/^\d+\.\d+\.\d+$/);
      const lock = JSON.parse(readFileSync(join(t.dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
      for (const [name, v] of Object.entries(pkg.dependencies)) expect(lock.packages[`node_modules/${name}`]?.version).toBe(v);
    }
    expect(names).toEqual({ toolbox: ['newman', 'playwright-core'], 'workspace-cpu': ['newman'] });
  });
});
