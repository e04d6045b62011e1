/** Named expectations a probe checked, and how they turn into a score. */
import { graded, note, type Evidence, type ProbeOutcome } from '../probe.js';

export interface Assertion {
  /** Short stable name, e.g. `status`, `mode`, `json:$.usage.total_tokens`. */
  id: string;
  ok: boolean;
  expected: string;
  actual: string;
}

/** `all`: every assertion must hold (score 1 or 0); `fraction`: the share that hold. */
export type Scoring = 'all' | 'fraction';

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

/**
 * Resolve an RFC 6901 JSON pointer ("/choices/0/message/content"; "" is the whole document);
 * undefined when absent.
 */
export function jsonPointer(value: unknown, pointer: string): unknown {
  if (pointer === '') return value;
  let cur: unknown = value;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9]\d*)$/.test(key)) return undefined;
      cur = cur[Number(key)];
    } else if (cur !== null && typeof cur === 'object' && Object.hasOwn(cur, key)) {
      cur = (cur as Record<string, unknown>)[key];
    } else {
      return undefined;
    }
  }
  return cur;
}

export function show(v: unknown, max = 200): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return s.length > max ? s.slice(0, max) + '…' : s;
}
