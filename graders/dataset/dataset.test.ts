import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';
import { analyse, datasetProbe, mojibake, repeatedKey } from './dataset.js';

const FIELDS = ['instruction', 'input', 'output'];
const TRUTH = [
  { instruction: '日志文件保存在哪里？', input: '', output: '默认保存在 /var/log/xinghe/ 目录下，按天切分，保留 14 天。' },
  { instruction: '如何获取 API 密钥？', input: '', output: '登录控制台，进入「密钥管理」页面，点击 新建密钥 即可生成。' },
  { instruction: '流式输出应该如何开启？', input: '', output: '在请求体中设置 "stream": true，服务会以 SSE 方式逐段返回。' },
  { instruction: '模型加载很慢，有什么办法加快？', input: '服务器为 16 核 CPU，内存 64 GB。', output: '可以把模型文件放在本地 SSD 上。' },
];
const line = (r: object, ascii = false): string => {
  const s = JSON.stringify(r);
  return ascii ? s.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : s;
};
const jsonl = (rs: object[]): string => rs.map((r) => line(r)).join('\n') + '\n';

describe('mojibake', () => {
  it('finds Chinese decoded as Latin-1 or cp1252, from GBK or UTF-8 bytes', () => {
    const zh = '日志文件保存在哪里？';
    expect(mojibake(Buffer.from(zh, 'utf8').toString('latin1'))?.reads).toBe(zh);
    // "日志文件" in GBK, read as windows-1252 (what WHATWG calls latin1).
    const gbkAsCp1252 = new TextDecoder('latin1').decode(Buffer.from('c8d5d6becec4bcfe', 'hex'));
    expect(mojibake(gbkAsCp1252)?.reads).toBe('日志文件');
    // What Python's bytes.decode('latin-1') makes of GBK: C1 controls included.
    // "保留 14 天" in GBK: the ASCII between the CJK bytes stays in the run.
    const gbk = Buffer.from('b1a3c1f420313420ccec', 'hex');
    expect(mojibake(String.fromCharCode(...gbk))?.reads).toBe('保留 14 天');
    // UTF-8 read as cp1252 (“â€œ” style): the curly quotes and € are bytes 0x80-0x9f.
    expect(mojibake('é»˜è®¤')).not.toBeNull();
  });

  it('leaves right text alone, a lone accent or sign too', () => {
    for (const s of TRUTH.flatMap((r) => Object.values(r))) expect(mojibake(s)).toBeNull();
    expect(mojibake('café © 2026 — naïve')).toBeNull();
    expect(mojibake('')).toBeNull();
  });
});

describe('repeatedKey', () => {
  it('finds a key given twice at the top level, escapes and nesting understood', () => {
    expect(repeatedKey('{"instruction": "a", "input": "", "instruction": "b"}')).toBe('instruction');
    expect(repeatedKey('{"a\\u0062": 1, "ab": 2}')).toBe('ab');
    expect(repeatedKey('{"a": "x\\", \\"a\\": 1", "b": {"a": 1, "a": 2}, "c": ["a", "a"]}')).toBeNull();
    expect(repeatedKey('{"instruction": "q", "input": "", "output": "a"}')).toBeNull();
  });
});

