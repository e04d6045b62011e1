/**
 * A probe kind, whole: the `kind` a check names, the strict schema of its parameters, the probe
 * that judges it, and what the harness must know before running it. Each kind's folder exports
 * one (`<kind>/index.ts`); kinds.ts lists them once and derives everything else from the list.
 */
import type { z } from 'zod';
import { DeploylabError } from '../runner/core/errors.js';
import type { SeatCapability } from './capabilities.js';
import type { Probe } from './probe.js';

export interface ProbeKind<
  K extends string = string,
  S extends z.ZodType<{ kind: K }> = z.ZodType<{ kind: K }>,
  N extends SeatCapability = SeatCapability,
> {
  /** What a check's `probe.kind` says; the parameters' own `kind` literal. */
  readonly kind: K;
  readonly params: S;
  readonly probe: Probe<S>;
  /**
   * Judged on time or live load (latency, recovery time, CPU under load): its checks never share
   * the CPU with other probes on a small host.
   */
  readonly latencySensitive: boolean;
  /** The seat capabilities its checks may need (capabilities.ts), checked before the probe runs. */
  readonly needs: readonly N[];
  /** Which of `needs` one check needs, from its parameters; absent: all of them, for every check. */
  needsFor?(params: z.output<S>): readonly NoInfer<N>[];
}

/** Declare a probe kind; its `kind`, its parameters' `kind` literal and its probe must agree. */
export function defineKind<K extends string, S extends z.ZodType<{ kind: K }>, N extends SeatCapability = never>(def: ProbeKind<K, S, N>): ProbeKind<K, S, N> {
  if (def.probe.kind !== def.kind || def.probe.params !== def.params) {
    throw new DeploylabError({
      code: 'PROBE_KIND_MISMATCH',
      fault: 'bug',
      message: { zh: `探针类型 ${def.kind} 与其探针（${def.probe.kind}）或参数不一致`, en: `probe kind ${def.kind} disagrees with its probe (${def.probe.kind}) or its parameters` },
    });
  }
  return def;
}
