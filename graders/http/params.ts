import { z } from 'zod';
import { AbsolutePath, ContainerRole, Regex, TargetSchema, Timeout, UrlPath } from '../params.js';

export const HttpParamsSchema = z.strictObject({
  kind: z.literal('http'),
  target: TargetSchema,
  method: z.enum(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']).default('GET'),
  path: UrlPath.default('/'),
  headers: z.record(z.string(), z.string()).default({}),
  /** A string is sent as is; anything else as JSON. */
  body: z.unknown().optional(),
  expect: z
    .strictObject({
      status: z.union([z.number().int().min(100).max(599), z.array(z.number().int().min(100).max(599)).min(1)]).default(200),
      bodyContains: z.array(z.string().min(1)).optional(),
      bodyMatches: Regex.optional(),
      /** JSON pointer (RFC 6901) checks on the response body. */
      json: z
        .array(z.strictObject({ pointer: z.string().regex(/^(\/.*)?$/), equals: z.unknown().optional(), exists: z.boolean().default(true) }))
        .optional(),
      headers: z.record(z.string(), Regex).optional(),
      /**
       * Provenance: the answer carries, at `pointer`, the hex HMAC-SHA256 of `message` under a key
       * that only the service meant to answer and the harness hold, so an imitation (nginx with a
       * canned body, even one that echoes the query) cannot produce it.
       */
      signature: z
        .strictObject({
          pointer: z.string().regex(/^\/.*/, 'a JSON pointer'),
          message: z.string().default('{nonce}'),
          key: z.union([
            /** A seat file only root reads (the task's own service holds it); its content, trimmed, is the key. */
            z.strictObject({ seatFile: AbsolutePath, container: ContainerRole.default('workspace') }),
            /**
             * A fresh random key the harness writes, just before the request, at `path` in the one
             * running container of the seat's own daemon that `match` selects.
             */
            z.strictObject({
              innerContainer: z
                .strictObject({
                  image: Regex.optional(),
                  labels: z.record(z.string(), z.string()).optional(),
                  composeService: z.string().min(1).optional(),
                })
                .refine((m) => Object.values(m).some((v) => v !== undefined), { message: 'give at least one matcher' }),
              path: AbsolutePath,
            }),
          ]),
        })
        .optional(),
    })
    .prefault({}),
  timeoutMs: Timeout.default(5_000),
});
