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
  /**
   * Provenance: the answers must be the reference model server's own answers to exactly the
   * grader's requests. The probe sends `requests` requests, each with a fresh random nonce in its
   * one user message (`prompt` replaced by `message` with `{nonce}` filled in), and the same
   * model, max_tokens, stream and temperature 0 to the candidate and to `target` (a model server
   * the harness controls, e.g. the task's own backend that the candidate's wrapper must call; it
   * must decode greedily and without a prompt cache, llama-server --temp 0 --no-cache-prompt, so
   * that the same request gives the same text). Nonces are chosen first on the reference: its
   * answers must be well-formed, non-empty and differ pairwise (streamed: also identical to the
   * unstreamed answer), so one replayed or canned text cannot match them all. After the
   * candidate's answers the reference is asked again; each answer's text (message content, or the
   * concatenated stream deltas) must equal a reference text of its own request.
   */
  provenance: z
    .strictObject({
      target: TargetSchema,
      path: UrlPath.default('/v1/chat/completions'),
      /** The user message; `{nonce}` is replaced by 16 random hex digits per request. */
      message: z.string().includes('{nonce}', { message: 'must contain {nonce}' }).default('{nonce}'),
      /** At least two, so that no single text can match them all (the random model's answers often coincide). */
      requests: z.number().int().min(2).max(8).default(3),
      /** Nonces tried on the reference before giving up (an error: the reference cannot serve). */
      attempts: z.number().int().min(2).max(64).default(24),
    })
    .optional(),
  expect: z
    .strictObject({
      minCompletionTokens: z.number().int().min(1).default(1),
      /** The response must carry usage.prompt_tokens / usage.completion_tokens. */
      usage: z.boolean().default(true),
      /** The response's `model` must equal this. */
      model: z.string().min(1).optional(),
      /**
       * The server's own token counter must move by at least the completion tokens, so a fake
       * endpoint that returns canned JSON cannot pass. Supporting evidence only: side traffic
       * moves it too; `provenance` is what ties the answer to the model.
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

/**
 * The configuration an nginx master process has in force, followed for one request. The master is
 * found from the host (its /proc/<pid>/exe has the content of the image's `executable`; it was
 * started with `-c config`); the harness reloads it (SIGHUP, as `nginx -s reload` does) and waits
 * for new worker processes, so the files it then reads, with their includes and `-g` directives,
 * are what nginx runs; a file nginx refuses to load fails. The request (the server the harness's
 * connection to `port` reaches, the location serving `path`) is followed as nginx does, and the
 * limit_req in force there (inherited from server and http levels) is judged.
 */
export const NginxConfigParamsSchema = z.strictObject({
  kind: z.literal('nginx-config'),
  container: ContainerRole.default('workspace'),
  master: z.strictObject({ executable: AbsolutePath, config: AbsolutePath }),
  request: z.strictObject({
    port: Port,
    method: z.enum(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']).default('GET'),
    /** Path with an optional query string. */
    path: UrlPath,
  }),
  expect: z.strictObject({
    /** One limit_req in force for the request uses a zone with one of these keys and this rate, and this burst. */
    limitReq: z.strictObject({
      keys: z.array(z.string().regex(/^\$[A-Za-z0-9_]+$/, 'a variable such as $binary_remote_addr')).min(1),
      /** "2r/s" or "120r/m" (the same rate to nginx). */
      rate: z.string().regex(/^[1-9]\d*r\/[sm]$/, 'a rate such as 2r/s'),
      burst: z.number().int().min(0).optional(),
      /** limit_req_status in force. */
      status: z.number().int().min(400).max(599).optional(),
    }),
  }),
  timeoutMs: Timeout.default(20_000),
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
      /** llama.block_count (the number of transformer layers) as the header declares it. */
      blockCount: z.number().int().min(0).optional(),
      /**
       * The tensors are the ones the task's recipe makes: the grader builds its own file in the
       * trusted toolbox (the `build` commands in order, on the toolbox's own copy of the provided
       * models, never the seat's) and the candidate's file must hold the same tensors as its
       * `output`: names, types, shapes and data bytes. Metadata may differ. llama-quantize is
       * deterministic (same file at any thread count), so a doctored source, another preset or a
       * requantized intermediate shows in the data.
       */
      sameTensorsAs: z
        .strictObject({
          build: z.array(z.array(z.string().min(1)).min(1)).min(1),
          output: AbsolutePath,
        })
        .optional(),
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
      /**
       * Built from this Dockerfile: the image's history beyond `basedOn` lists the instructions of
       * the file's final stage (and of the stages it is built FROM), in order.
       */
      builtFrom: z.strictObject({ dockerfile: AbsolutePath, container: ContainerRole.default('workspace') }).optional(),
      /** A COPY or ADD step beyond `basedOn` put files into the image (its layer is not empty). */
      addsFiles: z.boolean().optional(),
    })
    .refine((i) => (i.builtFrom === undefined && i.addsFiles === undefined) || i.basedOn !== undefined, {
      message: 'builtFrom and addsFiles judge the history beyond the base: give basedOn',
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
      /** The containers run their image's own ENTRYPOINT and CMD (compose did not override them). */
      imageCommand: z.boolean().optional(),
      /**
       * The healthcheck really tests the service: the harness stops (SIGSTOP, from the host) every
       * process of the container and runs the container's own healthcheck command in it, which
       * must not succeed within its timeout (at most 30 s); once the processes continue
       * (SIGCONT) it must succeed.
       */
      healthcheckFailsWhenStopped: z.boolean().optional(),
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
    /**
     * Who the service is, judged as a `process` check (match, expect: executable, opens,
     * listens…): it must pass before the disruption, its processes must be among those killed,
     * and it must pass again, on new processes, for the service to count as recovered (a stand-in
     * that takes the port when the real server dies is not a recovery).
     */
    identity: z
      .strictObject({
        container: ContainerRole.default('workspace'),
        match: ProcessMatchSchema,
        expect: ProcessParamsSchema.shape.expect,
      })
      .optional(),
    /**
     * The recovered processes (those `identity` matches, else those the kill matched) descend
     * from a process like this: the supervisor restarted them, not a loop of the candidate's own.
     */
    startedBy: z.strictObject({ match: ProcessMatchSchema, user: z.string().min(1).optional() }).optional(),
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
    /**
     * The value is an object with exactly these keys, in any order: no key missing, none added
     * (a strict answer: extra candidates or notes beside the answer are not accepted).
     */
    keys: z.array(z.string()).min(1).optional(),
  })
  .refine((j) => [j.equals, j.near, j.keys].filter((x) => x !== undefined).length === 1, { message: 'give equals, near or keys, exactly one' });

export const JsonFileParamsSchema = z.strictObject({
  kind: z.literal('json-file'),
  container: ContainerRole.default('workspace'),
  path: AbsolutePath,
  expect: z.array(JsonExpectation).min(1),
  /**
   * A key repeated within one object (which JSON.parse would settle silently, the last one
   * winning) fails the file: two answers under one key are not one answer.
   */
  duplicateKeys: z.enum(['refuse', 'allow']).default('refuse'),
  timeoutMs: Timeout.default(10_000),
});

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

export const ProbeParamsSchema = z.discriminatedUnion('kind', [
  HttpParamsSchema,
  OpenAIChatParamsSchema,
  LoadParamsSchema,
  RateLimitParamsSchema,
  NginxConfigParamsSchema,
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
  'json-file', 'resource-samples', 'nginx-config',
] as const satisfies readonly ProbeKind[];
export type ParamsOf<K extends ProbeKind> = Extract<ProbeParams, { kind: K }>;
