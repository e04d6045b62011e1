/**
 * `dataset` probe: a fine-tuning dataset the candidate wrote in the seat as JSON Lines (read
 * through the archive API), judged against the grader's own truth record by record: its bytes
 * (strict UTF-8, no BOM, no mojibake), its lines (one JSON object with exactly the format's keys
 * per line), coverage (every truth record present, field by field) and uniqueness (no record
 * twice, none invented). Only a file that holds this dataset is judged at all (`recognise`).
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { show } from '../shared/assertions.js';
import { defineProbe, failed, note, passed, type Evidence } from '../probe.js';
import { DatasetParamsSchema } from './params.js';

export type DatasetParams = z.output<typeof DatasetParamsSchema>;
type Rec = Record<string, string>;

/** How many items of each list the evidence keeps (the counts are always whole). */
const LIST_LIMIT = 20;

// cp1252's printable characters at 0x80-0x9F: a GBK/UTF-8 text decoded as cp1252 shows these.
const CP1252_HIGH = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';
const CJK = /[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]/;

function latinByte(c: string): number | undefined {
  const code = c.codePointAt(0)!;
  const hi = CP1252_HIGH.indexOf(c);
  if (hi >= 0) return 0x80 + hi;
  return code >= 0x80 && code <= 0xff ? code : undefined;
}

/**
 * Mojibake in one string: a run of Latin-1/cp1252 characters whose bytes are valid UTF-8 or GBK
 * text with CJK characters in it (what a Chinese text decoded with a Western code page looks
 * like). Returns the run and what it reads as, or null. A lone "é" or "©" is no mojibake.
 */
export function mojibake(s: string): { run: string; reads: string } | null {
  const chars = [...s];
  for (let i = 0; i < chars.length; ) {
    if (latinByte(chars[i]!) === undefined) {
      i++;
      continue;
    }
    let j = i;
    const bytes: number[] = [];
    // ASCII inside a run belongs to it: GBK's second byte may be ASCII (e.g. 0x40-0x7e).
    while (j < chars.length && (latinByte(chars[j]!) !== undefined || chars[j]!.codePointAt(0)! < 0x80)) {
      bytes.push(latinByte(chars[j]!) ?? chars[j]!.codePointAt(0)!);
      j++;
    }
    if (bytes.filter((b) => b >= 0x80).length >= 2) {
      for (const enc of ['utf-8', 'gbk']) {
        try {
          const reads = new TextDecoder(enc, { fatal: true }).decode(Uint8Array.from(bytes));
          if (CJK.test(reads)) return { run: chars.slice(i, j).join(''), reads };
        } catch {
          // not text in this encoding
        }
      }
    }
    i = j;
  }
  return null;
}

/**
 * The first key repeated in the top-level object of one JSON text that already parses (JSON.parse
 * keeps the last one silently); null when its keys are distinct. Nested values are skipped: a
 * record's values must be strings anyway.
 */
export function repeatedKey(text: string): string | null {
  const keys = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      if (depth === 1 && c === '{') expectKey = true;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return null;
}

export interface LineIssue {
  line: number;
  problem: string;
}

export interface Analysis {
  bom: boolean;
  /** Lines (1-based) whose bytes are not valid UTF-8. */
  invalidUtf8: number[];
  /** Lines holding U+FFFD (raw or escaped). */
  replacement: number[];
  mojibake: { line: number; field: string; run: string; reads: string }[];
  /** Lines ending in CR (CRLF line ends). */
  crlf: number[];
  blank: number[];
  /** Lines that are not one record of the format. */
  issues: LineIssue[];
  /** Non-blank lines. */
  lines: number;
  records: { line: number; record: Rec }[];
  /** Truth records whose `recognise.field` value appears among the records. */
  recognised: number;
  missing: { record: Rec; nearest?: { line: number; differs: { field: string; expected: string; actual: string }[] } }[];
  duplicates: { lines: number[]; record: Rec }[];
  extras: { line: number; record: Rec }[];
}

const keyOf = (fields: readonly string[], r: Rec): string => JSON.stringify(fields.map((f) => r[f]));

