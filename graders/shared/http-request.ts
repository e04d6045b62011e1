/**
 * One HTTP request from the harness to a seat's service, and the outcome of one that got no
 * answer. Every probe that talks HTTP to the candidate's service sends its requests through here.
 */
import { clip, clipHeaders, failed, judgeUnreachable, type Deadline, type HttpEvidence, type ProbeOutcome, type SeatHandle } from '../probe.js';
import { freshFetch } from './fresh-fetch.js';
import { seatUrl, type Target } from './seat-url.js';

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
    const res = await freshFetch(url, { method: req.method, headers, body: body ?? null, signal, redirect: 'manual' });
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
