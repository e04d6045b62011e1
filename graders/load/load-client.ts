/**
 * The load generator of the `load` probe: a fixed number of requests over keep-alive connections,
 * one per concurrent worker, on node:http's own agent. It is deliberately lean (one URL resolved
 * once, the body serialised once, no per-request fetch/Headers/stream machinery) because every
 * millisecond the client spends on a starved host shows up as the service's latency.
 *
 * Latency of one request: from just before the request is written to the end of the response
 * body, on the harness host's monotonic clock. Percentiles are nearest-rank over the successful
 * (2xx) requests.
 */
import http from 'node:http';
import https from 'node:https';
import { getPriority, setPriority } from 'node:os';
import type { HttpAttempt } from '../shared/http-request.js';
import { clip, clipHeaders, type Deadline, type HttpEvidence } from '../probe.js';

/** Stated in the evidence beside the figures. */
export const LATENCY_METHOD =
  'nearest-rank percentiles over 2xx requests; latency = from writing the request to the end of the response body, ' +
  'measured on the harness host (performance.now); keep-alive connections, one per concurrent worker; ' +
  'the client runs at raised CPU priority (nice -10) where the harness may set it, so a busy host slows the service rather than the measuring';

export interface LoadTarget {
  url: URL;
  method: string;
  headers: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
}

export interface LoadRun {
  /** Latencies (ms) of the 2xx requests, in completion order. */
  latencies: number[];
  /** Status code, `timeout` or the error code → count. */
  statuses: Map<string, number>;
  /** Requests that were not 2xx (or got no response). */
  errors: number;
  /** The first request that got no response at all, for judging whose fault that is. */
  firstNoResponse: Exclude<HttpAttempt, { kind: 'response' }> | null;
  /** The first non-2xx answer (status and the start of its body), to show what went wrong. */
  firstErrorResponse: { status: number; body: string } | null;
  /** From the first request written to the last one finished. */
  wallMs: number;
  bytesReceived: number;
  /** Whether the client ran at raised CPU priority (the harness may not, e.g. without root). */
  clientPriorityRaised: boolean;
}

/** The nice value the client measures at. */
const CLIENT_NICE = -10;
/** Runs measuring now in this process; the priority goes back when the last one ends. */
let measuring = 0;
let niceBefore = 0;
let raisedNow = false;

/**
 * Raise this process's CPU priority while a load run measures: on a host whose cores are busy (the
 * candidates' own services, other seats) a client at normal priority waits for the CPU and its
 * waiting is counted as the service's latency. bench/load-bench.ts: with 24 busy processes on 2
 * cores the client read p50/p95 16%/12% above wrk at normal priority, 2%/4% raised. Nested runs
 * share one raise, so a run ending never lowers another's.
 */
function raisePriority(): () => void {
  if (measuring++ === 0) {
    try {
      niceBefore = getPriority();
      if (niceBefore > CLIENT_NICE) setPriority(CLIENT_NICE);
      raisedNow = true;
    } catch {
      raisedNow = false;
    }
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--measuring === 0 && raisedNow) {
      try {
        setPriority(niceBefore);
      } catch {
        // Lowering back is always allowed; nothing to do if the process is gone.
      }
      raisedNow = false;
    }
  };
}

/** Nearest-rank percentile (p in 0..100) of unsorted values; null for none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Bytes of a non-2xx body kept for the evidence. */
const ERROR_BODY_BYTES = 1024;

type One =
  | { kind: 'response'; status: number; ms: number; bytes: number; head?: Buffer }
  | { kind: 'slow'; ms: number }
  | { kind: 'unreachable'; code: string; ms: number };

/**
 * Send `requests` requests, `concurrency` at a time. Every answer, timeout or refusal is counted;
 * only the harness's own deadline throws (its reason, PROBE_DEADLINE). A request longer than
 * `timeoutMs` is the service's slowness (`timeout`).
 */
