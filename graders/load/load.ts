/**
 * `load` probe: a bounded number of requests at a fixed concurrency from the harness to the
 * candidate's service; judged on error rate, p95 latency and throughput, and — with a `reference`
 * — on their ratios to a reference configuration the harness starts and measures with the same
 * load generator, on the same host, immediately before the candidate. Bounded in count and by the
 * deadline, aimed only at the seat's endpoint and the harness's own reference.
 */
import type { z } from 'zod';
import { asDeploylabError } from '../../runner/core/errors.js';
import { LoadParamsSchema } from './params.js';
import { judge, type Assertion } from '../shared/assertions.js';
import { noResponseOutcome } from '../shared/http-request.js';
import { seatUrl } from '../shared/seat-url.js';
import { figuresOf, LATENCY_METHOD, runLoad } from './load-client.js';
import { evidenceOf, measureReference, type ReferenceMeasurement } from './load-reference.js';
import { defineProbe, errored, note, type Evidence } from '../probe.js';

export { percentile } from './load-client.js';

export type LoadParams = z.output<typeof LoadParamsSchema>;

/** Per-request timeout inside a load run: the whole run's budget, as the schema gives one. */
const PER_REQUEST_MS = 30_000;

const ratio = (a: number, b: number): number => Math.round((a / b) * 1000) / 1000;

export const loadProbe = defineProbe({
  kind: 'load',
  params: LoadParamsSchema,
  async run(seat, p, deadline) {
    const timeoutMs = Math.min(PER_REQUEST_MS, p.timeoutMs);
    const warmupRequests = p.warmupRequests ?? (p.reference ? p.concurrency : 0);
    const load = { requests: p.requests, concurrency: p.concurrency, timeoutMs, warmupRequests };
    const url = new URL(await seatUrl(seat, p.target, p.path));
    const target = { url, method: p.method, headers: p.headers, ...(p.body !== undefined ? { body: p.body } : {}) };

    let reference: ReferenceMeasurement | undefined;
    if (p.reference) {
      const r = p.reference;
      try {
        reference = await measureReference(
          seat,
          r,
          { method: p.method, headers: p.headers, path: r.path ?? p.path, ...(r.body !== undefined ? { body: r.body } : p.body !== undefined ? { body: p.body } : {}) },
          load,
          deadline,
        );
      } catch (e) {
        const err = asDeploylabError(e);
        // A seat file the reference needs that the candidate does not have is theirs (fail); the
        // harness's own deadline stays PROBE_DEADLINE; everything else is an error with evidence.
        if (err.fault === 'candidate' || err.code === 'PROBE_DEADLINE') throw err;
        return errored(err, evidenceOf(e));
      }
    }
    // Warmed the same way as the reference, not counted.
    if (warmupRequests > 0) await runLoad(target, { ...load, requests: warmupRequests, concurrency: Math.min(p.concurrency, warmupRequests) }, deadline);

    const run = await runLoad(target, load, deadline);
    if (run.firstNoResponse && run.errors === p.requests && [...run.statuses.keys()].every((k) => !/^\d+$/.test(k))) {
      return (await noResponseOutcome(seat, run.firstNoResponse, timeoutMs))!;
    }
    const { figures, p95, rps } = figuresOf(run, p.requests, p.concurrency);
    const e = p.expect;
    const a: Assertion[] = [{ id: 'errorRate', ok: figures.errorRate <= e.maxErrorRate, expected: `≤ ${e.maxErrorRate}`, actual: figures.errorRate.toFixed(3) }];
    if (e.maxP95Ms !== undefined) a.push({ id: 'p95', ok: p95 !== null && p95 <= e.maxP95Ms, expected: `≤ ${e.maxP95Ms} ms`, actual: p95 === null ? '(no success)' : `${figures.p95Ms} ms` });
    if (e.minThroughputRps !== undefined) a.push({ id: 'throughput', ok: rps >= e.minThroughputRps, expected: `≥ ${e.minThroughputRps} req/s`, actual: `${figures.throughputRps} req/s` });
    let ratios: { p95: number | null; throughput: number } | undefined;
    if (reference) {
      // The reference answered every request, so its p95 and throughput are positive.
      ratios = { p95: p95 === null ? null : ratio(p95, reference.p95!), throughput: ratio(rps, reference.rps) };
      const refNote = `reference p95 ${reference.figures.p95Ms} ms, ${reference.figures.throughputRps} req/s`;
      if (e.maxP95RatioToReference !== undefined) {
        a.push({
          id: 'p95RatioToReference',
          ok: ratios.p95 !== null && ratios.p95 <= e.maxP95RatioToReference,
          expected: `≤ ${e.maxP95RatioToReference} × reference p95`,
          actual: ratios.p95 === null ? '(no success)' : `${ratios.p95} (${figures.p95Ms} ms; ${refNote})`,
        });
      }
      if (e.minThroughputRatioToReference !== undefined) {
        a.push({
          id: 'throughputRatioToReference',
          ok: ratios.throughput >= e.minThroughputRatioToReference,
          expected: `≥ ${e.minThroughputRatioToReference} × reference throughput`,
          actual: `${ratios.throughput} (${figures.throughputRps} req/s; ${refNote})`,
        });
      }
    }
    const evidence: Evidence[] = [
      note('负载测试结果', 'load result', {
        ...figures,
        method: LATENCY_METHOD,
        warmupRequests,
        ...(reference ? { order: 'reference, then candidate: same load generator, same N and C, same warm-up', ratioToReference: ratios } : {}),
      }),
      ...(reference?.evidence ?? []),
    ];
    return judge(a, 'all', { zh: `负载 ${p.method} ${p.path}`, en: `load ${p.method} ${p.path}` }, evidence);
  },
});
