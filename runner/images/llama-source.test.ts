import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isDeploylabError } from '../core/errors.js';
import { ensureLlamaBundle } from './llama-source.js';

/** A package tarball laid out like npm's (package/...), with a fake bundle and a decoy file. */
function fakePackage(dataDir: string, version: string, withBundle: boolean): void {
  const src = mkdtempSync(join(tmpdir(), 'pkg-'));
  mkdirSync(join(src, 'package', 'llama'), { recursive: true });
  writeFileSync(join(src, 'package', 'package.json'), '{"name":"node-llama-cpp"}');
  if (withBundle) writeFileSync(join(src, 'package', 'llama', 'gitRelease.bundle'), 'bundle bytes\n');
  const cache = join(dataDir, 'cache', 'llama-cpp', version);
  mkdirSync(cache, { recursive: true });
  execFileSync('tar', ['-czf', join(cache, `node-llama-cpp-${version}.tgz`), '-C', src, 'package']);
}

describe('llama.cpp source from the npm package', () => {
  it('takes only the git bundle out of a cached package tarball, without the registry', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'data-'));
    fakePackage(dataDir, '9.9.9', true);
    const path = await ensureLlamaBundle(dataDir, '9.9.9');
    expect(path).toBe(join(dataDir, 'cache', 'llama-cpp', '9.9.9', 'gitRelease.bundle'));
    expect(readFileSync(path, 'utf8')).toBe('bundle bytes\n');
    // Second call: already extracted, same path.
    expect(await ensureLlamaBundle(dataDir, '9.9.9')).toBe(path);
  });

  it('a package without the bundle is LLAMA_SOURCE_UNAVAILABLE', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'data-'));
    fakePackage(dataDir, '9.9.8', false);
    await expect(ensureLlamaBundle(dataDir, '9.9.8')).rejects.toSatisfy((e) => isDeploylabError(e) && e.code === 'LLAMA_SOURCE_UNAVAILABLE');
  });

  it('refuses a version that is not a version before running anything', async () => {
    await expect(ensureLlamaBundle(tmpdir(), '1.0.0 --registry=x')).rejects.toSatisfy((e) => isDeploylabError(e) && e.code === 'CONFIG_INVALID');
  });
});
