import { z } from 'zod';
import { AbsolutePath, ContainerRole, ProcessMatchSchema, TargetSchema, Timeout, UrlPath } from '../params.js';

export const ResourceSamplesParamsSchema = z.strictObject({
  kind: z.literal('resource-samples'),
  container: ContainerRole.default('workspace'),
  /** The candidate's JSONL samples: {"ts", "pid", "cpu_percent", "rss_mib"} per line. */
  path: AbsolutePath,
  /** The process the samples are about (the seat's model server). */
  process: ProcessMatchSchema,
  /**
   * Only processes of this seat user count (the task's server runs as root, which the candidate
   * cannot be: a decoy of the same name is never the one judged). Exactly one may match.
   */
  processUser: z.string().min(1).optional(),
  /** An idle phase, then load from the harness; the samples must follow both. */
  load: z.strictObject({
    target: TargetSchema,
    path: UrlPath.default('/v1/chat/completions'),
    /** JSON body; the text "{n}" in string values is replaced by the request number. */
    body: z.unknown(),
    idleSeconds: z.number().int().min(2).max(60).default(4),
    loadSeconds: z.number().int().min(2).max(120).default(8),
    concurrency: z.number().int().min(1).max(16).default(2),
    maxRequests: z.number().int().min(1).max(10_000).default(2_000),
  }),
  expect: z
    .strictObject({
      /** The sampling interval the task states. */
      intervalSeconds: z.number().positive().max(60).default(1),
      /** Share of the expected samples (window ÷ interval) that must be there. */
      minCoverage: z.number().gt(0).max(1).default(0.6),
      /** rss_mib within this fraction of the host's VmRSS. */
      rssTolerance: z.number().gt(0).max(1).default(0.25),
      /** Highest cpu_percent under load ≥ this share of the host-measured CPU over the load phase. */
      minCpuShare: z.number().gt(0).max(1).default(0.5),
      /** Lowest cpu_percent while idle ≤ this share of the host-measured CPU over the load phase. */
      maxIdleShare: z.number().gt(0).max(1).default(0.25),
      /**
       * Sample by sample: cpu_percent within ±max(cpuTolerancePoints, cpuToleranceShare × host) of
       * the CPU the host measured over one interval ending between 1 s before the sample's ts and
       * one interval plus 0.25 s after it, for at least cpuMatchShare of the window's samples.
       */
      cpuTolerancePoints: z.number().min(0).max(100).default(20),
      cpuToleranceShare: z.number().min(0).max(1).default(0.3),
      cpuMatchShare: z.number().gt(0).max(1).default(0.8),
    })
    .prefault({})
    // Below minCpuShare, so no constant cpu_percent can be both "busy" and "idle".
    .refine((e) => e.maxIdleShare < e.minCpuShare, { message: 'maxIdleShare must be below minCpuShare', path: ['maxIdleShare'] }),
  timeoutMs: Timeout.default(60_000),
});
