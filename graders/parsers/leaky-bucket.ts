/**
 * What nginx's limit_req should do with a burst of requests, computed the way
 * ngx_http_limit_req_module does it, so a rate-limiting check compares the candidate's nginx
 * with the arithmetic instead of with a guess.
 *
 * nginx keeps, per key, `excess` in thousandths of a request and the time of the last accepted
 * request. For a request `ms` milliseconds after it:
 *   excess = max(prev_excess − rate·ms/1000 + 1000, 0)     (rate in thousandths per second)
 *   excess > burst·1000 → rejected (503, or limit_req_status), state left unchanged
 *   otherwise accepted and stored; delayed by (excess − delay·1000)/rate seconds when that is
 *   positive (delay = 0 by default, unlimited with nodelay).
 * The first request of a key finds no node and is accepted with excess 0. Integer arithmetic
 * as in C: rate = count·1000/scale truncated (scale 60 for r/m), the leak rate·ms/1000 truncated.
 */

export interface LimitReqSpec {
  /** `rate=10r/s` → {count: 10, per: 's'}; `rate=30r/m` → {count: 30, per: 'm'}. */
  rate: { count: number; per: 's' | 'm' };
  /** burst=N (0 when absent). */
  burst: number;
  nodelay?: boolean;
  /** delay=N (nginx ≥ 1.15.7); ignored with nodelay. */
  delay?: number;
}

export type LimitReqFate = 'accepted' | 'delayed' | 'rejected';

export interface LimitReqStep {
  atMs: number;
  fate: LimitReqFate;
  /** Excess computed for this request, thousandths of a request. */
  excess: number;
  /** How long nginx holds it before passing it on (0 unless delayed). */
  delayMs: number;
}

export interface LimitReqResult {
  /** Passed on at once. */
  accepted: number;
  /** Passed on after a delay (no nodelay). */
  delayed: number;
  rejected: number;
  steps: LimitReqStep[];
}

/** nginx's ctx->rate: thousandths of a request per second, truncated. */
export function nginxRate(rate: LimitReqSpec['rate']): number {
  return Math.trunc((rate.count * 1000) / (rate.per === 'm' ? 60 : 1));
}

/**
 * Replay arrivals (milliseconds, in the order nginx processed them) through limit_req.
 * `prior` is the key's state before the first one; omit it for a key nginx has not seen
 * (or has forgotten: the bucket is empty once burst/rate seconds have passed).
 */
export function simulateLimitReq(
  spec: LimitReqSpec,
  arrivalsMs: readonly number[],
  prior?: { excess: number; lastMs: number },
): LimitReqResult {
  const rate = nginxRate(spec.rate);
  if (rate <= 0) throw new RangeError(`rate ${spec.rate.count}r/${spec.rate.per} is below nginx's resolution`);
  const burst = spec.burst * 1000;
  const delayLimit = spec.nodelay ? Number.POSITIVE_INFINITY : (spec.delay ?? 0) * 1000;
  let node = prior ? { ...prior } : null;
  const steps: LimitReqStep[] = [];
  let prevAt = Number.NEGATIVE_INFINITY;

  for (const raw of arrivalsMs) {
    const now = Math.floor(raw); // ngx_current_msec is whole milliseconds
    if (now < prevAt) throw new RangeError('arrivals must be in processing order');
    prevAt = now;
    if (!node) {
      node = { excess: 0, lastMs: now };
      steps.push({ atMs: now, fate: 'accepted', excess: 0, delayMs: 0 });
      continue;
    }
    let ms = now - node.lastMs;
    if (ms < -60000) ms = 1;
    else if (ms < 0) ms = 0;
    const excess = Math.max(node.excess - Math.trunc((rate * ms) / 1000) + 1000, 0);
    if (excess > burst) {
      steps.push({ atMs: now, fate: 'rejected', excess, delayMs: 0 });
      continue;
    }
    node.excess = excess;
    if (ms) node.lastMs = now;
    const delayMs = excess <= delayLimit ? 0 : Math.trunc(((excess - delayLimit) * 1000) / rate);
    steps.push({ atMs: now, fate: delayMs > 0 ? 'delayed' : 'accepted', excess, delayMs });
  }
  const n = (f: LimitReqFate): number => steps.filter((s) => s.fate === f).length;
  return { accepted: n('accepted'), delayed: n('delayed'), rejected: n('rejected'), steps };
}

export interface LimitReqJudgement {
  consistent: boolean;
  /** Requests nginx passes on (accepted + delayed) under the fastest and slowest timings. */
  servedRange: [number, number];
  observed: { served: number; rejected: number };
}

/**
 * Is an observed (served, rejected) split consistent with limit_req, allowing each arrival to
 * be off by ±jitterMs (client scheduling, the event loop's cached clock)? The bounds replay the
 * arrivals with every gap shrunk, and grown, by 2·jitterMs: more time between requests never
 * lets fewer through (checked by a property test), so the truth lies between the two.
 */
export function judgeLimitReq(
  spec: LimitReqSpec,
  arrivalsMs: readonly number[],
  observed: { served: number; rejected: number },
  jitterMs: number,
): LimitReqJudgement {
  const scaled = (d: number): number[] => {
    const out: number[] = [];
    arrivalsMs.forEach((t, i) => {
      if (i === 0) out.push(t);
      else out.push(out[i - 1]! + Math.max(0, t - arrivalsMs[i - 1]! + d));
    });
    return out;
  };
  const served = (r: LimitReqResult): number => r.accepted + r.delayed;
  const lo = served(simulateLimitReq(spec, scaled(-2 * jitterMs)));
  const hi = served(simulateLimitReq(spec, scaled(2 * jitterMs)));
  const total = observed.served + observed.rejected;
  return {
    consistent: total === arrivalsMs.length && observed.served >= lo && observed.served <= hi,
    servedRange: [lo, hi],
    observed,
  };
}
