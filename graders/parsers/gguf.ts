/**
 * GGUF header reading for quantization and pruning checks. The judgement rests on what the file
 * holds (tensor types, shapes, block indices), never on its name.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { gguf, type GGUFParseOutput } from '@huggingface/gguf';
import { DeploylabError } from '../../runner/core/errors.js';

/** ggml_type ids → names (ggml.h; gguf-py GGMLQuantizationType). */
export const GGML_TYPES: Readonly<Record<number, string>> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1',
  10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K',
  16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S',
  23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16',
  34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4', 40: 'NVFP4', 41: 'Q1_0', 42: 'Q2_0',
};

const QK_K = 256;
/** [elements per block, bytes per block] (gguf-py GGML_QUANT_SIZES). */
export const GGML_BLOCK: Readonly<Record<string, readonly [number, number]>> = {
  F32: [1, 4], F16: [1, 2], Q4_0: [32, 18], Q4_1: [32, 20], Q5_0: [32, 22], Q5_1: [32, 24],
  Q8_0: [32, 34], Q8_1: [32, 40],
  Q2_K: [QK_K, 4 + QK_K / 16 + QK_K / 4], Q3_K: [QK_K, 2 + QK_K / 4 + QK_K / 8 + 12],
  Q4_K: [QK_K, 4 + QK_K / 2 + 12], Q5_K: [QK_K, 4 + QK_K / 2 + QK_K / 8 + 12],
  Q6_K: [QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16], Q8_K: [QK_K, 4 + QK_K + QK_K / 8],
  IQ2_XXS: [QK_K, 2 + QK_K / 4], IQ2_XS: [QK_K, 2 + QK_K / 4 + QK_K / 32],
  IQ3_XXS: [QK_K, 2 + QK_K / 4 + QK_K / 8], IQ1_S: [QK_K, 2 + QK_K / 8 + QK_K / 16],
  IQ4_NL: [32, 18], IQ3_S: [QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4],
  IQ2_S: [QK_K, 2 + QK_K / 4 + QK_K / 16], IQ4_XS: [QK_K, 4 + QK_K / 2 + QK_K / 64],
  I8: [1, 1], I16: [1, 2], I32: [1, 4], I64: [1, 8], F64: [1, 8],
  IQ1_M: [QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32], BF16: [1, 2],
  TQ1_0: [QK_K, 2 + 4 * 13], TQ2_0: [QK_K, 2 + 64], MXFP4: [32, 17], NVFP4: [64, 36],
  Q1_0: [128, 18], Q2_0: [64, 18],
};

/** llama_ftype values of general.file_type → names (llama.h LLAMA_FTYPE_*). */
export const LLAMA_FTYPES: Readonly<Record<number, string>> = {
  0: 'ALL_F32', 1: 'MOSTLY_F16', 2: 'MOSTLY_Q4_0', 3: 'MOSTLY_Q4_1', 7: 'MOSTLY_Q8_0',
  8: 'MOSTLY_Q5_0', 9: 'MOSTLY_Q5_1', 10: 'MOSTLY_Q2_K', 11: 'MOSTLY_Q3_K_S', 12: 'MOSTLY_Q3_K_M',
  13: 'MOSTLY_Q3_K_L', 14: 'MOSTLY_Q4_K_S', 15: 'MOSTLY_Q4_K_M', 16: 'MOSTLY_Q5_K_S',
  17: 'MOSTLY_Q5_K_M', 18: 'MOSTLY_Q6_K', 19: 'MOSTLY_IQ2_XXS', 20: 'MOSTLY_IQ2_XS',
  21: 'MOSTLY_Q2_K_S', 22: 'MOSTLY_IQ3_XS', 23: 'MOSTLY_IQ3_XXS', 24: 'MOSTLY_IQ1_S',
  25: 'MOSTLY_IQ4_NL', 26: 'MOSTLY_IQ3_S', 27: 'MOSTLY_IQ3_M', 28: 'MOSTLY_IQ2_S',
  29: 'MOSTLY_IQ2_M', 30: 'MOSTLY_IQ4_XS', 31: 'MOSTLY_IQ1_M', 32: 'MOSTLY_BF16',
  36: 'MOSTLY_TQ1_0', 37: 'MOSTLY_TQ2_0', 38: 'MOSTLY_MXFP4_MOE', 39: 'MOSTLY_NVFP4',
  40: 'MOSTLY_Q1_0', 41: 'MOSTLY_Q2_0', 1024: 'GUESSED',
};

