/**
 * `rate-limit` probe: one burst of requests from the harness to the candidate's gateway, counted
 * as allowed (2xx) or limited (the statuses the task names). The evidence keeps each request's
 * send offset and status, so the split can be replayed against nginx's limit_req arithmetic
 * (parsers/leaky-bucket.ts) when an examiner reviews it.
 */
import type { z } from 'zod';
import { RateLimitParamsSchema } from './params.js';
import { judge, type Assertion } from '../shared/assertions.js';
import { httpRequest, noResponseOutcome, type HttpAttempt } from '../shared/http-request.js';
import { defineProbe, note, type Evidence } from '../probe.js';

export type RateLimitParams = z.output<typeof RateLimitParamsSchema>;

export interface BurstResult {
  /** Milliseconds after the burst began that each request was sent. */
  sentMs: number[];
  /** Status per request, or the failure code when there was no response. */
  outcomes: (number | string)[];
}

export const rateLimitProbe = defineProbe({
  kind: 'rate-limit',
  params: RateLimitParamsSchema,
  async run(seat, p, deadline) {
    const t0 = performance.now();
    const result: BurstResult = { sentMs: new Array<number>(p.requests), outcomes: new Array<number | string>(p.requests) };
    let next = 0;
    let firstNoResponse: HttpAttempt | null = null;
    let sample: Evidence | null = null;
    const worker = async (): Promise<void> => {
      while (next < p.requests) {
        const i = next++;
        result.sentMs[i] = Math.round((performance.now() - t0) * 10) / 10;
        const attempt = await httpRequest(
          seat,
          { target: p.target, method: p.method, path: p.path, headers: p.headers, body: p.body, timeoutMs: p.timeoutMs, readBytes: 64 * 1024 },
          deadline,
        );
        if (attempt.kind === 'response') {
          result.outcomes[i] = attempt.exchange.status;
          if (!sample && p.expect.limitedStatus.includes(attempt.exchange.status)) sample = attempt.evidence;
        } else {
          result.outcomes[i] = attempt.kind === 'slow' ? 'timeout' : attempt.code;
          firstNoResponse ??= attempt;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(p.concurrency, p.requests) }, worker));

    // Nothing answered at all: absent service (fail) or the harness's own path down (error).
    if (firstNoResponse && result.outcomes.every((o) => typeof o === 'string')) {
      return (await noResponseOutcome(seat, firstNoResponse, p.timeoutMs))!;
    }
    const allowed = result.outcomes.filter((o) => typeof o === 'number' && o >= 200 && o < 300).length;
    const limited = result.outcomes.filter((o) => typeof o === 'number' && p.expect.limitedStatus.includes(o)).length;
    const other = p.requests - allowed - limited;
    const e = p.expect;
    const a: Assertion[] = [
      { id: 'allowed', ok: allowed >= e.minAllowed && (e.maxAllowed === undefined || allowed <= e.maxAllowed), expected: e.maxAllowed === undefined ? `≥ ${e.minAllowed}` : `${e.minAllowed}..${e.maxAllowed}`, actual: String(allowed) },
      { id: 'limited', ok: limited >= e.minLimited, expected: `≥ ${e.minLimited} with ${e.limitedStatus.join('/')}`, actual: String(limited) },
    ];
    const evidence: Evidence[] = [
      note('突发请求结果', 'burst result', {
        requests: p.requests,
        concurrency: p.concurrency,
        allowed,
        limited,
        other,
        sentMs: result.sentMs.slice(0, 200),
        outcomes: result.outcomes.slice(0, 200),
      }),
    ];
    if (sample) evidence.push(sample);
    return judge(a, 'all', { zh: `限流 ${p.method} ${p.path}`, en: `rate limit ${p.method} ${p.path}` }, evidence);
  },
});
