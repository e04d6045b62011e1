import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, isErrorCode, type ErrorCode } from './error-codes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Codes written as `code: '…'` that are not error codes of the harness. */
const NOT_ERROR_CODES: Record<string, string> = {
  // A Node errno in a synthetic socket error (load client).
  ECONNRESET: 'errno',
  // The code of graders/shared/host-root.ts's own RootError, turned into a harness error by its callers.
  NOT_A_FILE: 'RootError code',
  // Findings of the task loader (Problem.code), reported inside TASKS_INVALID / PAPER_INVALID.
  TASK_MISSING_FILE: 'task loader finding',
  TASK_DUPLICATE_ID: 'task loader finding',
  YAML_SYNTAX: 'task loader finding',
};

/** Registry codes no literal names: runner/host/prepare.ts builds them as `${what}_MISSING_NOT_…`. */
const BUILT_CODES: readonly ErrorCode[] = [
  'ENGINE_MISSING_NOT_DEBIAN',
  'ENGINE_MISSING_NOT_ROOT',
  'DEBOOTSTRAP_MISSING_NOT_DEBIAN',
  'DEBOOTSTRAP_MISSING_NOT_ROOT',
  'TEST_TOOLS_MISSING_NOT_DEBIAN',
  'TEST_TOOLS_MISSING_NOT_ROOT',
];

/** Infrastructure codes that a retry cannot fix (images or driver features missing, a runner without the right to signal). */
const NOT_RETRYABLE: readonly ErrorCode[] = ['SANDBOX_IMAGE_MISSING', 'SANDBOX_UNSUPPORTED', 'IMAGES_MISSING', 'GRADING_PROFILE_UNAVAILABLE', 'SANDBOX_SIGNAL_FAILED'];

function sources(dirs: readonly string[]): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push({ file: relative(ROOT, p), text: readFileSync(p, 'utf8') });
    }
  };
  for (const d of dirs) walk(join(ROOT, d));
  return out;
}

const codes = Object.keys(ERROR_CODES) as ErrorCode[];

describe('ERROR_CODES', () => {
  it('gives every code a fault and a one-line meaning in both languages', () => {
    for (const code of codes) {
      const info = ERROR_CODES[code];
      expect(['candidate', 'config', 'infrastructure', 'bug'], code).toContain(info.fault);
      expect(info.meaning.zh.trim(), code).not.toBe('');
      expect(info.meaning.en.trim(), code).not.toBe('');
      expect(info.meaning.zh, code).not.toContain('\n');
      expect(info.meaning.en, code).not.toContain('\n');
    }
  });

  it('marks retryable exactly the infrastructure codes a retry may fix', () => {
    for (const code of codes) {
      const info = ERROR_CODES[code];
      expect(info.retryable, code).toBe(info.fault === 'infrastructure' && !NOT_RETRYABLE.includes(code));
    }
  });

  it('holds every code the sources write as code: \'…\'', () => {
    const missing: string[] = [];
    for (const { file, text } of sources(['runner', 'graders', 'bin'])) {
      for (const m of text.matchAll(/\bcode: '([A-Z][A-Z0-9_]*)'/g)) {
        const code = m[1]!;
        if (!isErrorCode(code) && !(code in NOT_ERROR_CODES)) missing.push(`${file}: ${code}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('holds no code that nothing throws, answers or compares', () => {
    const text = sources(['runner', 'graders', 'bin', 'bench'])
      .filter((s) => !s.file.endsWith('error-codes.ts'))
      .map((s) => s.text)
      .join('\n');
    const unused = codes.filter((c) => !BUILT_CODES.includes(c) && !new RegExp(`['"\`]${c}['"\`]`).test(text));
    expect(unused).toEqual([]);
    expect(Object.keys(NOT_ERROR_CODES).filter(isErrorCode)).toEqual([]);
  });

  it('tells codes from other strings', () => {
    expect(isErrorCode('SANDBOX_ENGINE_ERROR')).toBe(true);
    expect(isErrorCode('SANDBOX_ENGIN_ERROR')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
  });
});
