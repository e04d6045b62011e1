import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DeploylabError } from '../runner/core/errors.js';
import { tempSeat, type TempSeat } from './__helpers__/temp-seat.js';
import {
  clip,
  Deadline,
  defineProbe,
  EVIDENCE_LIMITS,
  graded,
  note,
  probeOutcomeSchema,
  runProbe,
  type ProbeOutcome,
} from './probe.js';

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
});
afterEach(async () => {
  await seat.cleanup();
});

/** A probe whose behaviour the test chooses, to exercise the wrapper's classification. */
const scripted = defineProbe({
  kind: 'scripted',
  params: z.strictObject({ n: z.number().default(1) }),
  async run(_seat, p, deadline): Promise<ProbeOutcome> {
    return behaviour(p.n, deadline);
  },
});
let behaviour: (n: number, d: Deadline) => Promise<ProbeOutcome>;

describe('runProbe classification', () => {
  it('passes a valid outcome through and stamps its duration', async () => {
    behaviour = async () => graded(0.25, { zh: '部分', en: 'some' }, []);
    const o = await runProbe(scripted, seat, {}, Deadline.after(1000));
    expect(o).toMatchObject({ status: 'partial', score: 0.25, evidenceOmitted: 0 });
    expect(o.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('a thrown candidate-fault error is a fail with the reason as evidence', async () => {
    behaviour = async () => {
      throw new DeploylabError({ code: 'GGUF_INVALID', fault: 'candidate', message: { zh: '不是 GGUF', en: 'not GGUF' } });
    };
    const o = await runProbe(scripted, seat, {}, Deadline.after(1000));
    expect(o.status).toBe('fail');
    expect(o.score).toBe(0);
    expect(o.evidence[0]).toMatchObject({ kind: 'note', data: { code: 'GGUF_INVALID' } });
  });

  it.each(['infrastructure', 'config', 'bug'] as const)('a thrown %s-fault error is error, re-gradable', async (fault) => {
    behaviour = async () => {
      throw new DeploylabError({ code: 'SANDBOX_ENGINE_ERROR', fault, message: { zh: '坏了', en: 'broken' } });
    };
    const o = await runProbe(scripted, seat, {}, Deadline.after(1000));
    expect(o.status).toBe('error');
    expect(o.error).toEqual({ code: 'SANDBOX_ENGINE_ERROR', fault, message: { zh: '坏了', en: 'broken' } });
  });

  it('an unknown throw is a bug → error', async () => {
    behaviour = async () => {
      throw new TypeError('undefined is not a function');
    };
    const o = await runProbe(scripted, seat, {}, Deadline.after(1000));
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('INTERNAL');
  });

  it('a probe that ignores its deadline is cut off with PROBE_DEADLINE', async () => {
    behaviour = () => new Promise(() => undefined);
    const t0 = Date.now();
    const o = await runProbe(scripted, seat, {}, Deadline.after(100));
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(o.status).toBe('error');
    expect(o.error).toMatchObject({ code: 'PROBE_DEADLINE', fault: 'infrastructure' });
  });

  it('an outcome that breaks the contract (pass with score 0.5) is a bug → error', async () => {
    behaviour = async () => ({ status: 'pass', score: 0.5, summary: { zh: '', en: '' }, evidence: [], evidenceOmitted: 0 });
    const o = await runProbe(scripted, seat, {}, Deadline.after(1000));
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_BAD_OUTCOME');
    expect(o.error?.message.en).toContain('pass must have score 1');
  });

  it('invalid parameters are a config error before the probe runs', async () => {
    let ran = false;
    behaviour = async () => {
      ran = true;
      return graded(1, { zh: '', en: '' }, []);
    };
    const o = await runProbe(scripted, seat, { n: 'one', extra: 1 }, Deadline.after(1000));
    expect(ran).toBe(false);
    expect(o.error?.code).toBe('PROBE_PARAMS_INVALID');
    expect(o.error?.fault).toBe('config');
    expect(o.error?.message.en).toContain('unknown key(s): extra');
  });
});

describe('outcome bounds', () => {
  it('keeps at most EVIDENCE_LIMITS.entries entries and counts the rest', () => {
    const ev = Array.from({ length: EVIDENCE_LIMITS.entries + 7 }, (_, i) => note(`第 ${i} 条`, `entry ${i}`));
    const o = graded(1, { zh: '好', en: 'ok' }, ev);
    expect(o.evidence).toHaveLength(EVIDENCE_LIMITS.entries);
    expect(o.evidenceOmitted).toBe(7);
    expect(probeOutcomeSchema.safeParse(o).success).toBe(true);
  });

  it('clips text and binary, keeping the original length', () => {
    const long = 'x'.repeat(EVIDENCE_LIMITS.text + 10);
    expect(clip(long)).toEqual({ text: 'x'.repeat(EVIDENCE_LIMITS.text), length: long.length, truncated: true });
    expect(clip(Buffer.from('你好'))).toEqual({ text: '你好', length: 6, truncated: false });
  });

  it('rejects out-of-range scores', () => {
    expect(() => graded(1.5, { zh: '', en: '' }, [])).toThrow(DeploylabError);
    expect(() => graded(Number.NaN, { zh: '', en: '' }, [])).toThrow(DeploylabError);
  });

  it('the schema refuses an error outcome without error details and a fail with a score', () => {
    const base = { summary: { zh: '', en: '' }, evidence: [], evidenceOmitted: 0 };
    expect(probeOutcomeSchema.safeParse({ ...base, status: 'error', score: 0 }).success).toBe(false);
    expect(probeOutcomeSchema.safeParse({ ...base, status: 'fail', score: 0.1 }).success).toBe(false);
    expect(probeOutcomeSchema.safeParse({ ...base, status: 'partial', score: 1 }).success).toBe(false);
  });
});

describe('Deadline', () => {
  it('aborts its signal when it passes and check() throws PROBE_DEADLINE', async () => {
    const d = Deadline.after(30);
    expect(d.expired()).toBe(false);
    await new Promise((r) => setTimeout(r, 60));
    expect(d.signal.aborted).toBe(true);
    expect(() => d.check()).toThrow(expect.objectContaining({ code: 'PROBE_DEADLINE' }));
    d.dispose();
  });
});
