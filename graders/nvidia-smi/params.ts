import { z } from 'zod';
import { ContainerRole, ProcessMatchSchema, Timeout } from '../params.js';

export const NvidiaSmiParamsSchema = z.strictObject({
  kind: z.literal('nvidia-smi'),
  /**
   * Judged on the host's nvidia-smi, attributed to the seat by host PID: only GPU processes whose
   * PID is one of the seat's processes count; other seats' processes are never judged.
   */
  expect: z
    .strictObject({
      /** Host precondition (not the candidate's doing): fewer GPUs seen is an error, not a fail. */
      minGpus: z.number().int().min(1).optional(),
      /** Only the seat's processes matching this count; absent: every process of the seat. */
      match: ProcessMatchSchema.optional(),
      /** Only processes of this seat container count; absent: any container of the seat. */
      container: ContainerRole.optional(),
      /** Where the memory must sit: a whole GPU, a MIG instance, or either. */
      on: z.enum(['any', 'gpu', 'mig']).default('any'),
      /** One device by UUID (`GPU-…` or `MIG-…`); absent: any device. */
      device: z.string().regex(/^(GPU|MIG)-[0-9a-fA-F-]+$/, 'a GPU-… or MIG-… UUID').optional(),
      /** The counted processes together hold at least this much GPU memory (default: any process at all). */
      minUsedMiB: z.number().int().min(0).default(1),
      /** ... and at most this much (a memory cap the candidate was asked to keep to). */
      maxUsedMiB: z.number().int().min(1).optional(),
    })
    .refine((e) => e.maxUsedMiB === undefined || e.maxUsedMiB >= e.minUsedMiB, {
      message: 'maxUsedMiB below minUsedMiB',
      path: ['maxUsedMiB'],
    })
    .prefault({}),
  timeoutMs: Timeout.default(15_000),
});
