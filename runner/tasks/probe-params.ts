import { z } from 'zod';

/**
 * Parameters of every probe kind, one strict schema per kind. The task schema uses the union;
 * the probe library imports the per-kind schemas (and may `.extend()` them) so a probe and the
 * task files always agree on what a check may say.
 */

/** A seat container by role ("workspace", "docker", a sidecar name). */
export const ContainerRole = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'a container role: lowercase letters, digits, -');
export const AbsolutePath = z.string().regex(/^\/[^\0]*$/, 'an absolute path inside the seat');
export const UrlPath = z.string().regex(/^\/[^\s]*$/, 'an URL path starting with /');
export const Port = z.number().int().min(1).max(65535);
/** Octal permission bits as text, e.g. "0644". */
export const FileMode = z.string().regex(/^0?[0-7]{3,4}$/, 'octal mode such as "0644"');
const Regex = z.string().refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');
const Timeout = z.number().int().positive().max(600_000);

/** Where a network probe connects: a port of one of the seat's containers, from the harness side. */
export const TargetSchema = z.strictObject({
  container: ContainerRole.default('workspace'),
  port: Port,
  scheme: z.enum(['http', 'https']).default('http'),
});

export const ProcessMatchSchema = z
  .strictObject({
    /**
     * Basename of argv[0], e.g. "llama-server": it selects the processes to judge, it proves
     * nothing about them (see `expect.executable`).
     */
    exe: z.string().min(1).optional(),
    /** Regular expression over the full command line. */
    commandMatches: Regex.optional(),
  })
  .refine((m) => m.exe !== undefined || m.commandMatches !== undefined, { message: 'give exe or commandMatches' });

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
    })
    .prefault({}),
  timeoutMs: Timeout.default(5_000),
});

export const OpenAIChatParamsSchema = z.strictObject({
  kind: z.literal('openai-chat'),
  target: TargetSchema,
  path: UrlPath.default('/v1/chat/completions'),
  /** Model name to send; omitted means the server's default. */
  model: z.string().min(1).optional(),
  prompt: z.string().min(1).default('你好，请用一句话介绍你自己。'),
  maxTokens: z.number().int().min(1).max(4096).default(16),
  stream: z.boolean().default(false),
  headers: z.record(z.string(), z.string()).default({}),
  expect: z
    .strictObject({
      minCompletionTokens: z.number().int().min(1).default(1),
      /** The response must carry usage.prompt_tokens / usage.completion_tokens. */
      usage: z.boolean().default(true),
      /** The response's `model` must equal this. */
      model: z.string().min(1).optional(),
      /**
       * The server's own token counter must move by at least the completion tokens, so a fake
       * endpoint that returns canned JSON cannot pass.
       */
      serverCounter: z
        .strictObject({
          target: TargetSchema.optional(),
          path: UrlPath.default('/metrics'),
          metric: z.string().min(1).default('llamacpp:tokens_predicted_total'),
        })
        .optional(),
    })
    .prefault({}),
  timeoutMs: Timeout.default(60_000),
});

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

/** GGUF tensor type names as llama.cpp spells them. */
export const GgmlType = z.enum([
  'F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q8_1',
  'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_K',
  'MXFP4', 'IQ1_S', 'IQ1_M', 'IQ2_XXS', 'IQ2_XS', 'IQ2_S', 'IQ3_XXS', 'IQ3_S', 'IQ4_NL', 'IQ4_XS', 'TQ1_0', 'TQ2_0',
]);

