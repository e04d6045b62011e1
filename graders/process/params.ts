import { z } from 'zod';
import { ContainerRole, ProcessExpectSchema, ProcessMatchSchema, Timeout } from '../params.js';

/** How the matched process uses the CPU, per thread, from the host's /proc (threads.ts). */
export const ThreadsExpectSchema = z
  .strictObject({
    /** Every thread may run on at least this many CPUs (its Cpus_allowed_list). */
    cpusAllowedMin: z.number().int().min(1).optional(),
    /** Threads whose CPU time is at least `busyShare` × the busiest thread's. */
    busy: z.strictObject({ min: z.number().int().min(1), max: z.number().int().min(1).optional() }).optional(),
    busyShare: z.number().gt(0).max(1).default(0.25),
    /** `busy` is judged only once the busiest thread has used this much CPU; below it, a fail. */
    minBusiestCpuSeconds: z.number().positive().default(0.5),
  })
  .refine((t) => t.cpusAllowedMin !== undefined || t.busy !== undefined, { message: 'give cpusAllowedMin or busy' })
  .refine((t) => t.busy?.max === undefined || t.busy.max >= t.busy.min, { message: 'busy.max must not be below busy.min', path: ['busy', 'max'] });

export const ProcessParamsSchema = z.strictObject({
  kind: z.literal('process'),
  container: ContainerRole.default('workspace'),
  match: ProcessMatchSchema,
  expect: ProcessExpectSchema.unwrap()
    .extend({ threads: ThreadsExpectSchema.optional() })
    .prefault({}),
  timeoutMs: Timeout.default(10_000),
});
