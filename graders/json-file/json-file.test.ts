import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { duplicateKey, jsonEqual, jsonFileProbe } from './json-file.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
});
afterEach(async () => {
  await seat.cleanup();
});

async function put(path: string, content: string): Promise<void> {
  const host = join(seat.root, path);
  await mkdir(join(host, '..'), { recursive: true });
  await writeFile(host, content);
}

const EXPECT = [
  { pointer: '/requests', equals: 420 },
  { pointer: '/errors_by_status', equals: { '404': 13, '500': 17 } },
  { pointer: '/p95_ms', near: { value: 897, tolerance: 1 } },
];
const run = (expect: unknown = EXPECT): Promise<ProbeOutcome> =>
  runProbe(jsonFileProbe, seat, { kind: 'json-file', path: '/w/report.json', expect }, Deadline.after(5000));
const failedIds = (o: ProbeOutcome): string[] => {
  const a = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'expectations checked');
  return ((a?.kind === 'note' ? a.data?.['assertions'] : []) as { id: string; ok: boolean }[]).filter((x) => !x.ok).map((x) => x.id);
};

describe('jsonEqual', () => {
  it('ignores key order, not extra keys, types or array order', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 0 })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: '1' })).toBe(false);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
  });
});

describe('json-file probe', () => {
  it('passes a right report in any key order, p95 within the tolerance', async () => {
    await put('/w/report.json', '{"p95_ms": 897.4, "errors_by_status": {"500": 17, "404": 13}, "requests": 420}');
    expect((await run()).status).toBe('pass');
  });

  it('fails a mean for the p95, a missing error code, a status 200 listed, counts as strings', async () => {
    await put('/w/report.json', '{"requests": 420, "errors_by_status": {"404": 13, "500": 17}, "p95_ms": 627.1}');
    expect(failedIds(await run())).toEqual(['json:/p95_ms']);
    await put('/w/report.json', '{"requests": 420, "errors_by_status": {"404": 13}, "p95_ms": 897}');
    expect(failedIds(await run())).toEqual(['json:/errors_by_status']);
    await put('/w/report.json', '{"requests": 420, "errors_by_status": {"200": 390, "404": 13, "500": 17}, "p95_ms": 897}');
    expect(failedIds(await run())).toEqual(['json:/errors_by_status']);
    await put('/w/report.json', '{"requests": "420", "errors_by_status": {"404": "13", "500": 17}, "p95_ms": "897"}');
    expect(failedIds(await run())).toEqual(['json:/requests', 'json:/errors_by_status', 'json:/p95_ms']);
  });

  it('fails a missing file and a file that is not JSON', async () => {
    const none = await run();
    expect(none.status).toBe('fail');
    expect(none.evidence[0]).toMatchObject({ kind: 'file', exists: false });
    await put('/w/report.json', "{'requests': 420}");
    const bad = await run();
    expect(bad.status).toBe('fail');
    expect(bad.summary.en).toMatch(/not valid JSON/);
  });

  it('refuses an expectation with both equals and near, or neither (config error)', async () => {
    await put('/w/report.json', '{}');
    for (const e of [[{ pointer: '/a', equals: 1, near: { value: 1, tolerance: 0 } }], [{ pointer: '/a', equals: 1, keys: ['a'] }], [{ pointer: '/a' }], []]) {
      const o = await run(e);
      expect(o.status).toBe('error');
      expect(o.error?.code).toBe('PROBE_PARAMS_INVALID');
    }
  });
});

describe('strict answers', () => {
  const ANSWER = [
    { pointer: '', keys: ['cause', 'detail'] },
    { pointer: '/cause', equals: 'model-path' },
    { pointer: '/detail', equals: '/opt/exam/models/tiny-llama-q4_0.gguf' },
  ];
  const answer = (): Promise<ProbeOutcome> =>
    runProbe(jsonFileProbe, seat, { kind: 'json-file', path: '/w/answer.json', expect: ANSWER }, Deadline.after(5000));

  it('finds a key repeated within one object, and where', () => {
    expect(duplicateKey('{"a": 1, "b": {"c": [1, {"d": 2, "e": "x,\\"}", "d": 3}]}}')).toEqual({ pointer: '/b/c/1', key: 'd' });
    expect(duplicateKey('{"a": {"x": 1}, "b": {"x": 1}, "c": ["a", "a"]}')).toBeNull();
    expect(duplicateKey('{"a\\u0062": 1, "ab": 2}')).toEqual({ pointer: '', key: 'ab' });
  });

  it('passes exactly the documented keys, in any order and layout', async () => {
    await put('/w/answer.json', '{\n  "detail": "/opt/exam/models/tiny-llama-q4_0.gguf",\n  "cause": "model-path"\n}\n');
    expect((await answer()).status).toBe('pass');
  });

  it('fails candidates beside the answer, a list of causes, and a repeated key', async () => {
    // The right pair among others under an extra key: the answer is not one answer.
    await put('/w/answer.json', JSON.stringify({ cause: 'port-in-use', detail: '8080', candidates: [{ cause: 'model-path', detail: '/opt/exam/models/tiny-llama-q4_0.gguf' }] }));
    expect(failedIds(await answer())).toEqual(['json::keys', 'json:/cause', 'json:/detail']);
    await put('/w/answer.json', JSON.stringify({ cause: 'model-path', detail: '/opt/exam/models/tiny-llama-q4_0.gguf', note: 'or port-in-use' }));
    expect(failedIds(await answer())).toEqual(['json::keys']);
    await put('/w/answer.json', JSON.stringify({ cause: ['model-path', 'port-in-use', 'out-of-memory'], detail: ['/opt/exam/models/tiny-llama-q4_0.gguf', '8080'] }));
    expect(failedIds(await answer())).toEqual(['json:/cause', 'json:/detail']);
    await put('/w/answer.json', JSON.stringify([{ cause: 'model-path', detail: '/opt/exam/models/tiny-llama-q4_0.gguf' }]));
    expect(failedIds(await answer())).toEqual(['json::keys', 'json:/cause', 'json:/detail']);
    // JSON.parse keeps the last of a repeated key: refused as two answers.
    await put('/w/answer.json', '{"cause": "port-in-use", "cause": "model-path", "detail": "/opt/exam/models/tiny-llama-q4_0.gguf"}');
    const dup = await answer();
    expect(dup.status).toBe('fail');
    expect(dup.summary.en).toMatch(/repeated/);
  });

  it('allows a repeated key where the check says so', async () => {
    await put('/w/answer.json', '{"cause": "x", "cause": "model-path", "detail": "/opt/exam/models/tiny-llama-q4_0.gguf"}');
    const o = await runProbe(jsonFileProbe, seat, { kind: 'json-file', path: '/w/answer.json', expect: ANSWER, duplicateKeys: 'allow' }, Deadline.after(5000));
    expect(o.status).toBe('pass');
  });
});