describe('analyse', () => {
  it('takes raw UTF-8 and \\u escapes, any key and record order, a last line end or none', () => {
    const rs = [...TRUTH].reverse().map((r) => ({ output: r.output, instruction: r.instruction, input: r.input }));
    for (const text of [jsonl(TRUTH), rs.map((r) => line(r, true)).join('\n')]) {
      const a = analyse(Buffer.from(text), FIELDS, TRUTH, 'instruction');
      expect(a).toMatchObject({ bom: false, invalidUtf8: [], mojibake: [], issues: [], crlf: [], blank: [], missing: [], duplicates: [], extras: [], recognised: 4, lines: 4 });
    }
  });

  it('reports each line problem where it is', () => {
    const text = [
      line(TRUTH[0]!),
      '',
      line({ instruction: 'x', output: 'y' }),
      line({ ...TRUTH[1], id: 1 }),
      line({ instruction: 'q', input: 0, output: 'a' }),
      '[' + line(TRUTH[2]!) + ']',
      '{"instruction": "a", "instruction": "b", "input": "", "output": "c"}',
      line({ instruction: ' ', input: '', output: 'a' }),
      "{'instruction': 'q'}",
      line(TRUTH[3]!) + '\r',
    ].join('\n');
    const a = analyse(Buffer.from(text), FIELDS, TRUTH, 'instruction');
    expect(a.blank).toEqual([2]);
    expect(a.crlf).toEqual([10]);
    expect(a.issues.map((i) => i.line)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(a.issues.map((i) => i.problem).join(' | ')).toMatch(/missing \["input"\].*not in the format \["id"\].*not a string.*an array.*repeated.*empty.*not JSON/);
    expect(a.records.map((r) => r.line)).toEqual([1, 10]);
  });

  it('tells BOM, bytes that are not UTF-8 (GBK) and U+FFFD apart', () => {
    const bom = analyse(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(jsonl(TRUTH))]), FIELDS, TRUTH, 'instruction');
    expect(bom.bom).toBe(true);
    expect(bom.issues).toEqual([]); // a BOM is the encoding's fault, not the format's
    // A line of GBK bytes ("日志" in GBK) among UTF-8 ones.
    const gbk = Buffer.concat([Buffer.from(jsonl(TRUTH.slice(1))), Buffer.from('{"instruction": "'), Buffer.from('c8d5d6be', 'hex'), Buffer.from('", "input": "", "output": "a"}\n')]);
    const g = analyse(gbk, FIELDS, TRUTH, 'instruction');
    expect(g.invalidUtf8).toEqual([4]);
    expect(g.replacement).toEqual([4]);
    expect(g.records).toHaveLength(4); // still a well-formed line: only encoding judges the bytes
    // U+FFFD written as an escape: valid UTF-8 bytes, still a character lost in decoding.
    const escaped = analyse(Buffer.from(jsonl(TRUTH.slice(1)) + '{"instruction": "日志文件保存在哪里？", "input": "", "output": "\\ufffd"}\n'), FIELDS, TRUTH, 'instruction');
    expect(escaped.invalidUtf8).toEqual([]);
    expect(escaped.replacement).toEqual([4]);
  });

  it('finds missing, duplicated and extra records, and what differs in the nearest one', () => {
    const text = jsonl([TRUTH[0]!, TRUTH[1]!, TRUTH[1]!, { ...TRUTH[2]!, output: TRUTH[2]!.output.slice(0, 8) }, { ...TRUTH[0]!, instruction: '请问日志文件保存在哪里？' }]);
    const a = analyse(Buffer.from(text), FIELDS, TRUTH, 'instruction');
    expect(a.duplicates).toEqual([{ lines: [2, 3], record: TRUTH[1] }]);
    expect(a.extras.map((e) => e.line)).toEqual([4, 5]);
    expect(a.missing.map((m) => m.record.instruction)).toEqual([TRUTH[2]!.instruction, TRUTH[3]!.instruction]);
    expect(a.missing[0]!.nearest).toEqual({ line: 4, differs: [{ field: 'output', expected: TRUTH[2]!.output, actual: TRUTH[2]!.output.slice(0, 8) }] });
    expect(a.missing[1]!.nearest).toBeUndefined();
    expect(a.recognised).toBe(3);
  });

  it('does not take swapped fields or trimmed-away details for the record', () => {
    const swapped = TRUTH.map((r) => ({ instruction: r.output, input: r.input, output: r.instruction }));
    const a = analyse(Buffer.from(jsonl(swapped)), FIELDS, TRUTH, 'instruction');
    expect(a.recognised).toBe(0);
    expect(a.missing).toHaveLength(4);
    const noInput = analyse(Buffer.from(jsonl(TRUTH.map((r) => ({ ...r, input: '' })))), FIELDS, TRUTH, 'instruction');
    expect(noInput.missing.map((m) => m.record.instruction)).toEqual([TRUTH[3]!.instruction]);
    expect(noInput.extras).toHaveLength(1);
  });
});

