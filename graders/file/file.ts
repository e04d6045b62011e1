/**
 * `file` probe: a file in the seat, read through the engine's archive API (never by running
 * anything in the seat): existence, permission bits, owner, size, SHA-256 (given, or from a
 * models manifest), content substrings and a pattern.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { FileParamsSchema } from './params.js';
import { judge, show, type Assertion } from '../shared/assertions.js';
import { clip, defineProbe, failed, passed, type ClippedText, type Evidence, type SeatFile, type SeatHandle } from '../probe.js';

export type FileParams = z.output<typeof FileParamsSchema>;

/** Bytes read when only content patterns are checked. */
export const FILE_READ_BYTES = 1024 * 1024;
/** Bytes read when the whole file must be hashed; a larger file cannot match and fails. */
export const HASH_READ_BYTES = 256 * 1024 * 1024;

const octal = (n: number): string => '0' + n.toString(8).padStart(3, '0');

/** The excerpt's length and truncation speak of the file, not of the prefix that was read. */
function excerptOf(f: SeatFile): ClippedText {
  const c = clip(f.data);
  return { ...c, length: f.size, truncated: c.truncated || f.truncated };
}

export function fileEvidence(path: string, f: SeatFile | null): Evidence {
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

/** uid → user name from the container's own /etc/passwd, read as a file (nothing runs). */
async function userName(seat: SeatHandle, container: string, uid: number): Promise<string | null> {
  const passwd = await seat.readFile('/etc/passwd', { container, maxBytes: FILE_READ_BYTES });
  if (!passwd) return null;
  for (const line of passwd.data.toString('utf8').split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id !== undefined && Number(id) === uid) return name;
  }
  return null;
}

const manifestSchema = z.looseObject({
  models: z.array(z.looseObject({ file: z.string(), sha256: z.string(), bytes: z.number().int().optional() })),
});

/** The expected digest (and size, when listed) of `file` in a models manifest, or why there is none. */
async function fromManifest(
  seat: SeatHandle,
  container: string,
  m: { manifest: string; file: string },
): Promise<{ sha256: string; bytes?: number | undefined } | { problem: string }> {
  const f = await seat.readFile(m.manifest, { container, maxBytes: FILE_READ_BYTES });
  if (!f) return { problem: `manifest ${m.manifest} not found` };
  let parsed: z.infer<typeof manifestSchema>;
  try {
    parsed = manifestSchema.parse(JSON.parse(f.data.toString('utf8')));
  } catch {
    return { problem: `manifest ${m.manifest} is not a models manifest` };
  }
  const entry = parsed.models.find((x) => x.file === m.file);
  return entry ? { sha256: entry.sha256, bytes: entry.bytes } : { problem: `${m.file} not listed in ${m.manifest}` };
}

export const fileProbe = defineProbe({
  kind: 'file',
  params: FileParamsSchema,
  async run(seat, p, deadline) {
    const e = p.expect;
    const hashing = e.sha256 !== undefined || e.sha256FromManifest !== undefined;
    deadline.check();
    const f = await seat.readFile(p.path, { container: p.container, maxBytes: hashing ? HASH_READ_BYTES : FILE_READ_BYTES });
    const evidence = [fileEvidence(p.path, f)];
    if (!e.exists) {
      return f
        ? failed({ zh: `文件应已删除：${p.path}`, en: `file should be absent: ${p.path}` }, evidence)
        : passed({ zh: `文件不存在，符合要求：${p.path}`, en: `file absent as required: ${p.path}` }, evidence);
    }
    if (!f) return failed({ zh: `文件不存在：${p.path}`, en: `file not found: ${p.path}` }, evidence);

    const a: Assertion[] = [];
    if (e.mode !== undefined) {
      const want = parseInt(e.mode, 8);
      a.push({ id: 'mode', ok: f.mode === want, expected: octal(want), actual: octal(f.mode) });
    }
    if (e.owner !== undefined) {
      const name = await userName(seat, p.container, f.uid);
      const ok = name === e.owner || (name === null && /^\d+$/.test(e.owner) && Number(e.owner) === f.uid);
      a.push({ id: 'owner', ok, expected: e.owner, actual: name ?? `uid ${f.uid}` });
    }
    if (e.minBytes !== undefined) a.push({ id: 'minBytes', ok: f.size >= e.minBytes, expected: `≥ ${e.minBytes}`, actual: String(f.size) });
    if (e.maxBytes !== undefined) a.push({ id: 'maxBytes', ok: f.size <= e.maxBytes, expected: `≤ ${e.maxBytes}`, actual: String(f.size) });
    if (hashing) {
      const want = e.sha256 !== undefined ? { sha256: e.sha256 } : await fromManifest(seat, p.container, e.sha256FromManifest!);
      if ('problem' in want) {
        a.push({ id: 'sha256', ok: false, expected: 'a digest from the manifest', actual: want.problem });
      } else {
        const actual = f.truncated ? `larger than ${HASH_READ_BYTES} bytes (${f.size})` : createHash('sha256').update(f.data).digest('hex');
        a.push({ id: 'sha256', ok: actual === want.sha256, expected: want.sha256, actual });
        if (want.bytes !== undefined) a.push({ id: 'size', ok: f.size === want.bytes, expected: String(want.bytes), actual: String(f.size) });
      }
    }
    // Patterns see at most the bytes read; a larger file is judged on its beginning.
    const text = f.data.toString('utf8');
    for (const needle of e.contains ?? []) {
      a.push({ id: `contains:${needle}`, ok: text.includes(needle), expected: `contains ${show(needle)}`, actual: text.includes(needle) ? 'found' : 'not found' });
    }
    if (e.matches !== undefined) {
      const m = new RegExp(e.matches, 'm').exec(text);
      a.push({ id: 'matches', ok: m !== null, expected: `matches /${e.matches}/`, actual: m ? show(m[0]) : 'no match' });
    }
    return judge(a, 'all', { zh: `文件 ${p.path}`, en: `file ${p.path}` }, evidence);
  },
});

/**
 * JSON or JSON Lines content against a JSON Schema (converted with zod's fromJSONSchema): one
 * problem per bad document, naming its line. Ready for a file check that declares a format and
 * schema; the task schema does not offer those fields yet. zod's converter enforces `required` only
 * for keys that also appear in `properties`: schemas must list them there.
 */
export function checkJsonDocuments(text: string, format: 'json' | 'jsonl', schema?: Record<string, unknown>): { documents: number; problems: string[] } {
  const validator = schema ? z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]) : null;
  const docs =
    format === 'json'
      ? [{ where: 'document', text }]
      : text
          .split('\n')
          .map((l, i) => ({ where: `line ${i + 1}`, text: l }))
          .filter((l) => l.text.trim() !== '');
  const problems: string[] = [];
  for (const d of docs) {
    let value: unknown;
    try {
      value = JSON.parse(d.text);
    } catch (err) {
      problems.push(`${d.where}: not JSON (${(err as Error).message})`);
      continue;
    }
    const r = validator?.safeParse(value);
    if (r && !r.success) problems.push(`${d.where}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`);
  }
  return { documents: docs.length, problems };
}
