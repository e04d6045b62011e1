/**
 * The probe contract. A probe looks at one seat from outside the candidate's reach and says
 * pass | partial | fail | error with a score in [0, 1] and the evidence it judged on.
 *
 * `error` means the harness could not judge (its own deadline, the engine, its own network path
 * into the seat): never a pass, never silently a fail, and the check can be graded again.
 * Everything the candidate controls being absent, wrong or too slow is `fail`.
 */
import { z } from 'zod';
import { DeploylabError, asDeploylabError, type Bilingual } from '../runner/core/errors.js';
import { issuesOf } from '../runner/core/validation.js';
import type { Endpoint as DriverEndpoint, ToolboxRun } from '../runner/sandbox/driver.js';

// ---------------------------------------------------------------------------------------------
// Outcome and evidence

export const PROBE_STATUSES = ['pass', 'partial', 'fail', 'error'] as const;
export type ProbeStatus = (typeof PROBE_STATUSES)[number];

/** Bounds keep one outcome small enough to store per check per seat and to show in a browser. */
export const EVIDENCE_LIMITS = {
  /** Characters of any one text field (body, stdout, file excerpt). */
  text: 8192,
  /** Metric samples in one metrics entry. */
  samples: 200,
  /** Entries in one outcome; later ones are dropped and counted. */
  entries: 50,
  /** Header pairs kept per request/response. */
  headers: 40,
} as const;

const clippedText = z.object({
  text: z.string().max(EVIDENCE_LIMITS.text),
  /** Length of the original before clipping (characters, or bytes for binary data). */
  length: z.number().int().nonnegative(),
  truncated: z.boolean(),
});
export type ClippedText = z.infer<typeof clippedText>;

const headerList = z.array(z.tuple([z.string(), z.string()])).max(EVIDENCE_LIMITS.headers);
const bilingual = z.object({ zh: z.string(), en: z.string() });

const httpEvidence = z.object({
  kind: z.literal('http'),
  request: z.object({ method: z.string(), url: z.string(), headers: headerList, body: clippedText.optional() }),
  response: z
    .object({ status: z.number().int(), headers: headerList, body: clippedText })
    .optional(),
  /** Set when no response came back: the error code (ECONNREFUSED, timeout, ...). */
  failure: z.string().optional(),
  durationMs: z.number().nonnegative(),
});

const commandEvidence = z.object({
  kind: z.literal('command'),
  argv: z.array(z.string()),
  /** Where it ran: always a trusted place (host, toolbox container), never the candidate's binaries. */
  where: z.string(),
  exitCode: z.number().int().nullable(),
  stdout: clippedText,
  stderr: clippedText,
  durationMs: z.number().nonnegative(),
});

const fileEvidence = z.object({
  kind: z.literal('file'),
  path: z.string(),
  exists: z.boolean(),
  size: z.number().int().nonnegative().optional(),
  mode: z.string().optional(),
  uid: z.number().int().optional(),
  gid: z.number().int().optional(),
  sha256: z.string().optional(),
  excerpt: clippedText.optional(),
});

const metricSample = z.object({
  name: z.string(),
  labels: z.record(z.string(), z.string()),
  value: z.number(),
});
const metricsEvidence = z.object({
  kind: z.literal('metrics'),
  source: z.string(),
  samples: z.array(metricSample).max(EVIDENCE_LIMITS.samples),
  /** Samples present in the source but not kept. */
  omitted: z.number().int().nonnegative(),
});

const noteEvidence = z.object({ kind: z.literal('note'), text: bilingual, data: z.record(z.string(), z.unknown()).optional() });

export const evidenceSchema = z.discriminatedUnion('kind', [
  httpEvidence,
  commandEvidence,
  fileEvidence,
  metricsEvidence,
  noteEvidence,
]);
export type Evidence = z.infer<typeof evidenceSchema>;
export type HttpEvidence = z.infer<typeof httpEvidence>;
export type MetricSample = z.infer<typeof metricSample>;

export const probeOutcomeSchema = z
  .object({
    status: z.enum(PROBE_STATUSES),
    score: z.number().min(0).max(1),
    summary: bilingual,
    evidence: z.array(evidenceSchema).max(EVIDENCE_LIMITS.entries),
    /** Entries dropped beyond EVIDENCE_LIMITS.entries. */
    evidenceOmitted: z.number().int().nonnegative().default(0),
    /** For `error`: why the harness could not judge. */
    error: z.object({ code: z.string(), fault: z.string(), message: bilingual }).optional(),
    durationMs: z.number().nonnegative().optional(),
  })
  .superRefine((o, ctx) => {
    const bad = (message: string): void => void ctx.addIssue({ code: 'custom', message, path: ['score'] });
    if (o.status === 'pass' && o.score !== 1) bad('pass must have score 1');
    if ((o.status === 'fail' || o.status === 'error') && o.score !== 0) bad(`${o.status} must have score 0`);
    if (o.status === 'partial' && !(o.score > 0 && o.score < 1)) bad('partial must have 0 < score < 1');
    if (o.status === 'error' && !o.error) ctx.addIssue({ code: 'custom', message: 'error needs error details', path: ['error'] });
  });
