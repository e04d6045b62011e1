/**
 * `gguf` probe: a model file in the seat, read through the archive API (its header only, from a
 * prefix of the file) and judged on what the tensors are, never on the file name: the declared
 * file type, the share of weights in the expected types, forbidden types, size against the
 * source, and metadata/tensor consistency (always checked: a header that disagrees with its
 * tensors is not a correct model).
 */
import type { z } from 'zod';
import { DeploylabError, isDeploylabError } from '../../runner/core/errors.js';
import { GgufParamsSchema } from './params.js';
import { judge, type Assertion } from '../shared/assertions.js';
import { capability } from '../capabilities.js';
import {
  bulkWeightType,
  checkGgufConsistency,
  LLAMA_FTYPES,
  readGgufBuffer,
  tensorDifferences,
  tensorDigests,
  weightShare,
  type GgufSummary,
  type TensorDigest,
} from '../parsers/gguf.js';
import { clip, defineProbe, EVIDENCE_LIMITS, failed, note, type Deadline, type Evidence, type SeatFile, type SeatHandle } from '../probe.js';

export type GgufParams = z.output<typeof GgufParamsSchema>;

/** Bytes read from the start of the file: headers with 150k-token vocabularies stay well under. */
export const GGUF_READ_BYTES = 64 * 1024 * 1024;

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

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

type ReferenceRecipe = NonNullable<GgufParams['expect']['sameTensorsAs']>;
export interface ReferenceModel {
  digests: TensorDigest[];
  size: number;
  /** The toolbox run that built it, for the evidence. */
  built: Evidence;
}

