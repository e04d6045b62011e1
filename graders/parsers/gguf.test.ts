import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import {
  blockIndices,
  bulkWeightType,
  checkGgufConsistency,
  LLAMA_FTYPES,
  readGgufBuffer,
  readGgufFile,
  tensorDifferences,
  tensorDigests,
  type GgufSummary,
} from './gguf.js';

// Written by __fixtures__/make-fixture.py with llama.cpp's own gguf-py; the expected figures
// below were read back with gguf-py's GGUFReader, an implementation independent of ours.
const fixture = (name: string): string => fileURLToPath(new URL(`./__fixtures__/${name}`, import.meta.url));
const Q8 = fixture('tiny-llama-q8_0.gguf');
const BAD = fixture('tiny-inconsistent.gguf');

async function rejection(p: Promise<unknown>): Promise<DeploylabError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DeploylabError);
  return e as DeploylabError;
}

describe('GGUF header reading (real file written by gguf-py)', () => {
  it('reads architecture, file type, block count and the tensor table', async () => {
    const s = await readGgufFile(Q8);
    expect(s.version).toBe(3);
    expect(s.architecture).toBe('llama');
    expect(s.name).toBe('deploylab tiny fixture');
    expect(s.fileType).toEqual({ id: 7, name: 'MOSTLY_Q8_0' });
    expect(s.blockCount).toBe(2);
    expect(s.tensorCount).toBe(21);
    expect(s.tensorTypes).toEqual({ Q8_0: 15, F32: 5, F16: 1 });
    expect(s.tensorTypeBytes).toEqual({ Q8_0: 9 * 1088 + 6 * 2176, F32: 640, F16: 2048 });
    expect(s.dataOffset).toBe(2688);
    expect(s.fileSize).toBe(28224);
    // The last tensor ends exactly at the end of the file.
    expect(s.dataOffset + s.tensorBytes).toBe(s.fileSize);
    expect(s.metadata['llama.embedding_length']).toBe(32);
    expect(s.metadata['tokenizer.ggml.tokens']).toEqual({
      array: ['<unk>', '<s>', '</s>', '<0x00>', '<0x01>', '<0x02>', '<0x03>', '<0x04>'],
      length: 32,
    });
  });

  it('gives per-tensor shapes in ggml order (row length first) and byte sizes from block sizes', async () => {
    const s = await readGgufFile(Q8);
    const byName = new Map(s.tensors.map((t) => [t.name, t]));
    expect(byName.get('blk.0.ffn_gate.weight')).toMatchObject({ type: 'Q8_0', shape: [32, 64], bytes: 2176, offset: 5696 });
    expect(byName.get('blk.0.ffn_down.weight')).toMatchObject({ type: 'Q8_0', shape: [64, 32], bytes: 2176 });
    expect(byName.get('output.weight')).toMatchObject({ type: 'F16', typeId: 1, shape: [32, 32], bytes: 2048, offset: 26176 - 2688 });
    expect(byName.get('output_norm.weight')).toMatchObject({ type: 'F32', shape: [32], bytes: 128 });
    expect(s.parameterCount).toBe(22688);
  });

  it('reads the same from bytes in memory as from the file', async () => {
    const bytes = await readFile(Q8);
    const fromBuffer = await readGgufBuffer(bytes);
    expect(fromBuffer).toEqual(await readGgufFile(Q8));
  });

  it('reads a header from a prefix of the file when the real size is given', async () => {
    const bytes = await readFile(Q8);
    const s = await readGgufBuffer(bytes.subarray(0, 4096), bytes.length);
    expect(s.fileSize).toBe(bytes.length);
    expect(s.tensorTypes).toEqual({ Q8_0: 15, F32: 5, F16: 1 });
    expect(checkGgufConsistency(s).consistent).toBe(true);
  });

  it('a prefix shorter than the header is the harness read limit (config), not a bad file', async () => {
    const bytes = await readFile(Q8);
    const e = await rejection(readGgufBuffer(bytes.subarray(0, 1000), bytes.length));
    expect(e.code).toBe('GGUF_HEADER_TRUNCATED');
    expect(e.fault).toBe('config');
  });

  it('a file cut inside its header is the candidate’s broken file', async () => {
    const bytes = await readFile(Q8);
    const e = await rejection(readGgufBuffer(bytes.subarray(0, 1000)));
    expect(e.code).toBe('GGUF_INVALID');
    expect(e.fault).toBe('candidate');
  });

  it('something that is not GGUF at all is rejected as invalid', async () => {
    const e = await rejection(readGgufBuffer(Buffer.from('{"model": "llama", "quant": "Q4_K_M"}\n'.repeat(4))));
    expect(e.code).toBe('GGUF_INVALID');
    expect(e.fault).toBe('candidate');
  });

  it('a missing file is GGUF_NOT_FOUND', async () => {
    const e = await rejection(readGgufFile(fixture('no-such.gguf')));
    expect(e.code).toBe('GGUF_NOT_FOUND');
  });
});

