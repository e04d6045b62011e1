/**
 * `file` probe: a file in the seat, read through the engine's archive API (never by running
 * anything in the seat): existence, permission bits, owner, size, SHA-256, content patterns, and
 * JSON / JSON Lines content against a JSON Schema.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { judge, regexSource, scoringSchema, show, type Assertion } from './assertions.js';
import { clip, defineProbe, failed, passed, type ClippedText, type Evidence, type SeatFile } from './probe.js';

const jsonSchemaObject = z.record(z.string(), z.unknown()).refine(
  (s) => {
    try {
      z.fromJSONSchema(s as Parameters<typeof z.fromJSONSchema>[0]);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a JSON Schema this harness can use' },
);

export const fileParams = z.strictObject({
  path: z.string().startsWith('/'),
  /** Container of the seat; the workspace when absent. */
  container: z.string().optional(),
  /** false: the check passes when nothing is at `path` (e.g. a secret that must be removed). */
  exists: z.boolean().default(true),
  /** Exact permission bits as octal text, e.g. "0600". */
  mode: z.string().regex(/^0?[0-7]{3,4}$/).optional(),
  /** Permission bits that must NOT be set, e.g. "0022" (no group/other write). */
  modeForbidden: z.string().regex(/^0?[0-7]{3,4}$/).optional(),
  uid: z.number().int().nonnegative().optional(),
  gid: z.number().int().nonnegative().optional(),
  minBytes: z.number().int().nonnegative().optional(),
  /** Bytes read; set it above the size of any file the check expects (a larger file fails SHA-256). */
  readBytes: z.number().int().positive().max(64 * 1024 * 1024).default(1024 * 1024),
  /** Lower-case hex SHA-256 of the whole expected content. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** Each regular expression must match the content (multiline mode). */
  contains: z.array(regexSource).default([]),
  /** None of these may match. */
  notContains: z.array(regexSource).default([]),
  /** The content is one JSON document (`json`) or JSON Lines (`jsonl`) ... */
  format: z.enum(['text', 'json', 'jsonl']).default('text'),
  /** ... each document valid against this JSON Schema. */
  schema: jsonSchemaObject.optional(),
  /** jsonl: at least this many non-empty lines. */
  minRecords: z.number().int().nonnegative().optional(),
  scoring: scoringSchema,
});
export type FileParams = z.output<typeof fileParams>;

const octal = (n: number): string => '0' + n.toString(8).padStart(3, '0');

/** The excerpt's length and truncation speak of the file, not of the prefix that was read. */
function excerptOf(f: SeatFile): ClippedText {
  const c = clip(f.data);
  return { ...c, length: f.size, truncated: c.truncated || f.truncated };
}

function fileEvidence(path: string, f: SeatFile | null): Evidence {
  if (!f) return { kind: 'file', path, exists: false };
  return {
    kind: 'file',
    path,
    exists: true,
    size: f.size,
    mode: octal(f.mode),
    uid: f.uid,
    gid: f.gid,
    ...(f.truncated ? {} : { sha256: createHash('sha256').update(f.data).digest('hex') }),
    excerpt: excerptOf(f),
  };
}

function checkDocuments(p: FileParams, f: SeatFile): Assertion[] {
  const out: Assertion[] = [];
  const text = f.data.toString('utf8');
  const validator = p.schema ? z.fromJSONSchema(p.schema as Parameters<typeof z.fromJSONSchema>[0]) : null;
  const docs: { where: string; text: string }[] =
    p.format === 'json'
      ? [{ where: 'document', text }]
      : text
          .split('\n')
          .map((l, i) => ({ where: `line ${i + 1}`, text: l }))
          .filter((l) => l.text.trim() !== '');
  if (f.truncated) {
    out.push({ id: 'complete', ok: false, expected: `at most ${p.readBytes} bytes to parse`, actual: `${f.size} bytes` });
    return out;
  }
  const problems: string[] = [];
  for (const d of docs) {
    let value: unknown;
    try {
      value = JSON.parse(d.text);
    } catch (e) {
      problems.push(`${d.where}: not JSON (${(e as Error).message})`);
      continue;
    }
    if (validator) {
      const r = validator.safeParse(value);
      if (!r.success) problems.push(`${d.where}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`);
    }
  }
  out.push({
    id: p.format,
    ok: problems.length === 0,
    expected: validator ? `valid ${p.format} matching the schema` : `valid ${p.format}`,
    actual: problems.length === 0 ? `${docs.length} document(s) valid` : show(problems.slice(0, 5).join(' | '), 600),
  });
  if (p.minRecords !== undefined) {
    out.push({ id: 'records', ok: docs.length >= p.minRecords, expected: `≥ ${p.minRecords}`, actual: String(docs.length) });
  }
  return out;
}

export const fileProbe = defineProbe({
  kind: 'file',
  params: fileParams,
  async run(seat, p, deadline) {
    deadline.check();
    const f = await seat.readFile(p.path, { maxBytes: p.readBytes, ...(p.container ? { container: p.container } : {}) });
    const evidence = [fileEvidence(p.path, f)];
    if (!p.exists) {
      return f
        ? failed({ zh: `文件应已删除：${p.path}`, en: `file should be absent: ${p.path}` }, evidence)
        : passed({ zh: `文件不存在，符合要求：${p.path}`, en: `file absent as required: ${p.path}` }, evidence);
    }
    if (!f) return failed({ zh: `文件不存在：${p.path}`, en: `file not found: ${p.path}` }, evidence);

    const a: Assertion[] = [];
    if (p.mode !== undefined) {
      const want = parseInt(p.mode, 8);
      a.push({ id: 'mode', ok: f.mode === want, expected: octal(want), actual: octal(f.mode) });
    }
    if (p.modeForbidden !== undefined) {
      const bits = parseInt(p.modeForbidden, 8);
      a.push({ id: 'modeForbidden', ok: (f.mode & bits) === 0, expected: `none of ${octal(bits)}`, actual: octal(f.mode) });
    }
    if (p.uid !== undefined) a.push({ id: 'uid', ok: f.uid === p.uid, expected: String(p.uid), actual: String(f.uid) });
    if (p.gid !== undefined) a.push({ id: 'gid', ok: f.gid === p.gid, expected: String(p.gid), actual: String(f.gid) });
    if (p.minBytes !== undefined) a.push({ id: 'size', ok: f.size >= p.minBytes, expected: `≥ ${p.minBytes}`, actual: String(f.size) });
    if (p.sha256 !== undefined) {
      const actual = f.truncated ? `larger than ${p.readBytes} bytes (${f.size})` : createHash('sha256').update(f.data).digest('hex');
      a.push({ id: 'sha256', ok: actual === p.sha256, expected: p.sha256, actual });
    }
    const text = f.data.toString('utf8');
    // Patterns on a truncated file see only its beginning; the evidence says so.
    for (const re of p.contains) {
      const m = new RegExp(re, 'mu').exec(text);
      a.push({ id: `contains:${re}`, ok: m !== null, expected: `matches /${re}/`, actual: m ? show(m[0]) : 'no match' });
    }
    for (const re of p.notContains) {
      const m = new RegExp(re, 'mu').exec(text);
      a.push({ id: `notContains:${re}`, ok: m === null, expected: `no match for /${re}/`, actual: m ? show(m[0]) : 'no match' });
    }
    if (p.format !== 'text') a.push(...checkDocuments(p, f));
    return judge(a, p.scoring, { zh: `文件 ${p.path}`, en: `file ${p.path}` }, evidence);
  },
});
