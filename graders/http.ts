/**
 * `http` probe: one request from the harness to a port of the seat, then expectations on the
 * status, headers, body, JSON fields and latency. No answer at all is judged by whose path is
 * broken (see judgeUnreachable); an answer slower than the candidate's allowance is a fail; the
 * harness's own deadline passing first is an error.
 */
import { HttpParamsSchema, type TargetSchema } from '../runner/tasks/probe-params.js';
import type { z } from 'zod';
import { judge, jsonPointer, show, type Assertion } from './assertions.js';
import {
  clip,
  clipHeaders,
  defineProbe,
  failed,
  FETCH_BAD_PORTS,
  judgeUnreachable,
  type Deadline,
  type HttpEvidence,
  type ProbeOutcome,
  type SeatHandle,
} from './probe.js';
import { DeploylabError } from '../runner/core/errors.js';

export type HttpParams = z.output<typeof HttpParamsSchema>;
export type Target = z.output<typeof TargetSchema>;

/** Response bytes kept for checking; the evidence keeps less (EVIDENCE_LIMITS.text). */
export const HTTP_READ_BYTES = 1024 * 1024;

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

/**
 * The URL of a seat's service as the harness reaches it. Node's fetch refuses the WHATWG "bad
 * ports"; a task aimed at one is the task's error, not the candidate's unreachable service.
 */
export async function seatUrl(seat: SeatHandle, target: Target, path: string): Promise<string> {
  if (FETCH_BAD_PORTS.has(target.port)) {
    throw new DeploylabError({
      code: 'PROBE_PORT_BLOCKED',
      fault: 'config',
      message: {
        zh: `端口 ${target.port} 在 fetch 标准的禁用端口列表中，探针无法访问；请在题目中换一个端口`,
        en: `port ${target.port} is on the fetch standard's blocked list and cannot be probed; use another port in the task`,
      },
    });
  }
  const ep = await seat.endpoint(target.port, { container: target.container });
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  return `${target.scheme}://${host}:${ep.port}${path}`;
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
    target: Target;
    method: string;
    path: string;
    headers: Record<string, string>;
    body?: unknown;
    timeoutMs: number;
    readBytes?: number;
  },
  deadline: Deadline,
): Promise<HttpAttempt> {
  const url = await seatUrl(seat, req.target, req.path);
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
    const { body: buf, complete } = await readCapped(res, req.readBytes ?? HTTP_READ_BYTES);
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
  for (const [name, re] of Object.entries(e.headers ?? {})) {
    const v = x.headers.get(name);
    a.push({ id: `header:${name}`, ok: v !== null && new RegExp(re).test(v), expected: `/${re}/`, actual: v ?? '(absent)' });
  }
  const text = x.body.toString('utf8');
  for (const needle of e.bodyContains ?? []) {
    a.push({ id: `bodyContains:${needle}`, ok: text.includes(needle), expected: `contains ${show(needle)}`, actual: x.complete ? show(text) : `${show(text)} (cut at the read limit)` });
  }
  if (e.bodyMatches !== undefined) {
    const m = new RegExp(e.bodyMatches, 'm').exec(text);
    a.push({ id: 'bodyMatches', ok: m !== null, expected: `matches /${e.bodyMatches}/`, actual: m ? show(m[0]) : 'no match' });
  }
  if (e.json && e.json.length > 0) {
    let doc: unknown;
    let parsed = true;
    try {
      doc = JSON.parse(text);
    } catch {
      parsed = false;
    }
    for (const j of e.json) {
      const id = `json:${j.pointer || '(root)'}`;
      if (!parsed) {
        a.push({ id, ok: false, expected: 'a JSON body', actual: x.complete ? show(text) : 'body larger than the read limit' });
        continue;
      }
      const v = jsonPointer(doc, j.pointer);
      let ok: boolean;
      let expected: string;
      if (!j.exists) {
        ok = v === undefined;
        expected = 'absent';
      } else if ('equals' in j) {
        ok = v !== undefined && JSON.stringify(v) === JSON.stringify(j.equals);
        expected = `= ${show(j.equals)}`;
      } else {
        ok = v !== undefined;
        expected = 'present';
      }
      a.push({ id, ok, expected, actual: v === undefined ? '(absent)' : show(v) });
    }
  }
  return a;
}

export const httpProbe = defineProbe({
  kind: 'http',
  params: HttpParamsSchema,
  async run(seat, p, deadline) {
    const attempt = await httpRequest(seat, p, deadline);
    const early = await noResponseOutcome(seat, attempt, p.timeoutMs);
    if (early || attempt.kind !== 'response') return early!;
    return judge(checkExchange(attempt.exchange, p.expect), 'all', { zh: `HTTP ${p.method} ${p.path}`, en: `HTTP ${p.method} ${p.path}` }, [
      attempt.evidence,
    ]);
  },
});