describe('GGUF consistency: metadata against tensors', () => {
  it('the well-formed fixture is consistent', async () => {
    const s = await readGgufFile(Q8);
    expect(blockIndices(s)).toEqual([0, 1]);
    expect(bulkWeightType(s)).toBe('Q8_0');
    expect(checkGgufConsistency(s)).toEqual({ consistent: true, problems: [] });
  });

  it('block_count 3 with blocks 0 and 2 only (a bad prune) is caught twice', async () => {
    const s = await readGgufFile(BAD);
    expect(s.blockCount).toBe(3);
    expect(s.fileType?.name).toBe('ALL_F32');
    expect(blockIndices(s)).toEqual([0, 2]);
    const c = checkGgufConsistency(s);
    expect(c.consistent).toBe(false);
    expect(c.problems).toEqual([
      'block_count is 3 but 2 distinct blk.N indices are present',
      'blk indices are not 0..1: 0,2',
    ]);
  });

  it('a file_type that claims a quantization the tensors do not have is caught', async () => {
    const s = await readGgufFile(Q8);
    const relabelled: GgufSummary = { ...s, fileType: { id: 15, name: LLAMA_FTYPES[15]! } };
    expect(relabelled.fileType?.name).toBe('MOSTLY_Q4_K_M');
    expect(checkGgufConsistency(relabelled).problems).toEqual([
      'general.file_type is MOSTLY_Q4_K_M but most weight bytes are Q8_0',
    ]);
  });

  it('tensor data past the end of the file (a truncated download) is caught', async () => {
    const bytes = await readFile(Q8);
    const s = await readGgufBuffer(bytes.subarray(0, 20000));
    expect(checkGgufConsistency(s).problems).toEqual(['tensor data ends at byte 28224 but the file has 20000 bytes']);
  });

  it('names the llama.cpp file types', () => {
    expect(LLAMA_FTYPES[15]).toBe('MOSTLY_Q4_K_M');
    expect(LLAMA_FTYPES[7]).toBe('MOSTLY_Q8_0');
    expect(LLAMA_FTYPES[1]).toBe('MOSTLY_F16');
  });
});

describe('GGUF files cut short on disk', () => {
  it('a file cut inside its header is invalid, not a table of empty tensor names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'deploylab-gguf-'));
    try {
      const cut = join(dir, 'cut.gguf');
      await writeFile(cut, (await readFile(Q8)).subarray(0, 1000));
      const e = await rejection(readGgufFile(cut));
      expect(e.code).toBe('GGUF_INVALID');
      expect(e.message).toContain('header runs past the end of the file (1000 bytes)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('GGUF tensor comparison: the same tensors, not the same header', () => {
  it('a file compared with itself has no differences, and a metadata-only edit changes none', async () => {
    const bytes = await readFile(Q8);
    const want = tensorDigests(bytes, await readGgufBuffer(bytes));
    expect(want).toHaveLength(21);
    expect(tensorDifferences(want, want)).toEqual([]);
    // Rename the model in place (same length): the tensors are still the reference's.
    const renamed = Buffer.from(bytes);
    const at = renamed.indexOf('deploylab tiny fixture');
    expect(at).toBeGreaterThan(0);
    renamed.write('someone else s fixture', at);
    const s = await readGgufBuffer(renamed);
    expect(s.name).toBe('someone else s fixture');
    expect(tensorDifferences(tensorDigests(renamed, s), want)).toEqual([]);
  });

  it('one changed byte of tensor data is named; order does not matter', async () => {
    const bytes = await readFile(Q8);
    const s = await readGgufBuffer(bytes);
    const want = tensorDigests(bytes, s);
    const gate = s.tensors.find((t) => t.name === 'blk.0.ffn_gate.weight')!;
    const doctored = Buffer.from(bytes);
    doctored[s.dataOffset + gate.offset + 100]! ^= 0x01;
    const got = tensorDigests(doctored, s).reverse();
    expect(tensorDifferences(got, want)).toEqual(['blk.0.ffn_gate.weight: data differs']);
  });

  it('missing, extra, retyped and reshaped tensors are each named', async () => {
    const bytes = await readFile(Q8);
    const want = tensorDigests(bytes, await readGgufBuffer(bytes));
    const got = want
      .filter((t) => t.name !== 'blk.1.attn_q.weight')
      .map((t) => (t.name === 'output.weight' ? { ...t, type: 'Q8_0' } : t.name === 'blk.0.ffn_gate.weight' ? { ...t, shape: [64, 32] } : t));
    got.push({ ...want[0]!, name: 'blk.2.attn_q.weight' });
    expect(tensorDifferences(got, want).sort()).toEqual([
      'blk.0.ffn_gate.weight: shape 64x32, expected 32x64',
      'blk.1.attn_q.weight: missing',
      'blk.2.attn_q.weight: not in the reference',
      'output.weight: type Q8_0, expected F16',
    ]);
  });

  it('a file cut inside its tensor data cannot be digested (the candidate’s broken file)', async () => {
    const bytes = await readFile(Q8);
    const s = await readGgufBuffer(bytes);
    expect(() => tensorDigests(bytes.subarray(0, bytes.length - 10), s)).toThrow(/past the 28214 bytes read/);
  });
});
