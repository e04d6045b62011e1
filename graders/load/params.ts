import { z } from 'zod';
import { AbsolutePath, ContainerRole, Port, TargetSchema, Timeout, UrlPath } from '../params.js';

/**
 * The reference configuration of a `load` check: a service the harness starts itself from the
 * trusted toolbox image (llama.cpp's llama-server, nginx, python3), on a network only the harness
 * reaches, measured with the same load generator and the same N and C immediately before the
 * candidate's service, then removed. Ratio thresholds compare the candidate with it.
 */
export const LoadReferenceSchema = z.strictObject({
  /** argv in the toolbox image, e.g. ["llama-server", "-m", "/work/model.gguf", "--host", "0.0.0.0", "--port", "8080"]. */
  command: z.array(z.string().min(1)).min(1),
  /** Where it listens inside its container. */
  port: Port,
  /** Seat files copied in first (e.g. the candidate's own model, so both serve the same file). */
  copy: z
    .array(
      z.strictObject({
        from: AbsolutePath,
        container: ContainerRole.optional(),
        to: z
          .string()
          .regex(/^\/work\/[^\0]+$/, 'a path under /work/ in the reference container')
          .refine((s) => !s.split('/').includes('..'), { message: 'no .. in the path' }),
      }),
    )
    .max(8)
    .default([]),
  /** Polled with GET until it answers 2xx before the measurement starts (llama-server: /health). */
  readyPath: UrlPath.default('/'),
  readyTimeoutMs: Timeout.default(60_000),
  /** The request sent to the reference; by default the candidate's path and body. */
  path: UrlPath.optional(),
  body: z.unknown().optional(),
  /** Give the reference the seat's own limits, so the ratio compares configurations, not quotas. */
  cpus: z.number().positive().max(64).default(1),
  memoryMiB: z.number().int().min(64).max(262_144).default(2048),
});

export const LoadParamsSchema = z
  .strictObject({
    kind: z.literal('load'),
    target: TargetSchema,
    method: z.enum(['GET', 'POST']).default('POST'),
    path: UrlPath.default('/v1/chat/completions'),
    headers: z.record(z.string(), z.string()).default({}),
    body: z.unknown().optional(),
    requests: z.number().int().min(1).max(10_000),
    concurrency: z.number().int().min(1).max(256),
    /**
     * Uncounted requests sent first (to each side when there is a reference): connections open,
     * caches warm. Default: one per connection with a reference, none without.
     */
    warmupRequests: z.number().int().min(0).max(10_000).optional(),
    /** Needed by the ratio expectations; measured in the same run, just before the candidate. */
    reference: LoadReferenceSchema.optional(),
    expect: z.strictObject({
      maxErrorRate: z.number().min(0).max(1).default(0),
      maxP95Ms: z.number().positive().optional(),
      /** p95 latency ÷ the reference configuration's p95 measured on the same host in the same run. */
      maxP95RatioToReference: z.number().positive().optional(),
      minThroughputRps: z.number().positive().optional(),
      /** Throughput ÷ the reference configuration's throughput measured on the same host in the same run. */
      minThroughputRatioToReference: z.number().positive().optional(),
    }),
    /** The whole check, the reference's start and measurement included. */
    timeoutMs: Timeout.default(120_000),
  })
  .refine((p) => p.concurrency <= p.requests, { message: 'concurrency must not exceed requests', path: ['concurrency'] })
  .refine((p) => p.reference !== undefined || (p.expect.maxP95RatioToReference === undefined && p.expect.minThroughputRatioToReference === undefined), {
    message: 'a ratio to the reference needs `reference` (the configuration to measure)',
    path: ['reference'],
  })
  .refine((p) => p.reference === undefined || p.expect.maxP95RatioToReference !== undefined || p.expect.minThroughputRatioToReference !== undefined, {
    message: 'a reference is measured only for a ratio: give maxP95RatioToReference or minThroughputRatioToReference',
    path: ['expect'],
  });