/**
 * The ggml type that carries most of the 2-D weight bytes for a file type. llama-quantize's
 * mixes put some tensors in other types (Q4_K_M keeps a few in Q6_K), but the bulk follows the
 * name; only file types listed here are cross-checked.
 */
const FTYPE_BULK: Readonly<Record<string, readonly string[]>> = {
  ALL_F32: ['F32'], MOSTLY_F16: ['F16'], MOSTLY_BF16: ['BF16'], MOSTLY_Q8_0: ['Q8_0'],
  MOSTLY_Q4_0: ['Q4_0'], MOSTLY_Q4_1: ['Q4_1'], MOSTLY_Q5_0: ['Q5_0'], MOSTLY_Q5_1: ['Q5_1'],
  MOSTLY_Q2_K: ['Q2_K', 'Q3_K'], MOSTLY_Q3_K_S: ['Q3_K'], MOSTLY_Q3_K_M: ['Q3_K'], MOSTLY_Q3_K_L: ['Q3_K', 'Q5_K'],
  MOSTLY_Q4_K_S: ['Q4_K'], MOSTLY_Q4_K_M: ['Q4_K'], MOSTLY_Q5_K_S: ['Q5_K'], MOSTLY_Q5_K_M: ['Q5_K'],
  MOSTLY_Q6_K: ['Q6_K'],
};

export type MetadataScalar = string | number | boolean;
/** Arrays (the vocabulary) are summarized: their length and first few items. */
export type MetadataEntry = MetadataScalar | { array: MetadataScalar[]; length: number };

export interface GgufTensor {
  name: string;
  type: string;
  typeId: number;
  /** ne[0], ne[1], ... as stored: the first dimension is the row length. */
  shape: number[];
  elements: number;
  bytes: number;
  offset: number;
}

export interface GgufSummary {
  version: number;
  architecture: string | null;
  name: string | null;
  fileType: { id: number; name: string } | null;
  blockCount: number | null;
  tensorCount: number;
  /** ggml type name → number of tensors. */
  tensorTypes: Record<string, number>;
  /** ggml type name → bytes of tensor data. */
  tensorTypeBytes: Record<string, number>;
  tensors: GgufTensor[];
  tensorBytes: number;
  parameterCount: number;
  dataOffset: number;
  /** Size of the whole file when known. */
  fileSize: number | null;
  metadata: Record<string, MetadataEntry>;
}

const ARRAY_PREVIEW = 8;

function invalid(what: string, cause?: unknown): DeploylabError {
  return new DeploylabError({
    code: 'GGUF_INVALID',
    fault: 'candidate',
    message: { zh: `不是有效的 GGUF 文件：${what}`, en: `not a valid GGUF file: ${what}` },
    cause,
  });
}

function toNumber(v: bigint | number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) && typeof v === 'bigint') throw invalid(`value ${v} out of range`);
  return n;
}

function scalar(v: unknown): MetadataScalar {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return String(v);
}

function entry(v: unknown): MetadataEntry {
  if (Array.isArray(v)) return { array: v.slice(0, ARRAY_PREVIEW).map(scalar), length: v.length };
  return scalar(v);
}

/**
 * The header read must lie inside the bytes that exist: the library pads what it reads with
 * zeros, so a cut file would otherwise come back as empty tensor names.
 */
function headerEnd(out: GGUFParseOutput): number {
  return Math.max(out.tensorInfoByteRange[1], 0);
}

export function summarizeGguf(out: GGUFParseOutput, fileSize: number | null): GgufSummary {
  const meta = out.metadata as unknown as Record<string, unknown>;
  const metadata: Record<string, MetadataEntry> = {};
  for (const [k, v] of Object.entries(meta)) metadata[k] = entry(v);

  const arch = typeof meta['general.architecture'] === 'string' ? meta['general.architecture'] : null;
  const ft = meta['general.file_type'];
  const ftId = typeof ft === 'number' || typeof ft === 'bigint' ? Number(ft) : null;
  const bc = arch ? meta[`${arch}.block_count`] : undefined;

  const tensors: GgufTensor[] = out.tensorInfos.map((t) => {
    const type = GGML_TYPES[t.dtype] ?? `UNKNOWN_${t.dtype}`;
    const shape = t.shape.map(toNumber);
    const elements = shape.reduce((a, b) => a * b, 1);
    const block = GGML_BLOCK[type];
    if (!block) throw invalid(`tensor ${t.name} has unknown ggml type ${t.dtype}`);
    if (elements % block[0] !== 0) throw invalid(`tensor ${t.name}: ${elements} elements is not a multiple of the ${type} block (${block[0]})`);
    return { name: t.name, type, typeId: t.dtype, shape, elements, bytes: (elements / block[0]) * block[1], offset: toNumber(t.offset) };
  });

  const tensorTypes: Record<string, number> = {};
  const tensorTypeBytes: Record<string, number> = {};
  for (const t of tensors) {
    tensorTypes[t.type] = (tensorTypes[t.type] ?? 0) + 1;
    tensorTypeBytes[t.type] = (tensorTypeBytes[t.type] ?? 0) + t.bytes;
  }

  return {
    version: Number(meta['version']),
    architecture: arch,
    name: typeof meta['general.name'] === 'string' ? meta['general.name'] : null,
    fileType: ftId === null ? null : { id: ftId, name: LLAMA_FTYPES[ftId] ?? `UNKNOWN_${ftId}` },
    blockCount: typeof bc === 'number' || typeof bc === 'bigint' ? Number(bc) : null,
    tensorCount: tensors.length,
    tensorTypes,
    tensorTypeBytes,
    tensors,
    tensorBytes: tensors.reduce((a, t) => a + t.bytes, 0),
    parameterCount: tensors.reduce((a, t) => a + t.elements, 0),
    dataOffset: toNumber(out.tensorDataOffset),
    fileSize,
    metadata,
  };
}

