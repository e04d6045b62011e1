import { DeploylabError } from '../core/errors.js';
import { metrics } from '../core/metrics.js';
import type { FileEntry, SeatRef } from './driver.js';

/** Run one driver operation: timed in the metrics, engine errors turned typed. */
export async function driverOp<T>(driver: 'docker' | 'k8s', operation: string, fn: () => Promise<T>, ref?: SeatRef): Promise<T> {
  const end = metrics.sandboxOpSeconds.startTimer({ driver, operation });
  try {
    return await fn();
  } catch (e) {
    throw engineError(driver, operation, e, ref);
  } finally {
    end();
  }
}

/** Anything the engine (Docker daemon, Kubernetes API) throws becomes a typed infrastructure error. */
export function engineError(driver: string, operation: string, cause: unknown, ref?: SeatRef): DeploylabError {
  if (cause instanceof DeploylabError) return cause;
  metrics.engineErrors.inc({ operation: `${driver}.${operation}` });
  const detail = cause instanceof Error ? cause.message : String(cause);
  const statusCode = (cause as { statusCode?: unknown } | null)?.statusCode;
  // The disk watch halted the seat (engine freezer): a state of the seat, not an engine fault.
  if (statusCode === 409 && /is paused/i.test(detail)) return seatHalted(ref, cause);
  return new DeploylabError({
    code: 'SANDBOX_ENGINE_ERROR',
    fault: 'infrastructure',
    message: {
      zh: `容器引擎操作失败（${driver} ${operation}）：${detail}`,
      en: `container engine operation failed (${driver} ${operation}): ${detail}`,
    },
    hint: { zh: '检查引擎是否运行、主机资源是否充足', en: 'check that the engine is running and the host has resources left' },
    details: { driver, operation, statusCode, ...(ref ?? {}) },
    cause,
  });
}

export function seatNotFound(ref: SeatRef): DeploylabError {
  return new DeploylabError({
    code: 'SANDBOX_SEAT_NOT_FOUND',
    fault: 'infrastructure',
    message: {
      zh: `考位不存在：${ref.session}/${ref.seat}`,
      en: `seat not found: ${ref.session}/${ref.seat}`,
    },
    hint: { zh: '考位可能已被删除或清理，需重新分配', en: 'the seat may have been destroyed or swept; provision it again' },
    details: { ...ref },
  });
}

/** A second provision of a seat that exists: refused, and the seat that is there is left as it is. */
export function seatExists(ref: SeatRef): DeploylabError {
  return new DeploylabError({
    code: 'SANDBOX_SEAT_EXISTS',
    fault: 'bug',
    message: { zh: `考位已存在，未重新创建：${ref.session}/${ref.seat}`, en: `the seat already exists and was not made again: ${ref.session}/${ref.seat}` },
    hint: { zh: '先 destroy 该考位再创建；已有考位未被改动', en: 'destroy the seat before provisioning it again; the existing seat was left untouched' },
    details: { ...ref },
  });
}

export function seatHalted(ref: SeatRef | undefined, cause?: unknown): DeploylabError {
  const id = ref ? `${ref.session}/${ref.seat}` : '';
  return new DeploylabError({
    code: 'SANDBOX_SEAT_HALTED',
    fault: 'infrastructure',
    message: {
      zh: `考位的进程已被磁盘看管暂停：${id}`,
      en: `every process of the seat is stopped by the disk watch: ${id}`,
    },
    hint: { zh: '考官用 deploylab session disk <场次> --release <考位> 或 resume 恢复', en: 'an examiner releases it: deploylab session disk <session> --release <seat>, or resume' },
    details: { ...(ref ?? {}) },
    cause,
  });
}

export function seatFrozen(ref: SeatRef): DeploylabError {
  return new DeploylabError({
    code: 'SANDBOX_SEAT_FROZEN',
    fault: 'candidate',
    message: {
      zh: `考位已冻结，考生不能再操作：${ref.session}/${ref.seat}`,
      en: `seat is frozen; candidate access is closed: ${ref.session}/${ref.seat}`,
    },
    details: { ...ref },
  });
}

export function fileNotFound(ref: SeatRef, path: string): DeploylabError {
  return new DeploylabError({
    code: 'SANDBOX_FILE_NOT_FOUND',
    fault: 'candidate',
    message: { zh: `考位中没有该文件：${path}`, en: `no such file in the seat: ${path}` },
    details: { ...ref, path },
  });
}

/** What `readFile` returns from a `readTree` of one path: the file's bytes, or SANDBOX_NOT_A_FILE. */
export function fileContent(entries: readonly FileEntry[], ref: SeatRef, path: string): Buffer {
  const first = entries[0];
  if (!first || first.type !== 'file' || !first.content) {
    throw new DeploylabError({
      code: 'SANDBOX_NOT_A_FILE',
      fault: 'candidate',
      message: { zh: `不是普通文件：${path}`, en: `not a regular file: ${path}` },
      details: { ...ref, path, type: first?.type },
    });
  }
  return first.content;
}

export function tooLarge(ref: SeatRef, path: string, maxBytes: number): DeploylabError {
  return new DeploylabError({
    code: 'SANDBOX_FILE_TOO_LARGE',
    fault: 'candidate',
    message: {
      zh: `文件超过读取上限 ${maxBytes} 字节：${path}`,
      en: `file exceeds the read limit of ${maxBytes} bytes: ${path}`,
    },
    details: { ...ref, path, maxBytes },
  });
}

export function unsupported(driver: string, what: string): DeploylabError {
  return new DeploylabError({
    code: 'SANDBOX_UNSUPPORTED',
    fault: 'config',
    message: { zh: `${driver} 驱动不支持：${what}`, en: `the ${driver} driver does not support: ${what}` },
  });
}
