/**
 * `finetune` probe: a fine-tuned TinyCharLM checkpoint judged by the grader's own reading. The
 * checkpoint, the seat's base model (the grader's root-only copy) and the grader's texts are
 * copied into the trusted toolbox (no network), where eval.py reads the weights with a restricted
 * unpickler (nothing in the candidate's file runs) and measures losses with the grader's own numpy
 * model. Three aspects, one per check: the weights are a fine-tune of this seat's base with the
 * asked layers frozen; the held-out loss fell well below the base's; the training log is this run's
 * (its settings, its epochs, and its final loss agreeing with the grader's measurement).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DeploylabError } from '../../runner/core/errors.js';
import { capability } from '../capabilities.js';
import { judge, show, type Assertion } from '../shared/assertions.js';
import { clip, defineProbe, EVIDENCE_LIMITS, failed, note, type Deadline, type Evidence, type ProbeOutcome, type SeatHandle } from '../probe.js';
import { FinetuneParamsSchema, type FinetuneParams } from './params.js';

const EVAL_PATH = fileURLToPath(new URL('./eval.py', import.meta.url));
let evalScript: string | undefined;
/** The grader's evaluation script, from this folder (never from the seat). */
export function evalSource(): string {
  evalScript ??= readFileSync(EVAL_PATH, 'utf8');
  return evalScript;
}

const Layout = z.record(z.string(), z.object({ shape: z.array(z.number().int()), dtype: z.string() }));
const Loss = z.object({ base: z.number().nullable(), candidate: z.number().nullable().optional() });
export const EvalOutputSchema = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    base: Layout,
    candidate: Layout,
    identical: z.record(z.string(), z.boolean()),
    maxAbsDiff: z.record(z.string(), z.number().nullable()),
    layoutMatches: z.boolean(),
    loss: z.record(z.string(), Loss),
  }),
  z.object({ ok: z.literal(false), reason: z.string(), grader: z.boolean().optional(), base: Layout.optional() }),
]);
export type EvalOutput = z.infer<typeof EvalOutputSchema>;

function evalFailed(message: { zh: string; en: string }, details: Record<string, unknown>): DeploylabError {
  return new DeploylabError({ code: 'FINETUNE_EVAL_FAILED', fault: 'infrastructure', message, details });
}

/** The task's own files are broken: its defect, never the candidate's. */
function graderFiles(message: { zh: string; en: string }, details: Record<string, unknown>): DeploylabError {
  return new DeploylabError({ code: 'FINETUNE_GRADER_FILES', fault: 'config', message, details });
}

/** The grader's own files (the base copy, its texts) must be in the seat: their absence is the task's defect, not the candidate's. */
async function requireGraderFile(seat: SeatHandle, path: string, container: string): Promise<void> {
  if ((await seat.readFile(path, { container, maxBytes: 1 })) === null) {
    throw graderFiles({ zh: `评分方自己的文件不在考位中：${path}`, en: `the grader's own file is not in the seat: ${path}` }, { path });
  }
}

