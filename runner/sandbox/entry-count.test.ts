import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { countEntries } from './entry-count.js';

describe('countEntries (inodes a seat takes, by name)', () => {
  const root = mkdtempSync(join(tmpdir(), 'dl-entries-'));
  const outside = mkdtempSync(join(tmpdir(), 'dl-outside-'));
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });
  for (let i = 0; i < 50; i++) writeFileSync(join(outside, `o${i}`), '');
  mkdirSync(join(root, 'a', 'b', 'c'), { recursive: true });
  for (let i = 0; i < 120; i++) writeFileSync(join(root, 'a', 'b', 'c', `f${i}`), '');
  writeFileSync(join(root, 'top'), 'x');
  linkSync(join(root, 'top'), join(root, 'a', 'hard'));
  symlinkSync(outside, join(root, 'a', 'to-outside'));

  it('counts every name below the root, directories and links included, symlinks not followed', async () => {
    // a, a/b, a/b/c, 120 files, top, a/hard, a/to-outside
    expect(await countEntries(root, 1_000_000)).toBe(3 + 120 + 3);
  });

  it('stops at the limit', async () => {
    expect(await countEntries(root, 10)).toBe(10);
    expect(await countEntries(root, 126)).toBe(126);
  });

  it('null when the root cannot be read', async () => {
    expect(await countEntries(join(root, 'missing'), 100)).toBeNull();
  });
});