/** Everything the checks judge, from the file's bytes (pure: no seat, no clock). */
export function analyse(data: Buffer, fields: readonly string[], truth: readonly Rec[], recogniseField: string): Analysis {
  const bom = data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf;
  const body = bom ? data.subarray(3) : data;
  const rawLines: Buffer[] = [];
  for (let at = 0; at <= body.length; ) {
    const nl = body.indexOf(0x0a, at);
    const end = nl < 0 ? body.length : nl;
    rawLines.push(body.subarray(at, end));
    at = end + 1;
  }
  // A final line end is allowed: the empty piece after it is no line.
  if (rawLines.length > 0 && rawLines[rawLines.length - 1]!.length === 0) rawLines.pop();

  const a: Analysis = { bom, invalidUtf8: [], replacement: [], mojibake: [], crlf: [], blank: [], issues: [], lines: 0, records: [], recognised: 0, missing: [], duplicates: [], extras: [] };
  const strict = new TextDecoder('utf-8', { fatal: true });
  rawLines.forEach((raw, i) => {
    const line = i + 1;
    let text: string;
    try {
      text = strict.decode(raw);
    } catch {
      a.invalidUtf8.push(line);
      text = raw.toString('utf8');
    }
    if (text.endsWith('\r')) {
      a.crlf.push(line);
      text = text.slice(0, -1);
    }
    if (text.trim() === '') {
      a.blank.push(line);
      return;
    }
    a.lines++;
    if (text.includes('\ufffd')) a.replacement.push(line);
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      a.issues.push({ line, problem: `not JSON: ${(e as Error).message}` });
      return;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      a.issues.push({ line, problem: `not one JSON object but ${Array.isArray(v) ? 'an array' : show(v, 40)}` });
      return;
    }
    const dup = repeatedKey(text);
    if (dup !== null) {
      a.issues.push({ line, problem: `key "${dup}" repeated` });
      return;
    }
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    const extra = keys.filter((k) => !fields.includes(k));
    const absent = fields.filter((f) => !Object.hasOwn(o, f));
    if (extra.length || absent.length) {
      a.issues.push({ line, problem: `keys ${show(keys)}: ${absent.length ? `missing ${show(absent)}` : ''}${absent.length && extra.length ? ', ' : ''}${extra.length ? `not in the format ${show(extra)}` : ''}` });
      return;
    }
    const notString = fields.filter((f) => typeof o[f] !== 'string');
    if (notString.length) {
      a.issues.push({ line, problem: `not a string: ${show(notString)}` });
      return;
    }
    const rec = o as Rec;
    for (const f of fields) {
      if (rec[f]!.includes('\ufffd') && !a.replacement.includes(line)) a.replacement.push(line);
      const m = mojibake(rec[f]!);
      if (m) a.mojibake.push({ line, field: f, ...m });
    }
    // The question and the answer of a sample must say something (input may be "").
    const empty = [fields[0]!, fields[fields.length - 1]!].filter((f) => rec[f]!.trim() === '');
    if (empty.length) {
      a.issues.push({ line, problem: `empty ${show([...new Set(empty)])}` });
      return;
    }
    a.records.push({ line, record: rec });
  });

  const truthKeys = new Map(truth.map((t) => [keyOf(fields, t), t]));
  const seen = new Map<string, number[]>();
  for (const { line, record } of a.records) {
    const k = keyOf(fields, record);
    if (!truthKeys.has(k)) a.extras.push({ line, record });
    seen.set(k, [...(seen.get(k) ?? []), line]);
  }
  for (const lines of seen.values()) if (lines.length > 1) a.duplicates.push({ lines, record: a.records.find((r) => r.line === lines[0])!.record });
  const values = new Set(a.records.map((r) => r.record[recogniseField]));
  a.recognised = truth.filter((t) => values.has(t[recogniseField])).length;
  for (const [k, t] of truthKeys) {
    if (seen.has(k)) continue;
    // The record most like it (most fields equal, at least one), to show what differs.
    let best: { line: number; same: number; record: Rec } | undefined;
    for (const { line, record } of a.records) {
      const same = fields.filter((f) => record[f] === t[f]).length;
      if (same > 0 && (!best || same > best.same)) best = { line, same, record };
    }
    a.missing.push(
      best
        ? { record: t, nearest: { line: best.line, differs: fields.filter((f) => best.record[f] !== t[f]).map((f) => ({ field: f, expected: show(t[f]), actual: show(best.record[f]) })) } }
        : { record: t },
    );
  }
  return a;
}

const some = <T>(xs: T[]): { count: number; first: T[] } => ({ count: xs.length, first: xs.slice(0, LIST_LIMIT) });
const brief = (r: Rec): Record<string, string> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, show(v, 120)]));