/** Run eval.py in the toolbox on the checkpoint, the base and the named texts. */
async function evaluate(seat: SeatHandle, p: FinetuneParams, texts: Record<string, string>, deadline: Deadline): Promise<{ out: EvalOutput; evidence: Evidence[] }> {
  await requireGraderFile(seat, p.base, p.container);
  for (const t of Object.values(texts)) await requireGraderFile(seat, t, p.container);
  const copy = [
    { from: p.checkpoint, to: '/work/candidate.pt', container: p.container },
    { from: p.base, to: '/work/base.pt', container: p.container },
    ...Object.entries(texts).map(([name, from]) => ({ from, to: `/work/text-${name}.txt`, container: p.container })),
  ];
  const cfg = {
    vocab: p.model.vocab,
    context: p.model.context,
    checkpoint: '/work/candidate.pt',
    base: '/work/base.pt',
    texts: Object.fromEntries(Object.keys(texts).map((name) => [name, `/work/text-${name}.txt`])),
  };
  const cmd = ['python3', '-c', evalSource(), JSON.stringify(cfg)];
  const run = await capability(seat, 'toolbox')({ copy, cmd, timeoutMs: Math.max(1_000, Math.min(120_000, deadline.remainingMs() - 2_000)) });
  if (run.timedOut) deadline.check();
  const evidence: Evidence[] = [
    {
      kind: 'command',
      argv: ['python3', 'eval.py (the grader’s own)', JSON.stringify({ ...cfg, checkpoint: p.checkpoint, base: p.base, texts })],
      where: run.where,
      exitCode: run.exitCode,
      stdout: clip(run.stdout),
      stderr: clip(run.stderr.slice(-EVIDENCE_LIMITS.text)),
      durationMs: run.durationMs,
    },
  ];
  const last = run.stdout.trim().split('\n').at(-1) ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    parsed = undefined;
  }
  const out = EvalOutputSchema.safeParse(parsed);
  if (run.exitCode !== 0 || !out.success) {
    throw evalFailed(
      { zh: `评分方的模型评估没有给出结果（退出码 ${run.exitCode}）`, en: `the grader's model evaluation gave no reading (exit ${run.exitCode})` },
      { timedOut: run.timedOut, stderr: run.stderr.slice(-2000), stdout: run.stdout.slice(-500) },
    );
  }
  if (!out.data.ok && out.data.grader) {
    throw graderFiles({ zh: `评分方的基础模型不可用：${out.data.reason}`, en: `the grader's base model is unusable: ${out.data.reason}` }, { base: p.base });
  }
  return { out: out.data, evidence };
}

/** The checkpoint's format and layout, the first assertions of every aspect. */
export function formatAssertions(out: EvalOutput): Assertion[] {
  const as: Assertion[] = [{ id: 'format', ok: out.ok, expected: 'a torch.save file of a plain state_dict (tensors only)', actual: out.ok ? 'yes' : out.reason }];
  if (out.ok) {
    const diff = [
      ...Object.keys(out.base).filter((k) => !(k in out.candidate)).map((k) => `missing ${k}`),
      ...Object.keys(out.candidate).filter((k) => !(k in out.base)).map((k) => `extra ${k}`),
      ...Object.keys(out.base)
        .filter((k) => k in out.candidate && JSON.stringify(out.base[k]) !== JSON.stringify(out.candidate[k]))
        .map((k) => `${k}: ${show(out.candidate[k])} (base ${show(out.base[k])})`),
    ];
    as.push({ id: 'layout', ok: out.layoutMatches && diff.length === 0, expected: "the base model's tensor names, shapes and types", actual: diff.length === 0 ? 'same' : diff.slice(0, 4).join('; ') });
  }
  return as;
}

/** The candidate's loss on a text at most `maxRatio` × the base model's, both measured in this run. */
function lossRatio(out: EvalOutput & { ok: true }, text: string, maxRatio: number, what: string): Assertion {
  const l = out.loss[text];
  const ratio = l && l.base !== null && l.candidate != null && l.base > 0 ? l.candidate / l.base : null;
  return {
    id: `${text}-loss`,
    ok: ratio !== null && ratio <= maxRatio,
    expected: `${what} loss ≤ ${maxRatio} × the base model's`,
    actual: l ? `${l.candidate ?? 'not finite'} vs base ${l.base ?? 'not finite'}${ratio !== null ? ` (× ${ratio.toFixed(3)})` : ''}` : 'not measured',
  };
}

/** Frozen layers' tensors bit-identical to the base, every other tensor changed, and the training corpus learnt. */
export function weightsAssertions(out: EvalOutput, frozen: readonly string[], maxRatio: number): Assertion[] {
  const as = formatAssertions(out);
  if (!out.ok || !as.every((a) => a.ok)) return as;
  const isFrozen = (k: string): boolean => frozen.includes(k.split('.')[0]!);
  for (const k of Object.keys(out.base)) {
    const same = out.identical[k] === true;
    if (isFrozen(k)) as.push({ id: `frozen:${k}`, ok: same, expected: 'bit-identical to the base model', actual: same ? 'identical' : `changed (max |Δ| ${out.maxAbsDiff[k] ?? 'n/a'})` });
    else as.push({ id: `trained:${k}`, ok: !same, expected: 'changed by training', actual: same ? 'identical to the base model' : `changed (max |Δ| ${out.maxAbsDiff[k] ?? 'n/a'})` });
  }
  as.push(lossRatio(out, 'train', maxRatio, 'training-corpus'));
  return as;
}

