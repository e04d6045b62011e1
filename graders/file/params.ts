import { z } from 'zod';
import { AbsolutePath, ContainerRole, FileMode, Regex, Timeout } from '../params.js';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');

export const FileParamsSchema = z
  .strictObject({
    kind: z.literal('file'),
    container: ContainerRole.default('workspace'),
    path: AbsolutePath,
    expect: z
      .strictObject({
        exists: z.boolean().default(true),
        sha256: Sha256.optional(),
        /**
         * The expected digest comes from a models manifest in the seat image
         * ({ "models": [{ "file": "<name>", "sha256": "<hex>" }, ...] }), read host-side.
         */
        sha256FromManifest: z.strictObject({ manifest: AbsolutePath, file: z.string().min(1) }).optional(),
        mode: FileMode.optional(),
        owner: z.string().min(1).optional(),
        minBytes: z.number().int().min(0).optional(),
        maxBytes: z.number().int().min(0).optional(),
        contains: z.array(z.string().min(1)).optional(),
        matches: Regex.optional(),
      })
      .prefault({}),
    timeoutMs: Timeout.default(10_000),
  })
  .refine((p) => !(p.expect.sha256 && p.expect.sha256FromManifest), { message: 'give sha256 or sha256FromManifest, not both', path: ['expect'] });