describe('dataset probe', () => {
  let seat: TempSeat;
  beforeEach(async () => {
    seat = await tempSeat();
  });
  afterEach(async () => {
    await seat.cleanup();
  });
  const put = async (content: string | Buffer): Promise<void> => {
    await mkdir(join(seat.root, 'w'), { recursive: true });
    await writeFile(join(seat.root, 'w/train.jsonl'), content);
  };
  const run = (aspect: string, extra: object = {}): Promise<ProbeOutcome> =>
    runProbe(datasetProbe, seat, { kind: 'dataset', path: '/w/train.jsonl', truth: TRUTH, aspect, ...extra }, Deadline.after(5000));
  const statuses = async (): Promise<string[]> => Promise.all(['format', 'encoding', 'coverage', 'unique'].map(async (x) => (await run(x)).status));

  it('passes every aspect on the right dataset', async () => {
    await put(jsonl(TRUTH));
    expect(await statuses()).toEqual(['pass', 'pass', 'pass', 'pass']);
  });

  it('fails every aspect on a missing file, an empty file, or copied examples only', async () => {
    expect(await statuses()).toEqual(['fail', 'fail', 'fail', 'fail']);
    await put('');
    expect(await statuses()).toEqual(['fail', 'fail', 'fail', 'fail']);
    await put(jsonl(TRUTH.slice(0, 1)));
    const o = await run('format');
    expect(o.status).toBe('fail');
    expect(o.summary.en).toMatch(/does not hold this dataset: 1 of the 4/);
  });

  it('judges each aspect on its own', async () => {
    await put(jsonl([...TRUTH, TRUTH[0]!]));
    expect(await statuses()).toEqual(['pass', 'pass', 'pass', 'fail']);
    await put(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(jsonl(TRUTH))]));
    expect(await statuses()).toEqual(['pass', 'fail', 'pass', 'pass']);
    await put(jsonl(TRUTH).replaceAll('\n', '\r\n'));
    expect(await statuses()).toEqual(['fail', 'pass', 'pass', 'pass']);
    await put(jsonl(TRUTH.map((r, i) => (i === 0 ? { ...r, output: Buffer.from(r.output, 'utf8').toString('latin1') } : r))));
    const moji = await Promise.all(['format', 'encoding', 'coverage', 'unique'].map((x) => run(x)));
    expect(moji.map((o) => o.status)).toEqual(['pass', 'fail', 'fail', 'fail']);
    expect(moji[1]!.summary.en).toMatch(/mojibake/);
    await put(JSON.stringify(TRUTH, null, 2));
    expect(await statuses()).toEqual(['fail', 'fail', 'fail', 'fail']);
  });

  it('keeps its evidence bounded on a large file', async () => {
    const many = Array.from({ length: 500 }, (_, i) => ({ instruction: `${TRUTH[i % 4]!.instruction}${i}`, input: '', output: 'a' }));
    await put(jsonl([...TRUTH, ...many]));
    const o = await run('unique');
    expect(o.status).toBe('fail');
    const d = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'unique details');
    expect(d?.kind === 'note' && (d.data?.['extras'] as { count: number; first: unknown[] })).toMatchObject({ count: 500, first: expect.any(Array) });
    expect(d?.kind === 'note' && (d.data?.['extras'] as { first: unknown[] }).first).toHaveLength(20);
  });

  it('refuses truth records without the format\'s keys, or given twice (config error)', async () => {
    await put(jsonl(TRUTH));
    for (const truth of [[{ instruction: 'q', output: 'a' }], [TRUTH[0], TRUTH[0]], []]) {
      const o = await runProbe(datasetProbe, seat, { kind: 'dataset', path: '/w/train.jsonl', truth, aspect: 'coverage' }, Deadline.after(5000));
      expect(o.status).toBe('error');
      expect(o.error?.code).toBe('PROBE_PARAMS_INVALID');
    }
  });
});
