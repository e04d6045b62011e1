/** Named expectations a probe checked, and how they turn into a score. */
import { z } from 'zod';
import { graded, note, type Evidence, type ProbeOutcome } from './probe.js';

export interface Assertion {
  /** Short stable name, e.g. `status`, `mode`, `json:$.usage.total_tokens`. */
  id: string;
  ok: boolean;
  expected: string;
  actual: string;
}

/** `all`: every assertion must hold (score 1 or 0); `fraction`: the share that hold. */
export const scoringSchema = z.enum(['all', 'fraction']).default('all');
export type Scoring = z.infer<typeof scoringSchema>;

export function judge(
  assertions: Assertion[],
  scoring: Scoring,
  what: { zh: string; en: string },
  evidence: Evidence[],
): ProbeOutcome {
  const passedCount = assertions.filter((a) => a.ok).length;
  const total = assertions.length;
  const score = total === 0 ? 1 : scoring === 'all' ? (passedCount === total ? 1 : 0) : passedCount / total;
  const failedIds = assertions.filter((a) => !a.ok).map((a) => a.id);
  const summary =
    failedIds.length === 0
      ? { zh: `${what.zh}：全部 ${total} 项符合`, en: `${what.en}: all ${total} expectation(s) met` }
      : {
          zh: `${what.zh}：${total} 项中 ${failedIds.length} 项不符合（${failedIds.join(', ')}）`,
          en: `${what.en}: ${failedIds.length} of ${total} expectation(s) not met (${failedIds.join(', ')})`,
        };
  return graded(score, summary, [...evidence, note('逐项检查结果', 'expectations checked', { assertions })]);
}

/** Compile a regular expression from a task spec; a bad one is the task author's error. */
export const regexSource = z.string().min(1).refine(
  (s) => {
    try {
      new RegExp(s, 'u');
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);

/**
 * Resolve `a.b[0].c` (a leading `$.` is allowed) in a JSON value; undefined when absent.
 * Enough for task specs; not a JSONPath implementation.
 */
export function jsonPath(value: unknown, path: string): unknown {
  const p = path.startsWith('$') ? path.slice(1) : path;
  const parts = p.match(/[^.[\]]+|\[\d+\]/g) ?? [];
  let cur: unknown = value;
  for (const part of parts) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (part.startsWith('[')) {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[Number(part.slice(1, -1))];
    } else {
      if (!Object.hasOwn(cur, part)) return undefined;
      cur = (cur as Record<string, unknown>)[part];
    }
  }
  return cur;
}

export function show(v: unknown, max = 200): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return s.length > max ? s.slice(0, max) + '…' : s;
}