async function parse(uri: string, params: Parameters<typeof gguf>[1]): Promise<GGUFParseOutput> {
  try {
    return (await gguf(uri, params)) as GGUFParseOutput;
  } catch (e) {
    if (e instanceof DeploylabError) throw e;
    throw invalid(e instanceof Error ? e.message : String(e), e);
  }
}

/** Read a GGUF file on the harness's own disk (e.g. one copied out of a seat). */
export async function readGgufFile(path: string): Promise<GgufSummary> {
  const st = await stat(path).catch((e: unknown) => {
    throw new DeploylabError({
      code: 'GGUF_NOT_FOUND',
      fault: 'candidate',
      message: { zh: `找不到 GGUF 文件：${path}`, en: `GGUF file not found: ${path}` },
      cause: e,
    });
  });
  const out = await parse(path, { allowLocalFile: true });
  if (headerEnd(out) > st.size) throw invalid(`the header runs past the end of the file (${st.size} bytes)`);
  return summarizeGguf(out, st.size);
}

/**
 * Read a GGUF header from bytes in memory: the whole file, or a prefix of it (`fileSize` then
 * gives the real size). A header that runs past the bytes given is an error, not a guess.
 */
export async function readGgufBuffer(data: Uint8Array, fileSize: number = data.length): Promise<GgufSummary> {
  const truncated = (): DeploylabError =>
    new DeploylabError({
      code: 'GGUF_HEADER_TRUNCATED',
      fault: 'config',
      message: {
        zh: `GGUF 头部超出已读取的 ${data.length} 字节（文件共 ${fileSize} 字节）`,
        en: `the GGUF header runs past the ${data.length} bytes read (file has ${fileSize})`,
      },
      hint: { zh: '增大读取上限后重新评分', en: 'raise the read limit and re-grade' },
    });
  const serve: typeof fetch = async (_input, init) => {
    const range = new Headers(init?.headers).get('range');
    const m = range?.match(/^bytes=(\d+)-(\d+)$/);
    if (!m) throw new Error('range request expected');
    const start = Number(m[1]);
    if (start >= data.length && data.length < fileSize) throw truncated();
    // A copy: Response wants an ArrayBuffer-backed view, not a slice of a shared Buffer pool.
    const body = new Uint8Array(data.subarray(Math.min(start, data.length), Math.min(Number(m[2]) + 1, data.length)));
    return new Response(body, {
      status: 206,
      headers: { 'content-range': `bytes ${start}-${start + body.length - 1}/${fileSize}` },
    });
  };
  let out: GGUFParseOutput;
  try {
    out = await parse('http://gguf.invalid/model.gguf', { fetch: serve });
  } catch (e) {
    // Running off the end of a prefix is our read limit, not the candidate's file.
    const ranOff = e instanceof DeploylabError && e.cause instanceof RangeError;
    if (ranOff && data.length < fileSize) throw truncated();
    throw e;
  }
  if (headerEnd(out) > data.length) {
    if (data.length < fileSize) throw truncated();
    throw invalid(`the header runs past the end of the file (${fileSize} bytes)`);
  }
  return summarizeGguf(out, fileSize);
}

/** Distinct `blk.N.` indices, ascending. */
export function blockIndices(s: GgufSummary): number[] {
  const seen = new Set<number>();
  for (const t of s.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m) seen.add(Number(m[1]));
  }
  return [...seen].sort((a, b) => a - b);
}