export async function runLoad(
  target: LoadTarget,
  opts: { requests: number; concurrency: number; timeoutMs: number; /** Off only to measure what the raise is worth (bench). */ raisePriority?: boolean },
  deadline: Deadline,
): Promise<LoadRun> {
  deadline.check();
  const { url } = target;
  const lib = url.protocol === 'https:' ? https : http;
  const agent = new lib.Agent({ keepAlive: true, maxSockets: opts.concurrency, maxFreeSockets: opts.concurrency });
  const headers: Record<string, string> = { ...target.headers };
  let body: Buffer | undefined;
  if (target.body !== undefined) {
    body = Buffer.from(typeof target.body === 'string' ? target.body : JSON.stringify(target.body));
    if (typeof target.body !== 'string' && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    headers['content-length'] = String(body.length);
  }
  const reqOpts: http.RequestOptions = {
    agent,
    method: target.method,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port || (url.protocol === 'https:' ? 443 : 80),
    path: url.pathname + url.search,
    headers,
  };
  const evidenceRequest: HttpEvidence['request'] = {
    method: target.method,
    url: url.href,
    headers: clipHeaders(Object.entries(headers)),
    ...(body !== undefined ? { body: clip(body.toString('utf8')) } : {}),
  };

  const latencies: number[] = [];
  const statuses = new Map<string, number>();
  let errors = 0;
  let bytesReceived = 0;
  let firstNoResponse: LoadRun['firstNoResponse'] = null;
  let firstErrorResponse: LoadRun['firstErrorResponse'] = null;
  let keptErrorBody = false;
  let next = 0;
  const inFlight = new Set<http.ClientRequest>();
  const onDeadline = (): void => {
    for (const r of inFlight) r.destroy();
  };
  deadline.signal.addEventListener('abort', onDeadline, { once: true });

  const one = (): Promise<One> =>
    new Promise<One>((resolve) => {
      let settled = false;
      let timedOut = false;
      let bytes = 0;
      let head: Buffer[] | undefined;
      let t0 = 0;
      const settle = (o: One): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        inFlight.delete(req);
        resolve(o);
      };
      const fail = (e: unknown): void => {
        const ms = performance.now() - t0;
        settle(timedOut ? { kind: 'slow', ms } : { kind: 'unreachable', code: errorCode(e), ms });
      };
      const req = lib.request(reqOpts, (res) => {
        const status = res.statusCode ?? 0;
        if ((status < 200 || status >= 300) && !keptErrorBody) head = [];
        res.on('data', (c: Buffer) => {
          if (head && bytes < ERROR_BODY_BYTES) head.push(c);
          bytes += c.length;
        });
        res.on('end', () => settle({ kind: 'response', status, ms: performance.now() - t0, bytes, ...(head ? { head: Buffer.concat(head).subarray(0, ERROR_BODY_BYTES) } : {}) }));
        res.on('error', fail);
        // Closed before the body ended: no complete response.
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' }));
        });
      });
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy();
      }, opts.timeoutMs);
      inFlight.add(req);
      req.on('error', fail);
      // The clock starts as the request is handed to the connection, after the client's own setup.
      t0 = performance.now();
      req.end(body);
    });

  const count = (key: string): void => void statuses.set(key, (statuses.get(key) ?? 0) + 1);
  const worker = async (): Promise<void> => {
    while (next < opts.requests && !deadline.signal.aborted) {
      next++;
      const o = await one();
      if (deadline.signal.aborted) return;
      if (o.kind === 'response') {
        count(String(o.status));
        bytesReceived += o.bytes;
        if (o.status >= 200 && o.status < 300) latencies.push(o.ms);
        else {
          errors++;
          if (o.head && !keptErrorBody) {
            keptErrorBody = true;
            firstErrorResponse = { status: o.status, body: o.head.toString('utf8') };
          }
        }
        continue;
      }
      errors++;
      const ms = Math.round(o.ms * 10) / 10;
      if (o.kind === 'slow') {
        count('timeout');
        firstNoResponse ??= { kind: 'slow', evidence: { kind: 'http', request: evidenceRequest, failure: `timeout after ${opts.timeoutMs} ms`, durationMs: ms } };
      } else {
        count(o.code);
        firstNoResponse ??= { kind: 'unreachable', code: o.code, evidence: { kind: 'http', request: evidenceRequest, failure: o.code, durationMs: ms } };
      }
    }
  };
  const lower = opts.raisePriority === false ? () => undefined : raisePriority();
  const clientPriorityRaised = opts.raisePriority !== false && raisedNow;
  const t0 = performance.now();
  let wallMs: number;
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } finally {
    wallMs = performance.now() - t0;
    lower();
    deadline.signal.removeEventListener('abort', onDeadline);
    agent.destroy();
  }
  if (deadline.signal.aborted) throw deadline.signal.reason;
  return { latencies, statuses, errors, firstNoResponse, firstErrorResponse, wallMs, bytesReceived, clientPriorityRaised };
}

function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code) return code;
  return e instanceof Error ? e.name : String(e);
}

/** Figures of one run, as the evidence shows them (ms to 0.1, throughput to 0.01). */
export interface LoadFigures {
  requests: number;
  concurrency: number;
  statuses: Record<string, number>;
  errorRate: number;
  p50Ms: number | null;
  p90Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  throughputRps: number;
  wallSeconds: number;
  bytesReceived: number;
  /** Whether the client measured at raised CPU priority. */
  clientPriorityRaised: boolean;
  /** The first non-2xx answer, when there was one. */
  firstError?: { status: number; body: string };
}

export function figuresOf(run: LoadRun, requests: number, concurrency: number): { figures: LoadFigures; p95: number | null; rps: number } {
  const sorted = [...run.latencies].sort((a, b) => a - b);
  const at = (p: number): number | null => (sorted.length ? sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]! : null);
  const r1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
  const rps = run.wallMs > 0 ? run.latencies.length / (run.wallMs / 1000) : 0;
  const p95 = at(95);
  return {
    p95,
    rps,
    figures: {
      requests,
      concurrency,
      statuses: Object.fromEntries(run.statuses),
      errorRate: run.errors / requests,
      p50Ms: r1(at(50)),
      p90Ms: r1(at(90)),
      p95Ms: r1(p95),
      p99Ms: r1(at(99)),
      maxMs: r1(sorted.length ? sorted[sorted.length - 1]! : null),
      throughputRps: Math.round(rps * 100) / 100,
      wallSeconds: Math.round(run.wallMs) / 1000,
      bytesReceived: run.bytesReceived,
      clientPriorityRaised: run.clientPriorityRaised,
      ...(run.firstErrorResponse ? { firstError: run.firstErrorResponse } : {}),
    },
  };
}