export type ProbeOutcome = z.infer<typeof probeOutcomeSchema>;

export function clip(value: string | Buffer, max: number = EVIDENCE_LIMITS.text): ClippedText {
  if (typeof value === 'string') {
    return value.length <= max
      ? { text: value, length: value.length, truncated: false }
      : { text: value.slice(0, max), length: value.length, truncated: true };
  }
  // Binary data is shown as UTF-8 with replacement characters; length is in bytes.
  const text = value.subarray(0, max).toString('utf8').slice(0, max);
  return { text, length: value.length, truncated: value.length > max };
}

export function clipHeaders(h: Iterable<[string, string]>): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of h) {
    if (out.length >= EVIDENCE_LIMITS.headers) break;
    out.push([k, v.length > 512 ? v.slice(0, 512) : v]);
  }
  return out;
}

export function boundSamples(source: string, samples: MetricSample[]): z.infer<typeof metricsEvidence> {
  return {
    kind: 'metrics',
    source,
    samples: samples.slice(0, EVIDENCE_LIMITS.samples),
    omitted: Math.max(0, samples.length - EVIDENCE_LIMITS.samples),
  };
}

export function note(zh: string, en: string, data?: Record<string, unknown>): Evidence {
  return data ? { kind: 'note', text: { zh, en }, data } : { kind: 'note', text: { zh, en } };
}

/** Score → status: 1 pass, 0 fail, anything between partial. */
export function graded(score: number, summary: Bilingual, evidence: Evidence[]): ProbeOutcome {
  if (!Number.isFinite(score) || score < 0 || score > 1) {
    throw new DeploylabError({
      code: 'PROBE_BAD_SCORE',
      fault: 'bug',
      message: { zh: `探针给出的分数无效：${score}`, en: `probe produced an invalid score: ${score}` },
    });
  }
  const status: ProbeStatus = score === 1 ? 'pass' : score === 0 ? 'fail' : 'partial';
  return bounded({ status, score, summary, evidence, evidenceOmitted: 0 });
}

export function passed(summary: Bilingual, evidence: Evidence[]): ProbeOutcome {
  return graded(1, summary, evidence);
}

export function failed(summary: Bilingual, evidence: Evidence[]): ProbeOutcome {
  return graded(0, summary, evidence);
}

export function errored(err: DeploylabError, evidence: Evidence[]): ProbeOutcome {
  return bounded({
    status: 'error',
    score: 0,
    summary: { zh: `无法评判：${err.zh}`, en: `could not judge: ${err.message}` },
    evidence,
    evidenceOmitted: 0,
    error: { code: err.code, fault: err.fault, message: { zh: err.zh, en: err.message } },
  });
}

function bounded(o: ProbeOutcome): ProbeOutcome {
  if (o.evidence.length <= EVIDENCE_LIMITS.entries) return o;
  return {
    ...o,
    evidence: o.evidence.slice(0, EVIDENCE_LIMITS.entries),
    evidenceOmitted: o.evidenceOmitted + o.evidence.length - EVIDENCE_LIMITS.entries,
  };
}

// ---------------------------------------------------------------------------------------------
// Deadline