/** The ggml type holding most bytes among tensors of two or more dimensions (the weights). */
export function bulkWeightType(s: GgufSummary): string | null {
  const bytes = new Map<string, number>();
  for (const t of s.tensors) if (t.shape.length >= 2) bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.bytes);
  let best: string | null = null;
  for (const [type, b] of bytes) if (best === null || b > (bytes.get(best) ?? 0)) best = type;
  return best;
}

/**
 * Share of the weights (elements of tensors with two or more dimensions) stored in one of
 * `types`: the measure of "mostly quantized to X" that byte counts would skew, since a quantized
 * tensor takes fewer bytes than an unquantized one of the same size.
 */
export function weightShare(s: GgufSummary, types: readonly string[]): number {
  let all = 0;
  let hit = 0;
  for (const t of s.tensors) {
    if (t.shape.length < 2) continue;
    all += t.elements;
    if (types.includes(t.type)) hit += t.elements;
  }
  return all === 0 ? 0 : hit / all;
}

export interface GgufConsistency {
  consistent: boolean;
  problems: string[];
}

/**
 * Does the metadata agree with the tensors? block_count equals the number of distinct `blk.N.`
 * indices and those are exactly 0..N-1; general.file_type matches the bulk weight type; the
 * tensor data fits in the file.
 */
export function checkGgufConsistency(s: GgufSummary): GgufConsistency {
  const problems: string[] = [];
  const idx = blockIndices(s);
  if (s.blockCount === null) {
    if (idx.length > 0) problems.push(`${s.architecture ?? '?'}.block_count missing but ${idx.length} blocks present`);
  } else {
    if (idx.length !== s.blockCount) problems.push(`block_count is ${s.blockCount} but ${idx.length} distinct blk.N indices are present`);
    const gaps = idx.filter((n, i) => n !== i);
    if (gaps.length > 0 || (idx.length > 0 && idx[idx.length - 1] !== idx.length - 1)) {
      problems.push(`blk indices are not 0..${idx.length - 1}: ${idx.join(',')}`);
    }
  }
  if (s.fileType) {
    const expected = FTYPE_BULK[s.fileType.name];
    const bulk = bulkWeightType(s);
    if (expected && bulk && !expected.includes(bulk)) {
      problems.push(`general.file_type is ${s.fileType.name} but most weight bytes are ${bulk}`);
    }
  }
  if (s.fileSize !== null) {
    const end = Math.max(0, ...s.tensors.map((t) => t.offset + t.bytes));
    if (s.dataOffset + end > s.fileSize) {
      problems.push(`tensor data ends at byte ${s.dataOffset + end} but the file has ${s.fileSize} bytes`);
    }
  }
  return { consistent: problems.length === 0, problems };
}

/** One tensor as a comparison sees it: its table entry and the SHA-256 of its data bytes. */
export interface TensorDigest {
  name: string;
  type: string;
  shape: number[];
  sha256: string;
}

/**
 * The tensors of a whole GGUF file, each with the digest of its data (`s` read from `data`). A
 * file shorter than its tensor table says cannot be digested: that is the caller's to report.
 */
export function tensorDigests(data: Uint8Array, s: GgufSummary): TensorDigest[] {
  return s.tensors.map((t) => {
    const start = s.dataOffset + t.offset;
    if (start + t.bytes > data.length) throw invalid(`tensor ${t.name} ends at byte ${start + t.bytes}, past the ${data.length} bytes read`);
    return { name: t.name, type: t.type, shape: t.shape, sha256: createHash('sha256').update(data.subarray(start, start + t.bytes)).digest('hex') };
  });
}

/**
 * How `got` differs from `want`, tensor by tensor (order ignored): tensors missing or extra, and
 * for the rest a different type, shape or data. Empty when they hold the same tensors.
 */
export function tensorDifferences(got: readonly TensorDigest[], want: readonly TensorDigest[]): string[] {
  const mine = new Map(got.map((t) => [t.name, t]));
  const out: string[] = [];
  for (const w of want) {
    const g = mine.get(w.name);
    if (!g) out.push(`${w.name}: missing`);
    else if (g.type !== w.type) out.push(`${w.name}: type ${g.type}, expected ${w.type}`);
    else if (g.shape.join('x') !== w.shape.join('x')) out.push(`${w.name}: shape ${g.shape.join('x')}, expected ${w.shape.join('x')}`);
    else if (g.sha256 !== w.sha256) out.push(`${w.name}: data differs`);
    mine.delete(w.name);
  }
  for (const name of mine.keys()) out.push(`${name}: not in the reference`);
  return out;
}