/** One aspect's verdict on an analysis: the problems it finds (none: it holds). */
export function problems(a: Analysis, aspect: DatasetParams['aspect']): { zh: string; en: string }[] {
  const out: { zh: string; en: string }[] = [];
  const at = (xs: number[]): string => xs.slice(0, 10).join(', ') + (xs.length > 10 ? ', …' : '');
  if (aspect === 'encoding') {
    if (a.bom) out.push({ zh: '文件以 BOM 开头', en: 'the file starts with a BOM' });
    if (a.invalidUtf8.length) out.push({ zh: `${a.invalidUtf8.length} 行不是有效的 UTF-8（第 ${at(a.invalidUtf8)} 行）`, en: `${a.invalidUtf8.length} line(s) not valid UTF-8 (line ${at(a.invalidUtf8)})` });
    if (a.replacement.length) out.push({ zh: `${a.replacement.length} 行含替换字符 U+FFFD（第 ${at(a.replacement)} 行）`, en: `${a.replacement.length} line(s) hold the replacement character U+FFFD (line ${at(a.replacement)})` });
    if (a.mojibake.length) {
      const lines = [...new Set(a.mojibake.map((m) => m.line))];
      out.push({ zh: `${lines.length} 行含乱码（按错误编码解码的中文，第 ${at(lines)} 行）`, en: `${lines.length} line(s) hold mojibake (Chinese decoded with a wrong code page, line ${at(lines)})` });
    }
  } else if (aspect === 'format') {
    if (a.crlf.length) out.push({ zh: `${a.crlf.length} 行以 CRLF 结尾（应为 LF）`, en: `${a.crlf.length} line(s) end in CRLF (LF expected)` });
    if (a.blank.length) out.push({ zh: `${a.blank.length} 个空行（第 ${at(a.blank)} 行）`, en: `${a.blank.length} blank line(s) (line ${at(a.blank)})` });
    if (a.issues.length) out.push({ zh: `${a.issues.length} 行不是一条格式正确的记录（第 ${at(a.issues.map((i) => i.line))} 行）`, en: `${a.issues.length} line(s) not one well-formed record (line ${at(a.issues.map((i) => i.line))})` });
  } else if (aspect === 'coverage') {
    if (a.missing.length) out.push({ zh: `应有的记录中 ${a.missing.length} 条缺失或内容不符`, en: `${a.missing.length} expected record(s) missing or different` });
  } else {
    if (a.duplicates.length) out.push({ zh: `${a.duplicates.length} 条记录重复出现`, en: `${a.duplicates.length} record(s) appear more than once` });
    if (a.extras.length) out.push({ zh: `${a.extras.length} 条记录不在应有的数据中（多出或内容不符）`, en: `${a.extras.length} record(s) not in the expected data (extra or different)` });
  }
  return out;
}

function details(a: Analysis, aspect: DatasetParams['aspect']): Record<string, unknown> {
  if (aspect === 'encoding') return { bom: a.bom, invalidUtf8Lines: some(a.invalidUtf8), replacementLines: some(a.replacement), mojibake: some(a.mojibake.map((m) => ({ ...m, run: show(m.run, 60), reads: show(m.reads, 60) }))) };
  if (aspect === 'format') return { crlfLines: some(a.crlf), blankLines: some(a.blank), lineIssues: some(a.issues) };
  if (aspect === 'coverage') return { missing: some(a.missing.map((m) => ({ record: brief(m.record), ...(m.nearest ? { nearest: m.nearest } : {}) }))) };
  return { duplicates: some(a.duplicates.map((d) => ({ lines: d.lines, record: brief(d.record) }))), extras: some(a.extras.map((e) => ({ line: e.line, record: brief(e.record) }))) };
}

export const datasetProbe = defineProbe({
  kind: 'dataset',
  params: DatasetParamsSchema,
  async run(seat, p) {
    const f = await seat.readFile(p.path, { container: p.container, maxBytes: p.maxBytes });
    if (!f) return failed({ zh: `文件不存在：${p.path}`, en: `no such file: ${p.path}` }, [{ kind: 'file', path: p.path, exists: false }]);
    const evidence: Evidence[] = [
      {
        kind: 'file',
        path: p.path,
        exists: true,
        size: f.size,
        ...(f.truncated ? {} : { sha256: createHash('sha256').update(f.data).digest('hex') }),
        excerpt: { text: f.data.subarray(0, 2048).toString('utf8'), length: f.size, truncated: f.size > 2048 },
      },
    ];
    if (f.truncated) return failed({ zh: `文件超过 ${p.maxBytes} 字节：${p.path}`, en: `file larger than ${p.maxBytes} bytes: ${p.path}` }, evidence);
    const a = analyse(f.data, p.fields, p.truth, p.recognise.field);
    const counts = { lines: a.lines, records: a.records.length, truth: p.truth.length, recognised: a.recognised, missing: a.missing.length, duplicates: a.duplicates.length, extras: a.extras.length };
    evidence.push(note('数据集概况', 'dataset overview', counts));
    const need = Math.ceil(p.recognise.minShare * p.truth.length);
    if (a.recognised < need) {
      return failed(
        {
          zh: `${p.path} 不是本题的数据集：应有的 ${p.truth.length} 个 ${p.recognise.field} 中只出现了 ${a.recognised} 个（至少需要 ${need} 个才评判）`,
          en: `${p.path} does not hold this dataset: ${a.recognised} of the ${p.truth.length} expected ${p.recognise.field} values appear (${need} needed before it is judged)`,
        },
        [...evidence, note('格式问题', 'line problems', { lineIssues: some(a.issues), invalidUtf8Lines: some(a.invalidUtf8) })],
      );
    }
    const found = problems(a, p.aspect);
    evidence.push(note(`检查 ${p.aspect} 的明细`, `${p.aspect} details`, details(a, p.aspect)));
    const what = { zh: `数据集 ${p.path}（${p.aspect}）`, en: `dataset ${p.path} (${p.aspect})` };
    if (found.length === 0) return passed({ zh: `${what.zh}：符合要求（${a.records.length} 条记录）`, en: `${what.en}: as required (${a.records.length} records)` }, evidence);
    return failed({ zh: `${what.zh}：${found.map((x) => x.zh).join('；')}`, en: `${what.en}: ${found.map((x) => x.en).join('; ')}` }, evidence);
  },
});
