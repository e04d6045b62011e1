import type { ZodError, ZodType } from 'zod';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DeploylabError, type ErrorCode } from './errors.js';

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
  opts: { source: string; code: ErrorCode; what: { zh: string; en: string } },
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

/** A YAML file's text parsed, then validated as `parseOrThrow` does; a syntax error gets the same code, naming the file. */
export function parseYamlOrThrow<S extends ZodType>(
  schema: S,
  text: string,
  opts: { source: string; code: ErrorCode; what: { zh: string; en: string } },
): z.output<S> {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw new DeploylabError({
      code: opts.code,
      fault: 'config',
      message: { zh: `${opts.what.zh} YAML 语法错误：${opts.source}`, en: `${opts.what.en}: YAML syntax error: ${opts.source}` },
      details: { error: String(e) },
      cause: e,
    });
  }
  return parseOrThrow(schema, doc ?? {}, opts);
}

/** An issue with what was found and what is expected, for files people edit by hand. */
export interface DetailedIssue extends IssueReport {
  /** The offending value (JSON, shortened) or key. */
  found?: string;
  expected?: string;
  /** The raw path, for mapping back to a line of the source file. */
  rawPath: PropertyKey[];
}

function shorten(v: unknown): string {
  if (v === undefined) return '(missing)';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/**
 * Like issuesOf, plus the value found and the expectation, one issue per unknown key (its path
 * names the key itself, so a typo points at the typo).
 */
export function detailedIssuesOf(error: ZodError, source: string, input: unknown): DetailedIssue[] {
  const out: DetailedIssue[] = [];
  for (const i of error.issues) {
    const path = [...i.path];
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) {
        out.push({ source, path: formatPath([...path, k]), rawPath: [...path, k], problem: `unknown key: ${k}`, found: k, expected: 'no such key (check the spelling)' });
      }
      continue;
    }
    let expected: string | undefined;
    if (i.code === 'invalid_type') expected = i.expected;
    else if (i.code === 'invalid_value') expected = `one of ${i.values.map((v) => JSON.stringify(v)).join(' | ')}`;
    else if (i.code === 'too_small') expected = `${i.inclusive ? '>=' : '>'} ${String(i.minimum)}${i.origin === 'array' ? ' item(s)' : i.origin === 'string' ? ' character(s)' : ''}`;
    else if (i.code === 'too_big') expected = `${i.inclusive ? '<=' : '<'} ${String(i.maximum)}${i.origin === 'array' ? ' item(s)' : i.origin === 'string' ? ' character(s)' : ''}`;
    else if (i.code === 'invalid_format') expected = i.format === 'regex' && 'pattern' in i ? `text matching ${String(i.pattern)}` : i.format;
    else if (i.code === 'invalid_union' && 'options' in i && Array.isArray(i.options)) expected = `one of ${i.options.map((v) => JSON.stringify(v)).join(' | ')}`;
    const found = valueAt(input, path);
    const problem = i.code === 'invalid_type' && found === undefined ? 'required key is missing' : i.message;
    out.push({ source, path: formatPath(path), rawPath: path, problem, found: shorten(found), ...(expected ? { expected } : {}) });
  }
  return out;
}
