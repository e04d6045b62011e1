import { z } from 'zod';
import { TargetSchema, Timeout, UrlPath } from '../params.js';

export const RateLimitParamsSchema = z.strictObject({
  kind: z.literal('rate-limit'),
  target: TargetSchema,
  method: z.enum(['GET', 'POST']).default('GET'),
  path: UrlPath.default('/'),
  headers: z.record(z.string(), z.string()).default({}),
  body: z.unknown().optional(),
  /** Requests sent as one burst. */
  requests: z.number().int().min(2).max(1_000),
  concurrency: z.number().int().min(1).max(64).default(10),
  expect: z.strictObject({
    limitedStatus: z.array(z.number().int().min(400).max(599)).min(1).default([429, 503]),
    minLimited: z.number().int().min(1),
    minAllowed: z.number().int().min(1),
    maxAllowed: z.number().int().min(1).optional(),
  }),
  timeoutMs: Timeout.default(30_000),
});
