/**
 * The probe library's entry point: one call that grades a check's probe parameters (as the task
 * schema parsed them) against a seat. The kinds themselves are listed in kinds.ts.
 */
import { DeploylabError } from '../runner/core/errors.js';
import { KINDS, runKind, type ProbeParams } from './kinds.js';
import { Deadline, errored, type ProbeOutcome, type SeatHandle } from './probe.js';

export { LATENCY_SENSITIVE_KINDS, PROBE_KINDS, PROBE_KIND_NAMES, PROBES, ProbeParamsSchema, capabilitiesFor, runKind } from './kinds.js';
export type { ParamsOf, ProbeKindName, ProbeParams } from './kinds.js';

/** Extra time beyond a check's own timeoutMs for the harness's side (scrapes, path checks). */
export const DEADLINE_MARGIN_MS = 5_000;

/**
 * Grade one check's probe. The harness deadline is the check's timeoutMs plus a margin, so the
 * candidate's allowance (timeoutMs) runs out first and slowness is a fail, not an error.
 * A kind this harness does not know (parameters that did not come through the task schema) is an
 * `error` (re-gradable once it exists), never a fail; so is a seat handle without a capability
 * the check needs.
 */
export async function gradeCheck(seat: SeatHandle, params: ProbeParams): Promise<ProbeOutcome> {
  if (!Object.hasOwn(KINDS, params.kind)) {
    return errored(
      new DeploylabError({
        code: 'PROBE_KIND_UNAVAILABLE',
        fault: 'bug',
        message: { zh: `探针类型 ${params.kind} 尚未实现`, en: `probe kind ${params.kind} is not implemented yet` },
      }),
      [],
    );
  }
  const deadline = Deadline.after(params.timeoutMs + DEADLINE_MARGIN_MS);
  try {
    return await runKind(params.kind, seat, params, deadline);
  } finally {
    deadline.dispose();
  }
}