/** The harness's own time budget for one probe run. Overrunning it is `error`, not `fail`. */
export class Deadline {
  readonly at: number;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  private constructor(at: number) {
    this.at = at;
    this.timer = setTimeout(() => this.controller.abort(deadlineError(this)), Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  static after(ms: number): Deadline {
    return new Deadline(Date.now() + ms);
  }

  remainingMs(): number {
    return Math.max(0, this.at - Date.now());
  }

  expired(): boolean {
    return Date.now() >= this.at;
  }

  /** Aborts when the deadline passes; pass it to fetch, sockets, engine calls. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * A signal for one candidate-facing step allowed `ms`: it also aborts at the deadline. Use
   * `Deadline.timedOutBy` afterwards to tell the candidate's slowness (fail) from the harness's
   * deadline (error).
   */
  stepSignal(ms: number): AbortSignal {
    return AbortSignal.any([this.signal, AbortSignal.timeout(ms)]);
  }

  /** Throws PROBE_DEADLINE (infrastructure) once the deadline has passed. */
  check(): void {
    if (this.expired()) throw deadlineError(this);
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}

function deadlineError(d: Deadline): DeploylabError {
  return new DeploylabError({
    code: 'PROBE_DEADLINE',
    fault: 'infrastructure',
    message: { zh: '探针超出了评分程序自己的时限', en: "the probe overran the harness's own deadline" },
    hint: { zh: '主机过载或时限过短；可重新评分', en: 'host overloaded or deadline too short; re-grade the check' },
    details: { deadline: new Date(d.at).toISOString() },
  });
}

// ---------------------------------------------------------------------------------------------
// What a probe may ask of a seat

/**
 * Ports the WHATWG fetch standard refuses to connect to ("bad ports"); Node's fetch enforces the
 * list, so a probe aimed at one would report the candidate's service as unreachable; probes
 * refuse such a target as a config error (the task must use another port).
 */
export const FETCH_BAD_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103,
  104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513,
  514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719,
  1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679,
  6697, 10080,
]);

/** Where a seat service answers: the driver's own type. */
export type Endpoint = DriverEndpoint;

export interface SeatFile {
  path: string;
  /** Size of the file in the seat, even when `data` holds only a prefix. */
  size: number;
  /** Permission bits (e.g. 0o644), without the file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  data: Buffer;
  /** True when `data` is only the first `maxBytes` bytes. */
  truncated: boolean;
}

/** One process of the seat, from the host's process table (field names as the sandbox driver's). */
export interface SeatProcess {
  /** PID as the host sees it (what nvidia-smi reports). */
  hostPid: number;
  ppid: number;
  user: string;
  /** Full command line. */
  command: string;
  /** Which container of the seat runs it: 'workspace' or a service name. */
  role: string;
  /**
   * Whose PID `hostPid` is: 'host' (Docker: the engine host's, readable in its /proc when the
   * harness runs there as root) or 'pod' (Kubernetes: the pod's own; the host's /proc is out of
   * reach). Absent means 'host'.
   */
  pidNamespace?: 'host' | 'pod';
}

/**
 * Exactly what probes need from a seat. The sandbox driver satisfies it with an adapter; every
 * method works from outside the candidate's reach (engine archive API, host process table, the
 * harness's own network path), so no probe runs a binary the candidate could have replaced.
 *
 * Errors: a method throws DeploylabError with fault 'infrastructure' only for failures of the
 * harness's own path (engine down, seat network unreachable from the harness); things the
 * candidate caused (file absent → null, service not listening) are not thrown as infrastructure.
 */
export interface SeatHandle {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * Where the harness reaches `port` of a seat container (default: the workspace). A container the
   * candidate stopped is their fault: throw with fault 'candidate' (the probe then fails).
   */
  endpoint(port: number, opts?: { container?: string }): Promise<Endpoint>;
  /**
   * A regular file through the engine's archive API, or null when nothing is at `path`. A file
   * larger than `maxBytes` (default 16 MiB) comes back as its first `maxBytes` bytes with
   * `truncated` set and the real `size` (a GGUF header check reads a prefix of a multi-GB file).
   * Something other than a regular file at `path` throws (fault candidate).
   */
  readFile(path: string, opts?: { container?: string; maxBytes?: number }): Promise<SeatFile | null>;
  /** The seat's processes, all containers, from the host's process table. */
  listProcesses(): Promise<SeatProcess[]>;
  /**
   * Confirms the harness's own path into the seat: the engine answers, the seat exists, its
   * workspace container runs (the candidate, uid 1000, cannot stop it) and the harness's route into
   * the seat network is in place. Throws (fault 'infrastructure') otherwise. It must not depend on
   * anything the candidate can stop, or a candidate could turn a fail into an error.
   */
  checkPath(): Promise<void>;
  /**
   * Run a trusted tool (the toolbox image: llama.cpp tools, nginx, python) on copies of seat files,
   * in a container of its own without network; the candidate's binaries never run. Each `copy`
   * puts the seat file `from` at `to` inside the toolbox. A seat file that is missing or not a
   * regular file throws (fault candidate). Optional: a harness without a toolbox leaves it out and
   * the checks that need it (seat capability `toolbox`, capabilities.ts) report `error` (PROBE_NEEDS_TOOLBOX).
   */
  /**
   * The file the seat container's image ships at `path` (symlinks followed), read from the image
   * the harness built rather than from the running container, so nothing the candidate did in the
   * seat changes it; null when the image has nothing there. Optional: without it, the checks that
   * need it (seat capability `image-files`, capabilities.ts) report `error` (PROBE_NEEDS_ENGINE).
   */
  imageFile?(path: string, opts?: { container?: string }): Promise<{ path: string; size: number; sha256: string } | null>;
  runTrusted?(opts: {
    copy: { from: string; to: string; container?: string }[];
    cmd: string[];
    timeoutMs: number;
    /**
     * 'seat': the toolbox container joins the seat's network namespace (the live services on
     * 127.0.0.1) instead of having none; the candidate's binaries still never run.
     */
    network?: 'none' | 'seat';
    /** The grader's own files (scripts, inputs) put into the toolbox beside the seat copies, root-owned. */
    put?: { path: string; content: string | Buffer; mode?: number }[];
    /** Toolbox files to bring back after the command (in `TrustedRun.files`; absent ones are left out). */
    collect?: string[];
  }): Promise<TrustedRun>;
}

/** One run in the trusted toolbox, as the driver's toolbox reports it. */
export type TrustedRun = ToolboxRun;

// ---------------------------------------------------------------------------------------------
// The probe interface and the runner's wrapper

export interface Probe<S extends z.ZodType = z.ZodType> {
  readonly kind: string;
  readonly params: S;
  run(seat: SeatHandle, params: z.output<S>, deadline: Deadline): Promise<ProbeOutcome>;
}

/** Declare a probe with its parameter type inferred from the schema. */
export function defineProbe<S extends z.ZodType>(p: Probe<S>): Probe<S> {
  return p;
}

/**
 * Run one probe and always return an outcome:
 * - parameters invalid → `error` (fault config: the task spec is wrong, fix it and re-grade);
 * - the harness's deadline passed → `error` (PROBE_DEADLINE);
 * - a thrown DeploylabError with fault candidate → `fail` (e.g. a file that does not parse);
 * - any other throw (infrastructure, config, bug, unknown) → `error`;
 * - an outcome that breaks the contract (score out of range, status/score mismatch) → `error`.
 */
export async function runProbe(
  probe: Probe,
  seat: SeatHandle,
  rawParams: unknown,
  deadline: Deadline,
): Promise<ProbeOutcome> {
  const started = performance.now();
  const finish = (o: ProbeOutcome): ProbeOutcome => ({ ...o, durationMs: Math.round(performance.now() - started) });

  const parsed = probe.params.safeParse(rawParams);
  if (!parsed.success) {
    const issues = issuesOf(parsed.error, `probe ${probe.kind}`);
    const lines = issues.map((i) => `${i.path}: ${i.problem}`).join('; ');
    return finish(
      errored(
        new DeploylabError({
          code: 'PROBE_PARAMS_INVALID',
          fault: 'config',
          message: { zh: `探针 ${probe.kind} 的参数无效：${lines}`, en: `invalid parameters for probe ${probe.kind}: ${lines}` },
          details: { issues },
        }),
        [],
      ),
    );
  }

  let onAbort: (() => void) | undefined;
  const overrun = new Promise<never>((_, reject) => {
    onAbort = () => reject(deadline.signal.reason);
    if (deadline.signal.aborted) onAbort();
    else deadline.signal.addEventListener('abort', onAbort, { once: true });
  });
  overrun.catch(() => undefined);
  try {
    const outcome = await Promise.race([probe.run(seat, parsed.data, deadline), overrun]);
    const checked = probeOutcomeSchema.safeParse(outcome);
    if (!checked.success) {
      const lines = issuesOf(checked.error, probe.kind).map((i) => `${i.path}: ${i.problem}`).join('; ');
      return finish(
        errored(
          new DeploylabError({
            code: 'PROBE_BAD_OUTCOME',
            fault: 'bug',
            message: { zh: `探针 ${probe.kind} 的结果不合约定：${lines}`, en: `probe ${probe.kind} broke the outcome contract: ${lines}` },
          }),
          [],
        ),
      );
    }
    return finish(checked.data);
  } catch (e) {
    const err = asDeploylabError(e);
    if (err.fault === 'candidate') {
      return finish(failed({ zh: err.zh, en: err.message }, [note(err.zh, err.message, { code: err.code })]));
    }
    return finish(errored(err, []));
  } finally {
    if (onAbort) deadline.signal.removeEventListener('abort', onAbort);
  }
}

/**
 * The candidate's endpoint did not answer (refused, reset, unreachable). Whose fault? Ask the
 * seat to confirm the harness's own path first: when that is broken the outcome is `error`
 * (re-gradable); when it is fine the candidate's service is absent and the outcome is `fail`.
 */
export async function judgeUnreachable(
  seat: SeatHandle,
  what: Bilingual,
  evidence: Evidence[],
): Promise<ProbeOutcome> {
  try {
    await seat.checkPath();
  } catch (e) {
    const err = asDeploylabError(e);
    return errored(err, [...evidence, note('评分程序到考位的网络路径不通', "the harness's own path to the seat is down")]);
  }
  return failed(what, [...evidence, note('评分程序到考位的路径正常', "the harness's own path to the seat is fine")]);
}
