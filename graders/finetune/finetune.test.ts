import { execFileSync, spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { Deadline, runProbe, type SeatHandle, type TrustedRun } from '../probe.js';
import { evalSource, finetuneProbe, heldoutAssertions, logAssertions, parseTrainingLog, weightsAssertions, type EvalOutput } from './finetune.js';
import { FinetuneParamsSchema } from './params.js';

const VOCAB = ' abc.\n';
const MODEL = { vocab: VOCAB, context: 3 };
const common = { kind: 'finetune', checkpoint: '/workspace/finetune/model.pt', base: '/opt/private/base.pt', model: MODEL } as const;
const LOG_SPEC = FinetuneParamsSchema.parse({
  ...common,
  log: { path: '/workspace/finetune/train-log.jsonl', data: '/opt/private/train.txt', dataFile: '/workspace/data/train.txt', epochs: { min: 3, max: 6 }, lr: { min: 0.001, max: 0.005 }, freeze: ['embed', 'fc1'] },
}).log!;

const layout = { 'embed.weight': { shape: [6, 2], dtype: 'float32' }, 'fc1.weight': { shape: [4, 6], dtype: 'float32' }, 'fc1.bias': { shape: [4], dtype: 'float32' }, 'head.weight': { shape: [6, 4], dtype: 'float32' } };
type Losses = Extract<EvalOutput, { ok: true }>['loss'];
function reading(identical: Record<string, boolean>, candidate = layout, loss: Losses = {}): EvalOutput {
  return { ok: true, base: layout, candidate, identical, maxAbsDiff: {}, layoutMatches: JSON.stringify(candidate) === JSON.stringify(layout), loss };
}

describe('weights', () => {
  const learnt = { train: { base: 7, candidate: 0.3 } };
  const ok = (o: EvalOutput) => weightsAssertions(o, ['embed', 'fc1'], 0.2).every((a) => a.ok);
  it('passes frozen layers identical, the others changed, and the training corpus learnt', () => {
    expect(ok(reading({ 'embed.weight': true, 'fc1.weight': true, 'fc1.bias': true, 'head.weight': false }, layout, learnt))).toBe(true);
  });
  it('fails weights changed without learning the corpus (noise, a hand-set output layer)', () => {
    expect(ok(reading({ 'embed.weight': true, 'fc1.weight': true, 'fc1.bias': true, 'head.weight': false }, layout, { train: { base: 7, candidate: 3 } }))).toBe(false);
    expect(ok(reading({ 'embed.weight': true, 'fc1.weight': true, 'fc1.bias': true, 'head.weight': false }))).toBe(false);
  });
  it('fails an unchanged copy, a changed frozen layer, another layout and a refused file', () => {
    expect(ok(reading({ 'embed.weight': true, 'fc1.weight': true, 'fc1.bias': true, 'head.weight': true }, layout, learnt))).toBe(false);
    expect(ok(reading({ 'embed.weight': true, 'fc1.weight': false, 'fc1.bias': true, 'head.weight': false }, layout, learnt))).toBe(false);
    const renamed = { ...layout, 'model.step': { shape: [1], dtype: 'float32' } };
    expect(ok(reading({ 'embed.weight': true, 'fc1.weight': true, 'fc1.bias': true, 'head.weight': false, 'model.step': false }, renamed))).toBe(false);
    expect(ok({ ok: false, reason: 'refused global posix.system' })).toBe(false);
  });
});

describe('heldout', () => {
  const ok = (base: number | null, candidate: number | null) => heldoutAssertions(reading({}, layout, { heldout: { base, candidate } }), 0.2).every((a) => a.ok);
  it('needs the loss at most maxRatio of the base', () => {
    expect(ok(7, 0.3)).toBe(true);
    expect(ok(7, 1.5)).toBe(false);
    expect(ok(7, null)).toBe(false);
  });
});

describe('training log', () => {
  const lines = (over: { start?: object; epochs?: number[]; end?: object; extra?: string } = {}) =>
    [
      JSON.stringify({ event: 'start', data: '/workspace/data/train.txt', epochs: 3, lr: 0.003, freeze: ['embed', 'fc1'], batch_size: 64, ...over.start }),
      ...(over.epochs ?? [1, 2, 3]).map((n) => JSON.stringify({ event: 'epoch', epoch: n, train_loss: 1 / n })),
      ...(over.extra ? [over.extra] : []),
      JSON.stringify({ event: 'end', final_train_loss: 0.2654, ...over.end }),
      '',
    ].join('\n');
  const ok = (text: string, measured: number | null = 0.26541) => logAssertions(parseTrainingLog(text), LOG_SPEC, measured).filter((a) => !a.ok).map((a) => a.id);

  it('passes the log of the run whose weights the grader measured', () => {
    expect(ok(lines())).toEqual([]);
    expect(ok(lines({ start: { freeze: ['fc1', 'embed'] } }))).toEqual([]);
  });
  it('fails invented figures, settings not asked for and missing or extra records', () => {
    expect(ok(lines(), 0.31)).toEqual(['final-loss']);
    expect(ok(lines(), null)).toEqual(['final-loss']);
    expect(ok(lines({ start: { epochs: 2 }, epochs: [1, 2] }))).toEqual(['epochs']);
    expect(ok(lines({ start: { lr: 0.01 } }))).toEqual(['lr']);
    expect(ok(lines({ start: { freeze: ['embed'] } }))).toEqual(['freeze']);
    expect(ok(lines({ start: { data: '/opt/exam/finetune/generic.txt' } }))).toEqual(['data']);
    expect(ok(lines({ epochs: [1, 3] }))).toEqual(['epoch-records']);
    expect(ok(lines({ extra: 'loss went down' }))).toEqual(['well-formed']);
    expect(ok(lines() + JSON.stringify({ event: 'epoch', epoch: 4, train_loss: 0.2 }))).toEqual(['epoch-records', 'end']);
    expect(ok(lines({ end: { final_train_loss: 'NaN' } }))).toEqual(['well-formed', 'end']);
  });
});

// ---------------------------------------------------------------------------------------------
// The grader's eval.py on files laid out as torch.save writes them, with the toolbox played by the
// host's python3 (numpy needed; skipped without it).

const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

/** Writes torch.save-format zips without torch: the same pickle (protocol 2, persistent storages, _rebuild_tensor_v2). */
const FIXTURES = String.raw`
import collections, io, json, os, pickle, sys, types, zipfile
import numpy as np
out = sys.argv[1]
tu = types.ModuleType("torch._utils"); tt = types.ModuleType("torch")
def _rebuild_tensor_v2(*a): raise RuntimeError
_rebuild_tensor_v2.__module__ = "torch._utils"; tu._rebuild_tensor_v2 = _rebuild_tensor_v2
class FloatStorage: pass
FloatStorage.__module__ = "torch"; tt.FloatStorage = FloatStorage; tt._utils = tu
sys.modules["torch"] = tt; sys.modules["torch._utils"] = tu
class Stor:
    def __init__(s, key, arr): s.key, s.arr = key, arr
class Tensor:
    def __init__(s, stor, shape): s.stor, s.shape = stor, shape
    def __reduce__(s):
        strides = tuple(int(np.prod(s.shape[i + 1:])) for i in range(len(s.shape)))
        return (_rebuild_tensor_v2, (s.stor, 0, tuple(s.shape), strides, False, collections.OrderedDict()))
class P(pickle.Pickler):
    def persistent_id(s, o):
        return ("storage", FloatStorage, o.key, "cpu", int(o.arr.size)) if isinstance(o, Stor) else None
def save(path, obj):
    stors = []
    def conv(v):
        if isinstance(v, np.ndarray):
            st = Stor(str(len(stors)), np.ascontiguousarray(v, dtype=np.float32)); stors.append(st); return Tensor(st, v.shape)
        if isinstance(v, dict): return collections.OrderedDict((k, conv(x)) for k, x in v.items())
        return v
    buf = io.BytesIO(); P(buf, protocol=2).dump(conv(obj))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for st in stors: z.writestr("archive/data/" + st.key, st.arr.tobytes())
        z.writestr("archive/version", "3\n")
rng = np.random.default_rng(1)
V, E, C, H = 6, 2, 3, 4
shapes = {"embed.weight": (V, E), "fc1.weight": (H, C * E), "fc1.bias": (H,), "fc2.weight": (H, H), "fc2.bias": (H,), "head.weight": (V, H), "head.bias": (V,)}
base = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
text = open(out + "/train.txt").read(); stoi = {c: i for i, c in enumerate(sys.argv[2])}
ids = [stoi[c] for c in text]
# "Trained": fc2 moved, the output layer set to the corpus's character frequencies (a lower loss).
freq = np.bincount(ids[C:], minlength=V) + 0.5
good = dict(base, **{"fc2.weight": base["fc2.weight"] + 0.1, "fc2.bias": base["fc2.bias"] - 0.1, "head.weight": base["head.weight"] * 0.01, "head.bias": np.log(freq / freq.sum()).astype(np.float32)})
save(out + "/base.pt", base); save(out + "/good.pt", good); save(out + "/copy.pt", base)
save(out + "/nested.pt", {"model": good})
class Payload:
    def __reduce__(self): return (os.system, ("touch " + out + "/PWNED",))
save(out + "/payload.pt", Payload())
with open(out + "/legacy.pt", "wb") as f: pickle.dump({"embed.weight": [1.0]}, f)
# The loss, computed independently here (one character at a time) for the log of "good".
def loss(sd):
    w = {k: v.astype(np.float64) for k, v in sd.items()}
    tot = 0.0
    for i in range(C, len(ids)):
        h = np.concatenate([w["embed.weight"][j] for j in ids[i - C:i]])
        h = np.tanh(w["fc1.weight"] @ h + w["fc1.bias"]); h = np.tanh(w["fc2.weight"] @ h + w["fc2.bias"])
        z = w["head.weight"] @ h + w["head.bias"]; m = z.max()
        tot += m + np.log(np.exp(z - m).sum()) - z[ids[i]]
    return tot / (len(ids) - C)
print(json.dumps({"goodTrainLoss": loss(good), "baseTrainLoss": loss(base)}))
`;

/** The toolbox, played on the host: copies the seat files into a folder of its own and runs the command there. */
function hostToolbox(seat: TempSeat): NonNullable<SeatHandle['runTrusted']> {
  return async ({ copy, cmd }): Promise<TrustedRun> => {
    const box = await mkdtemp(join(tmpdir(), 'deploylab-toolbox-'));
    try {
      for (const c of copy) {
        const from = join(seat.root, c.from);
        if (!(await stat(from).catch(() => null))) throw new Error(`missing ${c.from}`);
        await mkdir(dirname(join(box, c.to)), { recursive: true });
        await cp(from, join(box, c.to));
      }
      const args = cmd.slice(1).map((a) => a.replaceAll('"/work/', `"${box}/work/`));
      const r = spawnSync(cmd[0]!, args, { encoding: 'utf8', timeout: 30_000 });
      return { exitCode: r.status, stdout: r.stdout, stderr: r.stderr, timedOut: false, durationMs: 1, where: 'host python3 (test)' };
    } finally {
      await rm(box, { recursive: true, force: true });
    }
  };
}

describe.skipIf(!hasNumpy)('the probe with the grader’s eval.py', () => {
  let seat: TempSeat;
  let fixtures: string;
  let goodTrainLoss: number;
  /** good's training loss over base's: the fixtures' "training" took effect. */
  let ratio: number;
  const put = async (path: string, data: string | Buffer): Promise<void> => {
    await mkdir(dirname(join(seat.root, path)), { recursive: true });
    await writeFile(join(seat.root, path), data);
  };
  const run = (extra: object) => runProbe(finetuneProbe, seat, { ...common, ...extra }, Deadline.after(30_000));

  beforeAll(async () => {
    seat = await tempSeat();
    Object.assign(seat, { runTrusted: hostToolbox(seat) });
    fixtures = await mkdtemp(join(tmpdir(), 'deploylab-ft-'));
    const text = 'abc cab. bca ab.\nca cb a.\n'.repeat(8);
    await writeFile(join(fixtures, 'train.txt'), text);
    const losses = JSON.parse(execFileSync('python3', ['-c', FIXTURES, fixtures, VOCAB], { encoding: 'utf8' })) as { goodTrainLoss: number; baseTrainLoss: number };
    goodTrainLoss = losses.goodTrainLoss;
    ratio = goodTrainLoss / losses.baseTrainLoss;
    await put('/opt/private/base.pt', await readFile(join(fixtures, 'base.pt')));
    await put('/opt/private/train.txt', text);
    await put('/opt/private/heldout.txt', text.slice(0, 60));
  });
  afterAll(async () => {
    await seat.cleanup();
    await rm(fixtures, { recursive: true, force: true });
  });
  const use = async (name: string) => put('/workspace/finetune/model.pt', await readFile(join(fixtures, name)));
  const weights = { weights: { frozen: ['embed', 'fc1'], data: '/opt/private/train.txt', maxRatio: 0.9 } };

  it('reads a plain state_dict and tells frozen from trained tensors', async () => {
    expect(ratio).toBeLessThan(0.9);
    await use('good.pt');
    expect((await run(weights)).status).toBe('pass');
    expect((await run({ weights: { ...weights.weights, maxRatio: ratio * 0.99 } })).status).toBe('fail');
    expect((await run({ weights: { ...weights.weights, maxRatio: ratio * 1.01 } })).status).toBe('pass');
    await use('copy.pt');
    expect((await run(weights)).status).toBe('fail');
  });

  it('never runs a pickle payload, and refuses nested or legacy files', async () => {
    for (const f of ['payload.pt', 'nested.pt', 'legacy.pt']) {
      await use(f);
      const o = await run(weights);
      expect(o.status, f).toBe('fail');
      expect(JSON.stringify(o.evidence), f).toContain(f === 'payload.pt' ? 'refused global posix.system' : f === 'nested.pt' ? 'not a flat mapping' : 'not a torch.save zip');
    }
    expect(await stat(join(fixtures, 'PWNED')).catch(() => null)).toBeNull();
    // The payload is live: an ordinary unpickler runs it.
    execFileSync('python3', ['-c', 'import pickle, sys, zipfile; pickle.loads(zipfile.ZipFile(sys.argv[1]).read("archive/data.pkl"))', join(fixtures, 'payload.pt')]);
    expect(await stat(join(fixtures, 'PWNED')).catch(() => null)).not.toBeNull();
  });

  it('measures the training loss as an independent computation does, and judges the log by it', async () => {
    await use('good.pt');
    const log = (loss: number) =>
      [
        { event: 'start', data: '/workspace/data/train.txt', epochs: 3, lr: 0.002, freeze: ['embed', 'fc1'] },
        ...[1, 2, 3].map((epoch) => ({ event: 'epoch', epoch, train_loss: 1 })),
        { event: 'end', final_train_loss: loss },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n');
    const spec = { log: { ...LOG_SPEC, path: '/workspace/finetune/train-log.jsonl' } };
    await put('/workspace/finetune/train-log.jsonl', log(goodTrainLoss));
    expect((await run(spec)).status).toBe('pass');
    await put('/workspace/finetune/train-log.jsonl', log(goodTrainLoss * 0.9));
    expect((await run(spec)).status).toBe('fail');
  });

  it('judges held-out loss against the base in the same run', async () => {
    await use('good.pt');
    const o = await run({ heldout: { data: '/opt/private/heldout.txt', maxRatio: 0.2 } });
    // Character frequencies are not a fifth of the base's loss.
    expect(o.status).toBe('fail');
    expect(JSON.stringify(o.evidence)).toContain('heldout-loss');
    expect((await run({ heldout: { data: '/opt/private/heldout.txt', maxRatio: 0.95 } })).status).toBe('pass');
  });

  it('is an error, not a fail, when the grader’s own files are missing or its evaluation breaks', async () => {
    await use('good.pt');
    const o = await run({ ...weights, base: '/opt/private/missing.pt' });
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('FINETUNE_GRADER_FILES');
    const broken = { ...seat, runTrusted: async (): Promise<TrustedRun> => ({ exitCode: 1, stdout: '', stderr: 'Traceback', timedOut: false, durationMs: 1, where: 'x' }) };
    const o2 = await runProbe(finetuneProbe, broken, { ...common, ...weights }, Deadline.after(30_000));
    expect(o2.status).toBe('error');
    expect(o2.error?.code).toBe('FINETUNE_EVAL_FAILED');
  });

  it('fails, without running anything, when there is no checkpoint', async () => {
    await rm(join(seat.root, '/workspace/finetune/model.pt'));
    const o = await run(weights);
    expect(o.status).toBe('fail');
  });
});

describe('eval.py', () => {
  it('is read from the grader’s own folder', () => {
    expect(evalSource()).toContain('class Restricted(pickle.Unpickler)');
  });
});
