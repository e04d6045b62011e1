import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { contextFiles, inputsHash, SANDBOX_IMAGES_DIR } from './inputs.js';
import { withDependencies } from './image-build.js';

function copyOf(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `img-${name}-`));
  cpSync(join(SANDBOX_IMAGES_DIR, name), dir, { recursive: true });
  return dir;
}

describe('image input hash', () => {
  const args = { BASE: 'deploylab/base:0123456789abcdef' };
  const extra = { llamaCppNpmVersion: '3.21.1' };

  it('is stable for unchanged inputs, also for a copy of the folder elsewhere', () => {
    const a = inputsHash({ name: 'llama-build', dir: join(SANDBOX_IMAGES_DIR, 'llama-build'), buildArgs: args, extra });
    const b = inputsHash({ name: 'llama-build', dir: copyOf('llama-build'), buildArgs: { ...args }, extra: { ...extra } });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
  });

  it('changes when one byte of the Dockerfile changes', () => {
    const dir = copyOf('base');
    const before = inputsHash({ name: 'base', dir, buildArgs: args, extra: {} });
    const df = join(dir, 'Dockerfile');
    const text = readFileSync(df);
    text[text.length - 2] = text[text.length - 2]! ^ 1;
    writeFileSync(df, text);
    expect(inputsHash({ name: 'base', dir, buildArgs: args, extra: {} })).not.toBe(before);
  });

  it('changes with a context file, a build arg (the parent image ref) or the llama.cpp version', () => {
    const dir = copyOf('llama-build');
    const h0 = inputsHash({ name: 'llama-build', dir, buildArgs: args, extra });
    expect(inputsHash({ name: 'llama-build', dir, buildArgs: { BASE: 'deploylab/base:fedcba9876543210' }, extra })).not.toBe(h0);
    expect(inputsHash({ name: 'llama-build', dir, buildArgs: args, extra: { llamaCppNpmVersion: '3.21.2' } })).not.toBe(h0);
    writeFileSync(join(dir, 'make-tiny-model.py'), readFileSync(join(dir, 'make-tiny-model.py'), 'utf8') + '\n');
    expect(inputsHash({ name: 'llama-build', dir, buildArgs: args, extra })).not.toBe(h0);
  });

  it('cannot be fooled by moving text between an arg name and its value', () => {
    const dir = join(SANDBOX_IMAGES_DIR, 'base');
    const a = inputsHash({ name: 'base', dir, buildArgs: { A: 'b=c' }, extra: {} });
    const b = inputsHash({ name: 'base', dir, buildArgs: { 'A=b': 'c' }, extra: {} });
    expect(a).not.toBe(b);
  });

  it('the context of every image holds its Dockerfile; llama-build holds the model generator', () => {
    for (const name of ['base', 'llama-build', 'workspace-cpu', 'toolbox', 'workspace-gpu']) {
      expect(contextFiles(join(SANDBOX_IMAGES_DIR, name))).toContain('Dockerfile');
    }
    expect(contextFiles(join(SANDBOX_IMAGES_DIR, 'llama-build'))).toContain('make-tiny-model.py');
  });
});

describe('build order', () => {
  it('adds what an image is built from, dependencies first', () => {
    expect(withDependencies(['toolbox'])).toEqual(['base', 'llama-build', 'toolbox']);
    expect(withDependencies(['workspace-gpu'])).toEqual(['workspace-gpu']);
    expect(withDependencies(['workspace-cpu', 'base'])).toEqual(['base', 'llama-build', 'workspace-cpu']);
  });
});