export const GgufParamsSchema = z.strictObject({
  kind: z.literal('gguf'),
  container: ContainerRole.default('workspace'),
  path: AbsolutePath,
  expect: z
    .strictObject({
      /** general.file_type (llama_ftype), e.g. 15 = MOSTLY_Q4_K_M. */
      fileType: z.number().int().min(0).optional(),
      architecture: z.string().min(1).optional(),
      /** Read from the tensor table, not the name: these types must hold at least minShare of the 2-D weights. */
      tensorTypes: z
        .strictObject({
          majority: z.array(GgmlType).min(1),
          minShare: z.number().gt(0).max(1).default(0.5),
          forbid: z.array(GgmlType).optional(),
        })
        .optional(),
      /** Size of this file ÷ size of `source`. */
      sizeRatio: z
        .strictObject({ source: AbsolutePath, min: z.number().positive().optional(), max: z.number().positive().optional() })
        .refine((r) => r.min !== undefined || r.max !== undefined, { message: 'give min or max' })
        .optional(),
      /** Load it in the trusted toolbox and generate this many tokens. */
      loads: z.strictObject({ generateTokens: z.number().int().min(1).max(256).default(8) }).optional(),
    })
    .prefault({}),
  timeoutMs: Timeout.default(120_000),
});

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

export const ProcessParamsSchema = z.strictObject({
  kind: z.literal('process'),
  container: ContainerRole.default('workspace'),
  match: ProcessMatchSchema,
  expect: z
    .strictObject({
      running: z.boolean().default(true),
      count: z.strictObject({ min: z.number().int().min(0).default(1), max: z.number().int().min(1).optional() }).optional(),
      user: z.string().min(1).optional(),
      /** Command-line options, any spelling of the flag: { flags: ["-t", "--threads"], equals: "2" }. */
      args: z.array(z.strictObject({ flags: z.array(z.string().regex(/^-{1,2}[A-Za-z0-9][\w-]*$/)).min(1), equals: z.string() })).optional(),
      /** The process listens on this TCP port. */
      listens: Port.optional(),
      /**
       * Identity: the executable the kernel runs for every matched process (/proc/<pid>/exe, seen
       * from the host) has the content of the file the seat's image ships at this path. argv[0],
       * the process name and the file's name prove nothing.
       */
      executable: AbsolutePath.optional(),
      /** Identity: every matched process has these files memory-mapped or open (a served model). */
      opens: z.array(AbsolutePath).min(1).optional(),
    })
    .prefault({}),
  timeoutMs: Timeout.default(10_000),
});

export const ContainerParamsSchema = z
  .strictObject({
  kind: z.literal('container'),
  /** "inner": containers of the seat's own Docker daemon (docker-in-seat tasks); "seat": the seat's containers. */
  scope: z.enum(['inner', 'seat']).default('inner'),
  /**
   * Judge an image of the seat's own daemon (scope inner) by its config instead of containers:
   * exposed ports, a non-root user, labels, and that it was built on a preloaded base image.
   */
  image: z
    .strictObject({
      ref: z.string().min(1),
      exposes: z.array(Port).optional(),
      /** Config.User must name a user other than root (empty, "root", "0" and "0:…" are root). */
      nonRootUser: z.boolean().optional(),
      labels: z.record(z.string(), z.string()).optional(),
      /** The image's layers start with this image's layers (built FROM it, not imported). */
      basedOn: z.string().min(1).optional(),
    })
    .optional(),
  match: z
    .strictObject({
      name: Regex.optional(),
      image: Regex.optional(),
      labels: z.record(z.string(), z.string()).optional(),
      composeService: z.string().min(1).optional(),
    })
    .refine((m) => Object.values(m).some((v) => v !== undefined), { message: 'give at least one matcher' })
    .optional(),
  expect: z
    .strictObject({
      running: z.boolean().default(true),
      count: z.strictObject({ min: z.number().int().min(0).default(1), max: z.number().int().min(1).optional() }).optional(),
      healthy: z.boolean().optional(),
      restartPolicy: z.enum(['no', 'always', 'unless-stopped', 'on-failure']).optional(),
      maxCpus: z.number().positive().optional(),
      maxMemoryMiB: z.number().int().positive().optional(),
      publishes: z.array(Port).optional(),
      /** Config.User of the containers is not root. */
      nonRootUser: z.boolean().optional(),
    })
    .prefault({}),
  timeoutMs: Timeout.default(20_000),
  })
  .refine((p) => (p.match === undefined) !== (p.image === undefined), { message: 'give match (containers) or image, exactly one' })
  .refine((p) => p.image === undefined || p.scope === 'inner', { message: 'image checks read the seat\'s own daemon: scope must be inner', path: ['scope'] });

