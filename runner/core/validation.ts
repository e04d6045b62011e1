import type { ZodError, ZodType } from 'zod';
import { z } from 'zod';
import { DeploylabError } from './errors.js';

export interface IssueReport {
  /** Which file (or "environment", "flags") the value came from. */
  source: string;
  /** Dotted path inside it, e.g. `checks[2].points`. */
  path: string;
  problem: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(root)';
}

export function issuesOf(error: ZodError, source: string): IssueReport[] {
  return error.issues.map((i) => {
    let problem = i.message;
    if (i.code === 'unrecognized_keys') problem = `unknown key(s): ${i.keys.join(', ')}`;
    return { source, path: formatPath(i.path), problem };
  });
}

/**
 * Parse a boundary value once. All problems are reported together, each with its source and path,
 * so a person can fix a file in one go.
 */
export function parseOrThrow<S extends ZodType>(
  schema: S,
  value: unknown,
  opts: { source: string; code: string; what: { zh: string; en: string } },
): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = issuesOf(r.error, opts.source);
  const lines = issues.map((i) => `${i.source}: ${i.path}: ${i.problem}`).join('\n  ');
  throw new DeploylabError({
    code: opts.code,
    fault: 'config',
    message: {
      zh: `${opts.what.zh}无效（${issues.length} 处问题）：\n  ${lines}`,
      en: `invalid ${opts.what.en} (${issues.length} problem(s)):\n  ${lines}`,
    },
    hint: { zh: '按上面列出的文件和路径逐项修改', en: 'fix each file and path listed above' },
    details: { issues },
  });
}
