/**
 * `gguf` probe: a model file in the seat, read through the archive API (its header only, from a
 * prefix of the file) and judged on what the tensors are, never on the file name: the bulk
 * weight type, the file type the header declares, block count, and metadata/tensor consistency.
 */
import { z } from 'zod';
import { judge, scoringSchema, type Assertion } from './assertions.js';
import { bulkWeightType, checkGgufConsistency, readGgufBuffer, type GgufSummary } from './parsers/gguf.js';
import { defineProbe, failed, note, type Evidence, type SeatFile } from './probe.js';
import { isDeploylabError } from '../runner/core/errors.js';

export const ggufParams = z.strictObject({
  path: z.string().startsWith('/'),
  container: z.string().optional(),
  /** Bytes read from the start of the file; the header (with the vocabulary) must fit. */
  readBytes: z.number().int().positive().max(256 * 1024 * 1024).default(32 * 1024 * 1024),
  expect: z
    .strictObject({
      architecture: z.string().optional(),
      /** Accepted general.file_type names, e.g. ["MOSTLY_Q4_K_M"]. */
      fileType: z.array(z.string()).min(1).optional(),
      /** Accepted ggml types for the bulk of the weight bytes, e.g. ["Q4_K"]. */
      bulkType: z.array(z.string()).min(1).optional(),
      blockCount: z.number().int().nonnegative().optional(),
      maxBlockCount: z.number().int().nonnegative().optional(),
      /** Metadata agrees with the tensors (block indices, file type, data within the file). */
      consistent: z.boolean().default(true),
      maxFileBytes: z.number().int().positive().optional(),
    })
    .prefault({}),
  scoring: scoringSchema,
});
export type GgufParams = z.output<typeof ggufParams>;

function headerNote(s: GgufSummary, problems: string[]): Evidence {
  return note('GGUF 头部信息', 'GGUF header', {
    architecture: s.architecture,
    name: s.name,
    fileType: s.fileType,
    blockCount: s.blockCount,
    tensorCount: s.tensorCount,
    tensorTypes: s.tensorTypes,
    tensorTypeBytes: s.tensorTypeBytes,
    bulkWeightType: bulkWeightType(s),
    parameterCount: s.parameterCount,
    fileSize: s.fileSize,
    consistencyProblems: problems,
  });
}

function fileEvidence(f: SeatFile): Evidence {
  return { kind: 'file', path: f.path, exists: true, size: f.size, mode: '0' + f.mode.toString(8).padStart(3, '0'), uid: f.uid, gid: f.gid };
}

export const ggufProbe = defineProbe({
  kind: 'gguf',
  params: ggufParams,
  async run(seat, p, deadline) {
    deadline.check();
    const f = await seat.readFile(p.path, { maxBytes: p.readBytes, ...(p.container ? { container: p.container } : {}) });
    if (!f) return failed({ zh: `模型文件不存在：${p.path}`, en: `model file not found: ${p.path}` }, [{ kind: 'file', path: p.path, exists: false }]);
    const evidence: Evidence[] = [fileEvidence(f)];
    let s: GgufSummary;
    try {
      s = await readGgufBuffer(f.data, f.size);
    } catch (e) {
      // A file that is not GGUF is the candidate's; a header past our read limit is ours (error).
      if (isDeploylabError(e) && e.fault === 'candidate') {
        return failed({ zh: e.zh, en: e.message }, [...evidence, note(e.zh, e.message, { code: e.code })]);
      }
      throw e;
    }
    const consistency = checkGgufConsistency(s);
    evidence.push(headerNote(s, consistency.problems));
    const e = p.expect;
    const a: Assertion[] = [];
    if (e.architecture !== undefined) a.push({ id: 'architecture', ok: s.architecture === e.architecture, expected: e.architecture, actual: String(s.architecture) });
    if (e.fileType) a.push({ id: 'fileType', ok: e.fileType.includes(s.fileType?.name ?? ''), expected: e.fileType.join(' | '), actual: s.fileType?.name ?? '(absent)' });
    const bulk = bulkWeightType(s);
    if (e.bulkType) a.push({ id: 'bulkType', ok: bulk !== null && e.bulkType.includes(bulk), expected: e.bulkType.join(' | '), actual: String(bulk) });
    if (e.blockCount !== undefined) a.push({ id: 'blockCount', ok: s.blockCount === e.blockCount, expected: String(e.blockCount), actual: String(s.blockCount) });
    if (e.maxBlockCount !== undefined) {
      a.push({ id: 'maxBlockCount', ok: s.blockCount !== null && s.blockCount <= e.maxBlockCount, expected: `≤ ${e.maxBlockCount}`, actual: String(s.blockCount) });
    }
    if (e.consistent) a.push({ id: 'consistent', ok: consistency.consistent, expected: 'metadata agrees with tensors', actual: consistency.consistent ? 'yes' : consistency.problems.join('; ') });
    if (e.maxFileBytes !== undefined) a.push({ id: 'size', ok: f.size <= e.maxFileBytes, expected: `≤ ${e.maxFileBytes} bytes`, actual: `${f.size} bytes` });
    return judge(a, p.scoring, { zh: `模型文件 ${p.path}`, en: `model file ${p.path}` }, evidence);
  },
});
