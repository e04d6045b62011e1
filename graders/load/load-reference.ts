/**
 * The reference configuration of a `load` check: a service the harness starts from its trusted
 * toolbox image, waits for, measures with the same load generator and the same N and C, and
 * removes — all in the same run as the candidate's measurement, so thresholds are ratios that do
 * not depend on how fast this host is. Anything that keeps the reference from being measured is
 * the harness's problem: an `error` with a code, never a pass or a fail.
 */
import type { ErrorCode } from '../../runner/core/error-codes.js';
import type { z } from 'zod';
import { DeploylabError, asDeploylabError, isDeploylabError } from '../../runner/core/errors.js';
import { capability, type ReferenceService, type ReferenceSpec } from '../capabilities.js';
import { clip, EVIDENCE_LIMITS, note, type Deadline, type Evidence, type SeatHandle } from '../probe.js';
import { figuresOf, LATENCY_METHOD, runLoad, type LoadFigures, type LoadTarget } from './load-client.js';
import type { LoadReferenceSchema } from './params.js';

export type LoadReference = z.output<typeof LoadReferenceSchema>;

export interface ReferenceMeasurement {
  figures: LoadFigures;
  p95: number | null;
  rps: number;
  evidence: Evidence[];
}

const READY_POLL_MS = 250;

function referenceError(code: ErrorCode, zh: string, en: string, details: Record<string, unknown>, cause?: unknown): DeploylabError {
  return new DeploylabError({
    code,
    fault: 'infrastructure',
    message: { zh: `无法测量参考配置：${zh}`, en: `the reference configuration could not be measured: ${en}` },
    hint: { zh: '检查工具箱镜像与题目中的参考配置；可重新评分', en: 'check the toolbox image and the task’s reference configuration; the check can be re-graded' },
    details,
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Poll `path` until it answers 2xx; throws PROBE_REFERENCE_NOT_READY when it exits or the time runs out. */
async function waitReady(svc: ReferenceService, path: string, timeoutMs: number, deadline: Deadline): Promise<number> {
  const t0 = Date.now();
  const until = t0 + Math.min(timeoutMs, deadline.remainingMs());
  const url = new URL(`http://${svc.endpoint.host.includes(':') ? `[${svc.endpoint.host}]` : svc.endpoint.host}:${svc.endpoint.port}${path}`);
  for (;;) {
    const r = await runLoad({ url, method: 'GET', headers: {} }, { requests: 1, concurrency: 1, timeoutMs: 2_000 }, deadline);
    if (r.latencies.length === 1) return Date.now() - t0;
    const last = [...r.statuses.keys()].join(',');
    const st = await svc.running();
    if (!st.running) {
      throw referenceError('PROBE_REFERENCE_NOT_READY', `参考服务已退出（退出码 ${st.exitCode}）`, `the reference service exited (exit code ${st.exitCode})`, { exitCode: st.exitCode, readyPath: path });
    }
    if (Date.now() + READY_POLL_MS >= until) {
      const waited = until - t0;
      throw referenceError('PROBE_REFERENCE_NOT_READY', `参考服务在 ${waited} 毫秒内未就绪（${path}：${last}）`, `the reference service was not ready within ${waited} ms (${path}: ${last})`, {
        readyPath: path,
        last,
      });
    }
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
}

/**
 * Start the reference, wait for it, warm it up (uncounted requests), measure it, and remove it
 * before returning, also on failure. Errors are PROBE_REFERENCE_* (infrastructure),
 * except a seat file to copy that the candidate does not have (fault candidate, passed through).
 */
export async function measureReference(
  seat: SeatHandle,
  ref: LoadReference,
  request: Omit<LoadTarget, 'url'> & { path: string },
  load: { requests: number; concurrency: number; timeoutMs: number; warmupRequests: number },
  deadline: Deadline,
): Promise<ReferenceMeasurement> {
  // The seat capability `reference` (the kind's `needs`, checked before the probe runs).
  const startReference = capability(seat, 'reference');
  const spec: ReferenceSpec = { command: ref.command, port: ref.port, copy: ref.copy, cpus: ref.cpus, memoryMiB: ref.memoryMiB };
  let svc: ReferenceService;
  const startedAt = Date.now();
  try {
    svc = await startReference(spec);
  } catch (e) {
    if (isDeploylabError(e) && (e.fault === 'candidate' || e.code === 'PROBE_DEADLINE')) throw e;
    const err = asDeploylabError(e);
    throw referenceError('PROBE_REFERENCE_START_FAILED', `参考服务容器无法启动（${err.message}）`, `its container did not start (${err.message})`, { ...spec, cause: err.code });
  }
  const startMs = Date.now() - startedAt;
  const evidence: Evidence[] = [];
  try {
    deadline.check();
    let readyMs: number;
    try {
      readyMs = await waitReady(svc, ref.readyPath, ref.readyTimeoutMs, deadline);
    } catch (e) {
      const logs = await svc.logs().catch(() => '');
      evidence.push(note('参考服务输出（末尾）', 'reference service output (tail)', { where: svc.where, ...spec, output: clip(logs.slice(-EVIDENCE_LIMITS.text)).text }));
      throw e;
    }
    const host = svc.endpoint.host.includes(':') ? `[${svc.endpoint.host}]` : svc.endpoint.host;
    const url = new URL(`http://${host}:${svc.endpoint.port}${request.path}`);
    const target: LoadTarget = { url, method: request.method, headers: request.headers, ...(request.body !== undefined ? { body: request.body } : {}) };
    if (load.warmupRequests > 0) await runLoad(target, { ...load, requests: load.warmupRequests, concurrency: Math.min(load.concurrency, load.warmupRequests) }, deadline);
    const run = await runLoad(target, load, deadline);
    const { figures, p95, rps } = figuresOf(run, load.requests, load.concurrency);
    evidence.push(
      note('参考配置负载测试结果', 'reference load result', {
        ...figures,
        method: LATENCY_METHOD,
        where: svc.where,
        ...spec,
        request: { method: request.method, path: request.path },
        startMs,
        readyMs,
      }),
    );
    if (p95 === null || figures.errorRate > 0) {
      // The reference must answer every request: otherwise its figures describe a failure, not a configuration.
      throw referenceError(
        'PROBE_REFERENCE_UNMEASURABLE',
        `参考服务的请求未全部成功（${JSON.stringify(figures.statuses)}）`,
        `not every request to the reference succeeded (${JSON.stringify(figures.statuses)})`,
        { statuses: figures.statuses },
      );
    }
    return { figures, p95, rps, evidence };
  } catch (e) {
    throw Object.assign(asDeploylabError(e), { evidence });
  } finally {
    await svc.stop();
  }
}

/** Evidence gathered before a reference failure, to show beside the error. */
export function evidenceOf(e: unknown): Evidence[] {
  const ev = (e as { evidence?: unknown } | null)?.evidence;
  return Array.isArray(ev) ? (ev as Evidence[]) : [];
}