export function heldoutAssertions(out: EvalOutput, maxRatio: number): Assertion[] {
  const as = formatAssertions(out);
  if (!out.ok || !as.every((a) => a.ok)) return as;
  as.push(lossRatio(out, 'heldout', maxRatio, 'held-out'));
  return as;
}

// ---------------------------------------------------------------------------------------------
// The training log

const num = z.number().finite();
const StartSchema = z.object({ event: z.literal('start'), data: z.string(), epochs: z.number().int(), lr: num, freeze: z.array(z.string()) });
const EpochSchema = z.object({ event: z.literal('epoch'), epoch: z.number().int(), train_loss: num });
const EndSchema = z.object({ event: z.literal('end'), final_train_loss: num });

export interface TrainingLog {
  start: z.infer<typeof StartSchema>[];
  epochs: z.infer<typeof EpochSchema>[];
  end: z.infer<typeof EndSchema>[];
  /** Lines that are not one of the three events, well formed (1-based line numbers). */
  bad: number[];
  /** The end event is the last line. */
  endsLast: boolean;
}

export function parseTrainingLog(text: string): TrainingLog {
  const log: TrainingLog = { start: [], epochs: [], end: [], bad: [], endsLast: false };
  const lines = text.split('\n');
  let lastKind = '';
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      log.bad.push(i + 1);
      lastKind = 'bad';
      return;
    }
    const ev = (v as { event?: unknown } | null)?.event;
    const schema = ev === 'start' ? StartSchema : ev === 'epoch' ? EpochSchema : ev === 'end' ? EndSchema : null;
    const r = schema?.safeParse(v);
    if (!r?.success) {
      log.bad.push(i + 1);
      lastKind = 'bad';
      return;
    }
    if (r.data.event === 'start') log.start.push(r.data as z.infer<typeof StartSchema>);
    else if (r.data.event === 'epoch') log.epochs.push(r.data as z.infer<typeof EpochSchema>);
    else log.end.push(r.data as z.infer<typeof EndSchema>);
    lastKind = r.data.event;
  });
  log.endsLast = lastKind === 'end';
  return log;
}

export function logAssertions(log: TrainingLog, spec: NonNullable<FinetuneParams['log']>, measured: number | null): Assertion[] {
  const as: Assertion[] = [];
  as.push({ id: 'well-formed', ok: log.bad.length === 0, expected: 'every line a start, epoch or end record', actual: log.bad.length === 0 ? 'yes' : `bad line(s) ${log.bad.slice(0, 5).join(', ')}` });
  const start = log.start.length === 1 ? log.start[0] : undefined;
  as.push({ id: 'start', ok: !!start, expected: 'one start record', actual: `${log.start.length}` });
  if (start) {
    const inRange = (v: number, r: { min: number; max: number }): boolean => v >= r.min && v <= r.max;
    as.push({ id: 'data', ok: start.data === spec.dataFile, expected: spec.dataFile, actual: start.data });
    as.push({ id: 'epochs', ok: inRange(start.epochs, spec.epochs), expected: `${spec.epochs.min}..${spec.epochs.max}`, actual: String(start.epochs) });
    as.push({ id: 'lr', ok: inRange(start.lr, spec.lr), expected: `${spec.lr.min}..${spec.lr.max}`, actual: String(start.lr) });
    const want = [...new Set(spec.freeze)].sort().join(',');
    const got = [...new Set(start.freeze)].sort().join(',');
    as.push({ id: 'freeze', ok: got === want && start.freeze.length === spec.freeze.length, expected: want, actual: start.freeze.join(',') || '(none)' });
    const numbered = log.epochs.map((e) => e.epoch);
    const inOrder = numbered.length === start.epochs && numbered.every((n, i) => n === i + 1);
    as.push({ id: 'epoch-records', ok: inOrder, expected: `epochs 1..${start.epochs}, one record each, in order`, actual: numbered.join(',') || '(none)' });
  }
  const end = log.end.length === 1 ? log.end[0] : undefined;
  as.push({ id: 'end', ok: !!end && log.endsLast, expected: 'one end record, the last line', actual: `${log.end.length}${log.end.length > 0 && !log.endsLast ? ', not last' : ''}` });
  if (end) {
    const tol = measured === null ? 0 : Math.max(spec.tolerance.absolute, spec.tolerance.relative * Math.abs(measured));
    as.push({
      id: 'final-loss',
      ok: measured !== null && Math.abs(end.final_train_loss - measured) <= tol,
      expected: measured === null ? "the grader's loss of the checkpoint on the training corpus (not measurable)" : `the grader's loss of the checkpoint on the training corpus, ${measured.toFixed(6)} ± ${tol.toFixed(4)}`,
      actual: String(end.final_train_loss),
    });
  }
  return as;
}

