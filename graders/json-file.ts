/**
 * `json-file` probe: a JSON document the candidate wrote in the seat (read through the archive
 * API), judged value by value at JSON pointers: deep equality (object key order ignored) or a
 * number within a stated tolerance. Every expectation must hold.
 */
import type { z } from 'zod';
import { JsonFileParamsSchema } from '../runner/tasks/probe-params.js';
import { judge, jsonPointer, show, type Assertion } from './assertions.js';
import { defineProbe, failed, note } from './probe.js';

export type JsonFileParams = z.output<typeof JsonFileParamsSchema>;

/** Deep equality of JSON values; object keys in any order, no extra or missing keys. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every((k) => Object.hasOwn(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}

const MAX_BYTES = 1024 * 1024;

export const jsonFileProbe = defineProbe({
  kind: 'json-file',
  params: JsonFileParamsSchema,
  async run(seat, p) {
    const f = await seat.readFile(p.path, { container: p.container, maxBytes: MAX_BYTES });
    if (!f) return failed({ zh: `文件不存在：${p.path}`, en: `no such file: ${p.path}` }, [{ kind: 'file', path: p.path, exists: false }]);
    const text = f.data.toString('utf8');
    const evidence = [{ kind: 'file' as const, path: p.path, exists: true, size: f.size, excerpt: { text: text.slice(0, 2048), length: text.length, truncated: text.length > 2048 } }];
    if (f.truncated) return failed({ zh: `文件超过 ${MAX_BYTES} 字节：${p.path}`, en: `file larger than ${MAX_BYTES} bytes: ${p.path}` }, evidence);
    let doc: unknown;
    try {
      doc = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (e) {
      return failed({ zh: `不是有效的 JSON：${p.path}`, en: `not valid JSON: ${p.path}` }, [
        ...evidence,
        note('JSON 解析错误', 'JSON parse error', { error: (e as Error).message }),
      ]);
    }
    const a: Assertion[] = p.expect.map((x) => {
      const v = jsonPointer(doc, x.pointer);
      if (x.near) {
        const ok = typeof v === 'number' && Number.isFinite(v) && Math.abs(v - x.near.value) <= x.near.tolerance;
        return { id: `json:${x.pointer}`, ok, expected: `${x.near.value} ± ${x.near.tolerance}`, actual: v === undefined ? '(absent)' : show(v) };
      }
      return { id: `json:${x.pointer}`, ok: v !== undefined && jsonEqual(v, x.equals), expected: `= ${show(x.equals)}`, actual: v === undefined ? '(absent)' : show(v) };
    });
    return judge(a, 'all', { zh: `JSON 文件 ${p.path}`, en: `JSON file ${p.path}` }, evidence);
  },
});
