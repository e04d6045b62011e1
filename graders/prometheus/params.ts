import { z } from 'zod';
import { TargetSchema, Timeout, UrlPath } from '../params.js';

const Comparison = z.strictObject({
  metric: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'a Prometheus metric name'),
  labels: z.record(z.string(), z.string()).optional(),
  op: z.enum(['exists', '>', '>=', '<', '<=', '==']),
  value: z.number().optional(),
});

export const PrometheusParamsSchema = z.strictObject({
  kind: z.literal('prometheus'),
  source: z.discriminatedUnion('from', [
    /** Scrape an exposition endpoint (text format). */
    z.strictObject({ from: z.literal('exposition'), target: TargetSchema, path: UrlPath.default('/metrics') }),
    /** Ask a Prometheus server the candidate runs (instant query API). */
    z.strictObject({ from: z.literal('query'), target: TargetSchema, query: z.string().min(1) }),
  ]),
  expect: z
    .array(Comparison.refine((c) => c.op === 'exists' || c.value !== undefined, { message: 'value is required unless op is exists' }))
    .min(1),
  timeoutMs: Timeout.default(10_000),
});