// ---------------------------------------------------------------------------------------------

async function checkpointPresent(seat: SeatHandle, p: FinetuneParams): Promise<ProbeOutcome | null> {
  const f = await seat.readFile(p.checkpoint, { container: p.container, maxBytes: 1 });
  if (f) return null;
  return failed({ zh: `没有微调后的权重文件：${p.checkpoint}`, en: `no fine-tuned weights file: ${p.checkpoint}` }, [{ kind: 'file', path: p.checkpoint, exists: false }]);
}

export const finetuneProbe = defineProbe({
  kind: 'finetune',
  params: FinetuneParamsSchema,
  async run(seat: SeatHandle, p: FinetuneParams, deadline: Deadline): Promise<ProbeOutcome> {
    const missing = await checkpointPresent(seat, p);
    if (missing) return missing;
    if (p.weights) {
      const { out, evidence } = await evaluate(seat, p, { train: p.weights.data }, deadline);
      if (out.ok) evidence.push(note('评分方在训练语料上测得的损失', 'losses the grader measured on its copy of the training corpus', { loss: out.loss['train'] }));
      return judge(weightsAssertions(out, p.weights.frozen, p.weights.maxRatio), 'all', { zh: `微调权重 ${p.checkpoint}`, en: `fine-tuned weights ${p.checkpoint}` }, evidence);
    }
    if (p.heldout) {
      const { out, evidence } = await evaluate(seat, p, { heldout: p.heldout.data }, deadline);
      if (out.ok) evidence.push(note('评分方在留出数据上测得的损失', "losses the grader measured on its held-out text", { loss: out.loss['heldout'] }));
      return judge(heldoutAssertions(out, p.heldout.maxRatio), 'all', { zh: '留出数据上的效果', en: 'effect on held-out data' }, evidence);
    }
    const spec = p.log!;
    const f = await seat.readFile(spec.path, { container: p.container, maxBytes: spec.maxBytes });
    if (!f) return failed({ zh: `没有训练日志：${spec.path}`, en: `no training log: ${spec.path}` }, [{ kind: 'file', path: spec.path, exists: false }]);
    if (f.truncated) return failed({ zh: `训练日志超过 ${spec.maxBytes} 字节`, en: `the training log is over ${spec.maxBytes} bytes` }, [{ kind: 'file', path: spec.path, exists: true, size: f.size }]);
    const log = parseTrainingLog(f.data.toString('utf8'));
    const { out, evidence } = await evaluate(seat, p, { train: spec.data }, deadline);
    const fmt = formatAssertions(out);
    const measured = out.ok && fmt.every((a) => a.ok) ? (out.loss['train']?.candidate ?? null) : null;
    evidence.push(note('考生的训练日志（解析后）', "the candidate's training log, parsed", { start: log.start, epochs: log.epochs.slice(0, 50), end: log.end, badLines: log.bad.slice(0, 20), measuredTrainLoss: measured }));
    return judge([...fmt, ...logAssertions(log, spec, measured)], 'all', { zh: `训练日志 ${spec.path}`, en: `training log ${spec.path}` }, evidence);
  },
});