export const DisruptSchema = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('kill-process'),
    container: ContainerRole.default('workspace'),
    match: ProcessMatchSchema,
    signal: z.enum(['SIGKILL', 'SIGTERM', 'SIGINT']).default('SIGKILL'),
  }),
  z.strictObject({ action: z.literal('restart-container'), container: ContainerRole }),
  /**
   * A crash of a container in the seat's own daemon: its main process is killed from the host.
   * (`docker stop`/`docker kill` would count as a manual stop, which restart policies ignore.)
   */
  z.strictObject({
    action: z.literal('kill-inner-container'),
    match: z.strictObject({ name: Regex }),
    signal: z.enum(['SIGKILL', 'SIGTERM', 'SIGINT']).default('SIGKILL'),
  }),
]);

export const RecoveryParamsSchema = z.strictObject({
  kind: z.literal('recovery'),
  disrupt: DisruptSchema,
  /** After the disruption the service must answer like this again within `withinSeconds`. */
  then: z.strictObject({
    target: TargetSchema,
    path: UrlPath.default('/health'),
    status: z.number().int().min(100).max(599).default(200),
    withinSeconds: z.number().int().min(1).max(600),
    pollMs: z.number().int().min(100).max(10_000).default(1_000),
  }),
  timeoutMs: Timeout.default(180_000),
});

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

/** A JSON value at a pointer, for the `json-file` probe. */
const JsonExpectation = z
  .strictObject({
    /** RFC 6901 pointer into the document ("" is the whole document). */
    pointer: z.string().regex(/^(\/.*)?$/),
    /** Deep equality; the key order of objects does not matter, numbers compare exactly. */
    equals: z.unknown().optional(),
    /** A number within ±tolerance of value. */
    near: z.strictObject({ value: z.number(), tolerance: z.number().min(0) }).optional(),
  })
  .refine((j) => (j.equals !== undefined) !== (j.near !== undefined), { message: 'give equals or near, exactly one' });

export const JsonFileParamsSchema = z.strictObject({
  kind: z.literal('json-file'),
  container: ContainerRole.default('workspace'),
  path: AbsolutePath,
  expect: z.array(JsonExpectation).min(1),
  timeoutMs: Timeout.default(10_000),
});

export const ResourceSamplesParamsSchema = z.strictObject({
  kind: z.literal('resource-samples'),
  container: ContainerRole.default('workspace'),
  /** The candidate's JSONL samples: {"ts", "pid", "cpu_percent", "rss_mib"} per line. */
  path: AbsolutePath,
  /** The process the samples are about (the seat's model server). */
  process: ProcessMatchSchema,
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
    })
    .prefault({})
    // Below minCpuShare, so no constant cpu_percent can be both "busy" and "idle".
    .refine((e) => e.maxIdleShare < e.minCpuShare, { message: 'maxIdleShare must be below minCpuShare', path: ['maxIdleShare'] }),
  timeoutMs: Timeout.default(60_000),
});

export const ProbeParamsSchema = z.discriminatedUnion('kind', [
  HttpParamsSchema,
  OpenAIChatParamsSchema,
  LoadParamsSchema,
  RateLimitParamsSchema,
  GgufParamsSchema,
  FileParamsSchema,
  ProcessParamsSchema,
  ContainerParamsSchema,
  RecoveryParamsSchema,
  PrometheusParamsSchema,
  NvidiaSmiParamsSchema,
  JsonFileParamsSchema,
  ResourceSamplesParamsSchema,
]);

export type ProbeParams = z.output<typeof ProbeParamsSchema>;
export type ProbeKind = ProbeParams['kind'];
export const PROBE_KINDS = [
  'http', 'openai-chat', 'load', 'rate-limit', 'gguf', 'file', 'process', 'container', 'recovery', 'prometheus', 'nvidia-smi',
  'json-file', 'resource-samples',
] as const satisfies readonly ProbeKind[];
export type ParamsOf<K extends ProbeKind> = Extract<ProbeParams, { kind: K }>;