const shellQuote = (a: string): string => `'${a.replaceAll("'", `'\\''`)}'`;

// One build per recipe per process: every seat of a room is compared with the same file.
const references = new Map<string, Promise<ReferenceModel>>();

/** The grader's own model file for `recipe`, built in the toolbox from the toolbox's own models. */
export function referenceModel(seat: SeatHandle, recipe: ReferenceRecipe, deadline: Deadline): Promise<ReferenceModel> {
  const key = JSON.stringify(recipe);
  let ref = references.get(key);
  if (!ref) {
    ref = buildReference(seat, recipe, deadline);
    references.set(key, ref);
    ref.catch(() => references.delete(key));
  }
  return ref;
}

async function buildReference(seat: SeatHandle, recipe: ReferenceRecipe, deadline: Deadline): Promise<ReferenceModel> {
  const script = ['set -e', ...recipe.build.map((argv) => argv.map(shellQuote).join(' '))].join('\n');
  const run = await capability(seat, 'toolbox')({ copy: [], cmd: ['sh', '-c', script], collect: [recipe.output], timeoutMs: Math.max(1_000, deadline.remainingMs() - 2_000) });
  if (run.timedOut) deadline.check();
  const built: Evidence = {
    kind: 'command',
    argv: ['sh', '-c', script],
    where: run.where,
    exitCode: run.exitCode,
    stdout: clip(run.stdout.slice(-EVIDENCE_LIMITS.text)),
    stderr: clip(run.stderr.slice(-EVIDENCE_LIMITS.text)),
    durationMs: run.durationMs,
  };
  const data = run.files?.[recipe.output];
  if (run.exitCode !== 0 || !data) {
    throw new DeploylabError({
      code: 'PROBE_REFERENCE_FAILED',
      fault: 'config',
      message: {
        zh: `评分方的参考模型未能在工具箱中生成（退出码 ${run.exitCode}）：检查题目中的 sameTensorsAs.build`,
        en: `the grader's reference model could not be built in the toolbox (exit ${run.exitCode}): check the task's sameTensorsAs.build`,
      },
      details: { script, stderr: run.stderr.slice(-2_000) },
    });
  }
  return { digests: tensorDigests(data, await readGgufBuffer(data)), size: data.length, built };
}

export const ggufProbe = defineProbe({
  kind: 'gguf',
  params: GgufParamsSchema,
  async run(seat, p, deadline) {
    const e = p.expect;
    // Loading the model or building the reference needs the trusted toolbox (the kind's `needs`,
    // checked before the probe runs): without one the harness cannot judge.
    deadline.check();
    const f = await seat.readFile(p.path, { container: p.container, maxBytes: GGUF_READ_BYTES });
    if (!f) return failed({ zh: `模型文件不存在：${p.path}`, en: `model file not found: ${p.path}` }, [{ kind: 'file', path: p.path, exists: false }]);
    const evidence: Evidence[] = [fileEvidence(f)];
    let s: GgufSummary;
    try {
      s = await readGgufBuffer(f.data, f.size);
    } catch (err) {
      // Not GGUF is the candidate's; a header past our read limit is ours (error, re-gradable).
      if (isDeploylabError(err) && err.fault === 'candidate') {
        return failed({ zh: err.zh, en: err.message }, [...evidence, note(err.zh, err.message, { code: err.code })]);
      }
      throw err;
    }
    const consistency = checkGgufConsistency(s);
    evidence.push(headerNote(s, consistency.problems));

    const a: Assertion[] = [];
    if (e.fileType !== undefined) {
      const want = `${e.fileType} (${LLAMA_FTYPES[e.fileType] ?? '?'})`;
      const got = s.fileType ? `${s.fileType.id} (${s.fileType.name})` : '(absent)';
      a.push({ id: 'fileType', ok: s.fileType?.id === e.fileType, expected: want, actual: got });
    }
    if (e.blockCount !== undefined) a.push({ id: 'blockCount', ok: s.blockCount === e.blockCount, expected: String(e.blockCount), actual: String(s.blockCount ?? '(absent)') });
    if (e.architecture !== undefined) a.push({ id: 'architecture', ok: s.architecture === e.architecture, expected: e.architecture, actual: String(s.architecture) });
    if (e.tensorTypes) {
      const share = weightShare(s, e.tensorTypes.majority);
      a.push({
        id: 'tensorTypes',
        ok: share >= e.tensorTypes.minShare,
        expected: `≥ ${pct(e.tensorTypes.minShare)} of weights in ${e.tensorTypes.majority.join('/')}`,
        actual: pct(share),
      });
      for (const t of e.tensorTypes.forbid ?? []) {
        const n = s.tensors.filter((x) => x.shape.length >= 2 && x.type === t).length;
        a.push({ id: `forbid:${t}`, ok: n === 0, expected: `no ${t} weights`, actual: `${n} tensor(s)` });
      }
    }
    if (e.sizeRatio) {
      const src = await seat.readFile(e.sizeRatio.source, { container: p.container, maxBytes: 1 });
      const ratio = src && src.size > 0 ? f.size / src.size : null;
      const bounds = [e.sizeRatio.min !== undefined ? `≥ ${e.sizeRatio.min}` : '', e.sizeRatio.max !== undefined ? `≤ ${e.sizeRatio.max}` : ''].filter(Boolean).join(', ');
      const ok = ratio !== null && (e.sizeRatio.min === undefined || ratio >= e.sizeRatio.min) && (e.sizeRatio.max === undefined || ratio <= e.sizeRatio.max);
      a.push({ id: 'sizeRatio', ok, expected: bounds, actual: ratio === null ? `source ${e.sizeRatio.source} missing or empty` : ratio.toFixed(3) });
    }
    if (e.sameTensorsAs) {
      const ref = await referenceModel(seat, e.sameTensorsAs, deadline);
      evidence.push(ref.built);
      let diff: string[];
      if (f.truncated) {
        // Past the read limit: the tensor table still tells a different file; the same table cannot be judged.
        const table = s.tensors.map((t) => ({ name: t.name, type: t.type, shape: t.shape, sha256: '' }));
        diff = tensorDifferences(table, ref.digests.map((t) => ({ ...t, sha256: '' })));
        if (diff.length === 0) {
          throw new DeploylabError({
            code: 'GGUF_TOO_LARGE_TO_COMPARE',
            fault: 'infrastructure',
            message: { zh: `模型文件超过读取上限，无法逐张量比对：${p.path}`, en: `the model file is past the read limit, its tensors cannot be compared: ${p.path}` },
            details: { size: f.size, readBytes: GGUF_READ_BYTES },
          });
        }
      } else {
        diff = tensorDifferences(tensorDigests(f.data, s), ref.digests);
      }
      evidence.push(note('与评分方参考模型逐张量比对', "Tensor by tensor against the grader's reference model", {
        referenceTensors: ref.digests.length,
        referenceBytes: ref.size,
        differences: diff.slice(0, 20),
        differenceCount: diff.length,
      }));
      a.push({
        id: 'sameTensorsAs',
        ok: diff.length === 0,
        expected: `the ${ref.digests.length} tensors of the grader's own ${e.sameTensorsAs.build.at(-1)!.at(-1)} build`,
        actual: diff.length === 0 ? 'identical' : `${diff.length} difference(s): ${diff.slice(0, 3).join('; ')}`,
      });
    }
    if (e.loads && consistency.consistent) {
      // llama-bench loads the copy in the toolbox and decodes N tokens: it fails on a file llama.cpp cannot load.
      const run = await capability(seat, 'toolbox')({
        copy: [{ from: p.path, to: '/work/model.gguf', container: p.container }],
        cmd: ['llama-bench', '-m', '/work/model.gguf', '-p', '0', '-n', String(e.loads.generateTokens), '-r', '1', '-t', '1', '-o', 'json'],
        timeoutMs: Math.max(1_000, deadline.remainingMs() - 2_000),
      });
      if (run.timedOut) deadline.check();
      evidence.push({
        kind: 'command',
        argv: ['llama-bench', '-m', p.path, '-p', '0', '-n', String(e.loads.generateTokens), '-r', '1', '-t', '1', '-o', 'json'],
        where: run.where,
        exitCode: run.exitCode,
        stdout: clip(run.stdout),
        stderr: clip(run.stderr.slice(-EVIDENCE_LIMITS.text)),
        durationMs: run.durationMs,
      });
      const generated = run.exitCode === 0 && /"n_gen":\s*(\d+)/.exec(run.stdout)?.[1] === String(e.loads.generateTokens);
      a.push({
        id: 'loads',
        ok: generated,
        expected: `loads in llama.cpp and generates ${e.loads.generateTokens} tokens`,
        actual: run.timedOut ? 'timed out' : generated ? 'yes' : `exit ${run.exitCode}`,
      });
    }
    a.push({ id: 'consistent', ok: consistency.consistent, expected: 'metadata agrees with tensors', actual: consistency.consistent ? 'yes' : consistency.problems.join('; ') });
    return judge(a, 'all', { zh: `模型文件 ${p.path}`, en: `model file ${p.path}` }, evidence);
  },
});
