/**
 * `http` probe: one request from the harness to a port of the seat, then expectations on the
 * status, headers, body, JSON fields and latency. No answer at all is judged by whose path is
 * broken (see judgeUnreachable); an answer slower than the candidate's allowance is a fail; the
 * harness's own deadline passing first is an error.
 */
import { z } from 'zod';
import { judge, jsonPath, regexSource, scoringSchema, show, type Assertion } from './assertions.js';
import {
  clip,
  clipHeaders,
  defineProbe,
  failed,
  judgeUnreachable,
  type Deadline,
  type HttpEvidence,
  type ProbeOutcome,
  seatPortSchema,
  type SeatHandle,
} from './probe.js';

const jsonExpectation = z
  .strictObject({
    /** `a.b[0].c`, optionally starting with `$.`. */
    path: z.string().min(1),
    equals: z.unknown().optional(),
    matches: regexSource.optional(),
    /** true: the field must be present (any value); false: it must be absent. */
    exists: z.boolean().optional(),
    /** Numeric bounds. */
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .refine((j) => ['equals', 'matches', 'exists', 'min', 'max'].some((k) => k in j), {
    message: 'give at least one of equals, matches, exists, min, max',
  });

export const httpParams = z.strictObject({
  port: seatPortSchema,
  container: z.string().optional(),
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']).default('GET'),
  path: z.string().startsWith('/').default('/'),
  headers: z.record(z.string(), z.string()).default({}),
  /** Request body: a string as is, anything else as JSON (content-type set unless given). */
  body: z.unknown().optional(),
  /** The candidate's allowance for the whole exchange; slower is a fail. */
  timeoutMs: z.number().int().positive().max(600_000).default(10_000),
  /** Response bytes kept for checking. */
  readBytes: z.number().int().positive().max(16 * 1024 * 1024).default(1024 * 1024),
  expect: z
    .strictObject({
      status: z.union([z.number().int(), z.array(z.number().int()).min(1)]).default(200),
      /** Header name → regular expression its value must match. */
      headers: z.record(z.string(), regexSource).default({}),
      bodyMatches: z.array(regexSource).default([]),
      json: z.array(jsonExpectation).default([]),
      maxLatencyMs: z.number().positive().optional(),
    })
    .prefault({}),
  scoring: scoringSchema,
});
export type HttpParams = z.output<typeof httpParams>;

export interface HttpExchange {
  status: number;
  headers: Headers;
  body: Buffer;
  /** Whole body received, not cut at readBytes. */
  complete: boolean;
  latencyMs: number;
}

export type HttpAttempt =
  | { kind: 'response'; exchange: HttpExchange; evidence: HttpEvidence }
  /** The candidate's allowance ran out: their service is too slow. */
  | { kind: 'slow'; evidence: HttpEvidence }
  /** No answer: refused, reset, unreachable. Whose fault is decided by judgeUnreachable. */
  | { kind: 'unreachable'; code: string; evidence: HttpEvidence };

async function readCapped(res: Response, cap: number): Promise<{ body: Buffer; complete: boolean }> {
  const parts: Buffer[] = [];
  let n = 0;
  if (!res.body) return { body: Buffer.alloc(0), complete: true };
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { body: Buffer.concat(parts), complete: true };
    parts.push(Buffer.from(value));
    n += value.length;
    if (n > cap) {
      await reader.cancel();
      return { body: Buffer.concat(parts).subarray(0, cap), complete: false };
    }
  }
}

function errorCode(e: unknown): string {
  const cause = (e as { cause?: { code?: string } } | null)?.cause;
  if (cause?.code) return cause.code;
  if (e instanceof Error) return e.name === 'TypeError' ? e.message : e.name;
  return String(e);
}

/**
 * One request to the seat. Throws only when the harness's own deadline passes (PROBE_DEADLINE,
 * infrastructure); every answer, timeout or refusal from the candidate's side is returned.
 */
export async function httpRequest(
  seat: SeatHandle,
  req: {
    port: number;
    container?: string | undefined;
    method: string;
    path: string;
    headers: Record<string, string>;
    body?: unknown;
    timeoutMs: number;
    readBytes: number;
  },
  deadline: Deadline,
): Promise<HttpAttempt> {
  const ep = await seat.endpoint(req.port, req.container ? { container: req.container } : undefined);
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  const url = `http://${host}:${ep.port}${req.path}`;
  const headers = new Headers(req.headers);
  let body: string | undefined;
  if (req.body !== undefined) {
    body = typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    if (typeof req.body !== 'string' && !headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  const request: HttpEvidence['request'] = {
    method: req.method,
    url,
    headers: clipHeaders(headers.entries()),
    ...(body !== undefined ? { body: clip(body) } : {}),
  };
  const candidateTimeout = AbortSignal.timeout(req.timeoutMs);
  const signal = AbortSignal.any([deadline.signal, candidateTimeout]);
  const t0 = performance.now();
  const elapsed = (): number => Math.round((performance.now() - t0) * 10) / 10;
  try {
    const res = await fetch(url, { method: req.method, headers, body: body ?? null, signal, redirect: 'manual' });
    const { body: buf, complete } = await readCapped(res, req.readBytes);
    const latencyMs = elapsed();
    return {
      kind: 'response',
      exchange: { status: res.status, headers: res.headers, body: buf, complete, latencyMs },
      evidence: {
        kind: 'http',
        request,
        response: { status: res.status, headers: clipHeaders(res.headers.entries()), body: clip(buf) },
        durationMs: latencyMs,
      },
    };
  } catch (e) {
    const durationMs = elapsed();
    if (deadline.signal.aborted) throw deadline.signal.reason;
    if (candidateTimeout.aborted) {
      return { kind: 'slow', evidence: { kind: 'http', request, failure: `timeout after ${req.timeoutMs} ms`, durationMs } };
    }
    const code = errorCode(e);
    return { kind: 'unreachable', code, evidence: { kind: 'http', request, failure: code, durationMs } };
  }
}

/** Outcome for an attempt that got no response, or null when there is a response to judge. */
export async function noResponseOutcome(seat: SeatHandle, attempt: HttpAttempt, timeoutMs: number): Promise<ProbeOutcome | null> {
  if (attempt.kind === 'slow') {
    return failed(
      { zh: `服务在 ${timeoutMs} 毫秒内没有完成响应`, en: `the service did not answer within ${timeoutMs} ms` },
      [attempt.evidence],
    );
  }
  if (attempt.kind === 'unreachable') {
    return judgeUnreachable(
      seat,
      { zh: `无法连接考生的服务（${attempt.code}）`, en: `the candidate's service is unreachable (${attempt.code})` },
      [attempt.evidence],
    );
  }
  return null;
}

export function checkExchange(x: HttpExchange, e: HttpParams['expect']): Assertion[] {
  const a: Assertion[] = [];
  const statuses = Array.isArray(e.status) ? e.status : [e.status];
  a.push({ id: 'status', ok: statuses.includes(x.status), expected: statuses.join(' | '), actual: String(x.status) });
  for (const [name, re] of Object.entries(e.headers)) {
    const v = x.headers.get(name);
    a.push({ id: `header:${name}`, ok: v !== null && new RegExp(re, 'u').test(v), expected: `/${re}/`, actual: v ?? '(absent)' });
  }
  const text = x.body.toString('utf8');
  for (const re of e.bodyMatches) {
    const m = new RegExp(re, 'mu').exec(text);
    a.push({ id: `body:${re}`, ok: m !== null, expected: `matches /${re}/`, actual: m ? show(m[0]) : 'no match' });
  }
  if (e.json.length > 0) {
    let doc: unknown;
    let parsed = true;
    try {
      doc = JSON.parse(text);
    } catch {
      parsed = false;
    }
    for (const j of e.json) {
      const id = `json:${j.path}`;
      if (!parsed) {
        a.push({ id, ok: false, expected: 'a JSON body', actual: x.complete ? show(text) : 'body larger than the read limit' });
        continue;
      }
      const v = jsonPath(doc, j.path);
      const problems: string[] = [];
      if (j.exists === true && v === undefined) problems.push('absent');
      if (j.exists === false && v !== undefined) problems.push('present');
      if ('equals' in j && JSON.stringify(v) !== JSON.stringify(j.equals)) problems.push(`≠ ${show(j.equals)}`);
      if (j.matches !== undefined && !(typeof v === 'string' && new RegExp(j.matches, 'u').test(v))) problems.push(`does not match /${j.matches}/`);
      if (j.min !== undefined && !(typeof v === 'number' && v >= j.min)) problems.push(`not ≥ ${j.min}`);
      if (j.max !== undefined && !(typeof v === 'number' && v <= j.max)) problems.push(`not ≤ ${j.max}`);
      a.push({ id, ok: problems.length === 0, expected: JSON.stringify({ ...j, path: undefined }), actual: v === undefined ? '(absent)' : show(v) });
    }
  }
  if (e.maxLatencyMs !== undefined) {
    a.push({ id: 'latency', ok: x.latencyMs <= e.maxLatencyMs, expected: `≤ ${e.maxLatencyMs} ms`, actual: `${x.latencyMs} ms` });
  }
  return a;
}

export const httpProbe = defineProbe({
  kind: 'http',
  params: httpParams,
  async run(seat, p, deadline) {
    const attempt = await httpRequest(seat, p, deadline);
    const early = await noResponseOutcome(seat, attempt, p.timeoutMs);
    if (early || attempt.kind !== 'response') return early!;
    return judge(checkExchange(attempt.exchange, p.expect), p.scoring, { zh: `HTTP ${p.method} ${p.path}`, en: `HTTP ${p.method} ${p.path}` }, [
      attempt.evidence,
    ]);
  },
});
