/**
 * `json-file` probe: a JSON document the candidate wrote in the seat (read through the archive
 * API), judged value by value at JSON pointers: deep equality (object key order ignored), a
 * number within a stated tolerance, or an object with exactly the stated keys (a strict answer: no
 * extra candidates beside it). A key repeated within one object fails the file unless the check
 * allows it (JSON.parse would keep the last one silently). Every expectation must hold.
 */
import type { z } from 'zod';
import { JsonFileParamsSchema } from './params.js';
import { judge, jsonPointer, show, type Assertion } from '../shared/assertions.js';
import { defineProbe, failed, note } from '../probe.js';

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

const pointerPart = (k: string): string => k.replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * The first key repeated within one object of a JSON text (which must already parse), with the
 * pointer of that object; null when every object's keys are distinct.
 */
export function duplicateKey(text: string): { pointer: string; key: string } | null {
  type Frame = { kind: 'object'; pointer: string; keys: Set<string>; expectKey: boolean; key?: string } | { kind: 'array'; pointer: string; index: number };
  const stack: Frame[] = [];
  const childPointer = (): string => {
    const top = stack[stack.length - 1];
    if (!top) return '';
    return top.kind === 'object' ? `${top.pointer}/${pointerPart(top.key ?? '')}` : `${top.pointer}/${top.index}`;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.kind === 'object' && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { pointer: top.pointer, key };
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push({ kind: 'object', pointer: childPointer(), keys: new Set(), expectKey: true });
    } else if (c === '[') {
      stack.push({ kind: 'array', pointer: childPointer(), index: 0 });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') top.expectKey = true;
      else if (top) top.index++;
    }
  }
  return null;
}

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
    if (p.duplicateKeys === 'refuse') {
      const dup = duplicateKey(text.replace(/^\uFEFF/, ''));
      if (dup) {
        return failed({ zh: `JSON 对象中键重复：${dup.pointer || '/'} 中的 "${dup.key}"`, en: `a key repeated within one object: "${dup.key}" in ${dup.pointer || '/'}` }, [
          ...evidence,
          note('重复的键', 'repeated key', dup),
        ]);
      }
    }
    const a: Assertion[] = p.expect.map((x) => {
      const v = jsonPointer(doc, x.pointer);
      if (x.keys) {
        const want = [...x.keys].sort();
        const isObject = v !== null && typeof v === 'object' && !Array.isArray(v);
        const have = isObject ? Object.keys(v).sort() : [];
        const ok = isObject && have.length === want.length && have.every((k, i) => k === want[i]);
        return { id: `json:${x.pointer}:keys`, ok, expected: `an object with exactly the keys ${show(want)}`, actual: v === undefined ? '(absent)' : isObject ? `keys ${show(have)}` : show(v) };
      }
      if (x.near) {
        const ok = typeof v === 'number' && Number.isFinite(v) && Math.abs(v - x.near.value) <= x.near.tolerance;
        return { id: `json:${x.pointer}`, ok, expected: `${x.near.value} ± ${x.near.tolerance}`, actual: v === undefined ? '(absent)' : show(v) };
      }
      return { id: `json:${x.pointer}`, ok: v !== undefined && jsonEqual(v, x.equals), expected: `= ${show(x.equals)}`, actual: v === undefined ? '(absent)' : show(v) };
    });
    return judge(a, 'all', { zh: `JSON 文件 ${p.path}`, en: `JSON file ${p.path}` }, evidence);
  },
});
