/**
 * `load` probe: a bounded number of requests at a fixed concurrency from the harness to the
 * candidate's service; judged on error rate, p95 latency and throughput. Bounded in count and by
 * the deadline, aimed only at the seat's endpoint.
 */
import type { z } from 'zod';
import { DeploylabError } from '../runner/core/errors.js';
import { LoadParamsSchema } from '../runner/tasks/probe-params.js';
import { judge, type Assertion } from './assertions.js';
import { httpRequest, noResponseOutcome, type HttpAttempt } from './http.js';
import { defineProbe, note, type Evidence } from './probe.js';

export type LoadParams = z.output<typeof LoadParamsSchema>;

/** Nearest-rank percentile (p in 0..100) of unsorted values; null for none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Per-request timeout inside a load run: the whole run's budget, as the schema gives one. */
const PER_REQUEST_MS = 30_000;

export const loadProbe = defineProbe({
  kind: 'load',
  params: LoadParamsSchema,
  async run(seat, p, deadline) {
    if (p.expect.maxP95RatioToReference !== undefined) {
      // The reference p95 is measured by the orchestrator on the same host in the same run.
      throw new DeploylabError({
        code: 'PROBE_NEEDS_REFERENCE',
        fault: 'infrastructure',
        message: { zh: '该检查需要同机同批次的参考配置测量结果，当前未提供', en: 'this check needs the reference configuration’s measurement from the same host and run, which was not provided' },
      });
    }
    const latencies: number[] = [];
    const statuses = new Map<string, number>();
    let errors = 0;
    let firstNoResponse: HttpAttempt | null = null;
    let next = 0;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (next < p.requests) {
        next++;
        const attempt = await httpRequest(
          seat,
          { target: p.target, method: p.method, path: p.path, headers: p.headers, body: p.body, timeoutMs: Math.min(PER_REQUEST_MS, p.timeoutMs), readBytes: 256 * 1024 },
          deadline,
        );
        const key = attempt.kind === 'response' ? String(attempt.exchange.status) : attempt.kind === 'slow' ? 'timeout' : attempt.code;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        if (attempt.kind === 'response' && attempt.exchange.status >= 200 && attempt.exchange.status < 300) {
          latencies.push(attempt.exchange.latencyMs);
        } else {
          errors++;
          if (attempt.kind !== 'response') firstNoResponse ??= attempt;
        }
      }
    };
    await Promise.all(Array.from({ length: p.concurrency }, worker));
    const wallS = (performance.now() - t0) / 1000;

    if (firstNoResponse && errors === p.requests && [...statuses.keys()].every((k) => !/^\d+$/.test(k))) {
      return (await noResponseOutcome(seat, firstNoResponse, PER_REQUEST_MS))!;
    }
    const errorRate = errors / p.requests;
    const p50 = percentile(latencies, 50);
    const p95 = percentile(latencies, 95);
    const rps = latencies.length / wallS;
    const e = p.expect;
    const a: Assertion[] = [{ id: 'errorRate', ok: errorRate <= e.maxErrorRate, expected: `≤ ${e.maxErrorRate}`, actual: errorRate.toFixed(3) }];
    if (e.maxP95Ms !== undefined) a.push({ id: 'p95', ok: p95 !== null && p95 <= e.maxP95Ms, expected: `≤ ${e.maxP95Ms} ms`, actual: p95 === null ? '(no success)' : `${p95} ms` });
    if (e.minThroughputRps !== undefined) a.push({ id: 'throughput', ok: rps >= e.minThroughputRps, expected: `≥ ${e.minThroughputRps} req/s`, actual: `${rps.toFixed(2)} req/s` });
    const evidence: Evidence[] = [
      note('负载测试结果', 'load result', {
        requests: p.requests,
        concurrency: p.concurrency,
        statuses: Object.fromEntries(statuses),
        errorRate,
        p50Ms: p50,
        p95Ms: p95,
        maxMs: latencies.length ? Math.max(...latencies) : null,
        throughputRps: Math.round(rps * 100) / 100,
        wallSeconds: Math.round(wallS * 1000) / 1000,
      }),
    ];
    return judge(a, 'all', { zh: `负载 ${p.method} ${p.path}`, en: `load ${p.method} ${p.path}` }, evidence);
  },
});
