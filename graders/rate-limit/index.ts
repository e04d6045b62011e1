/**
 * The `rate-limit` probe kind: a burst of requests: some must be limited, some allowed.
 */
import { defineKind } from '../probe-kind.js';
import { RateLimitParamsSchema } from './params.js';
import { rateLimitProbe } from './rate-limit.js';

export const rateLimitKind = defineKind({
  kind: 'rate-limit',
  params: RateLimitParamsSchema,
  probe: rateLimitProbe,
  latencySensitive: true,
  needs: [],
});
