import type { SweptItem } from './driver.js';
import { LABEL } from './labels.js';

/** The HTTP status the engine answered a failed call with, if it did. */
export function statusCodeOf(e: unknown): number | undefined {
  const c = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

/** For `.catch`: an object already gone is fine, anything else is rethrown. */
export function ignore404(e: unknown): void {
  if (statusCodeOf(e) !== 404) throw e;
}

/** An engine object a sweep removed, with the seat its labels name. */
export function sweptItem(kind: string, id: string, name: string, labels: Record<string, string> | undefined): SweptItem {
  return { kind, id, name, session: labels?.[LABEL.session] ?? '', seat: labels?.[LABEL.seat] ?? '' };
}
