/**
 * The probe library's entry point: probe kind → probe, and one call that grades a check's probe
 * parameters (as the task schema parsed them) against a seat.
 */
import { DeploylabError } from '../runner/core/errors.js';
import type { ProbeKind, ProbeParams } from '../runner/tasks/probe-params.js';
import { containerProbe } from './container.js';
import { fileProbe } from './file.js';
import { ggufProbe } from './gguf.js';
import { httpProbe } from './http.js';
import { jsonFileProbe } from './json-file.js';
import { loadProbe } from './load.js';
import { nginxConfigProbe } from './nginx-config.js';
import { nvidiaSmiProbe } from './nvidia-smi.js';
import { openaiChatProbe } from './openai-chat.js';
import { Deadline, errored, runProbe, type Probe, type ProbeOutcome, type SeatHandle } from './probe.js';
import { processProbe } from './process.js';
import { prometheusProbe } from './prometheus.js';
import { rateLimitProbe } from './rate-limit.js';
import { recoveryProbe } from './recovery.js';
import { resourceSamplesProbe } from './resource-samples.js';

export const PROBES: Partial<Record<ProbeKind, Probe>> = {
  http: httpProbe,
  'openai-chat': openaiChatProbe,
  load: loadProbe,
  'rate-limit': rateLimitProbe,
  'nginx-config': nginxConfigProbe,
  gguf: ggufProbe,
  file: fileProbe,
  process: processProbe,
  prometheus: prometheusProbe,
  container: containerProbe,
  recovery: recoveryProbe,
  'json-file': jsonFileProbe,
  'resource-samples': resourceSamplesProbe,
  'nvidia-smi': nvidiaSmiProbe,
};

/** Extra time beyond a check's own timeoutMs for the harness's side (scrapes, path checks). */
export const DEADLINE_MARGIN_MS = 5_000;

/**
 * Grade one check's probe. The harness deadline is the check's timeoutMs plus a margin, so the
 * candidate's allowance (timeoutMs) runs out first and slowness is a fail, not an error.
 * A kind without a probe yet is an `error` (re-gradable once it exists), never a fail.
 */
export async function gradeCheck(seat: SeatHandle, params: ProbeParams): Promise<ProbeOutcome> {
  const probe = PROBES[params.kind];
  if (!probe) {
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
    return await runProbe(probe, seat, params, deadline);
  } finally {
    deadline.dispose();
  }
}
