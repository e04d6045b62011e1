/**
 * Every probe kind, listed once. A new kind is its folder (`<kind>/params.ts`, the probe, its
 * tests, `<kind>/index.ts` with its definition) and one line in PROBE_KINDS; the task schema's
 * union, the kind → probe map, the latency-sensitive kinds and the seat capabilities each check
 * needs all come from this list.
 */
import { z } from 'zod';
import { browserKind } from './browser/index.js';
import { missingCapability, type SeatCapability } from './capabilities.js';
import { containerKind } from './container/index.js';
import { datasetKind } from './dataset/index.js';
import { fileKind } from './file/index.js';
import { finetuneKind } from './finetune/index.js';
import { ggufKind } from './gguf/index.js';
import { httpKind } from './http/index.js';
import { jsonFileKind } from './json-file/index.js';
import { loadKind } from './load/index.js';
import { newmanKind } from './newman/index.js';
import { nginxConfigKind } from './nginx-config/index.js';
import { nvidiaSmiKind } from './nvidia-smi/index.js';
import { openaiChatKind } from './openai-chat/index.js';
import type { ProbeKind } from './probe-kind.js';
import { runProbe, type Deadline, type Probe, type ProbeOutcome, type SeatHandle } from './probe.js';
import { processKind } from './process/index.js';
import { prometheusKind } from './prometheus/index.js';
import { rateLimitKind } from './rate-limit/index.js';
import { recoveryKind } from './recovery/index.js';
import { resourceSamplesKind } from './resource-samples/index.js';
import { sysenvKind } from './sysenv/index.js';

/** In this order in the task schema's union (and so in the generated JSON Schema). */
export const PROBE_KINDS = [
  httpKind,
  openaiChatKind,
  loadKind,
  rateLimitKind,
  nginxConfigKind,
  ggufKind,
  fileKind,
  processKind,
  containerKind,
  recoveryKind,
  prometheusKind,
  nvidiaSmiKind,
  jsonFileKind,
  resourceSamplesKind,
  sysenvKind,
  datasetKind,
  finetuneKind,
  newmanKind,
  browserKind,
] as const satisfies readonly ProbeKind[];

type Kinds = typeof PROBE_KINDS;
export type AnyProbeKind = Kinds[number];
export type ProbeKindName = AnyProbeKind['kind'];

/** Each kind once: a second line for a kind fails to compile here. */
type Distinct<T extends readonly { kind: string }[], Seen extends string = never> = T extends readonly [
  infer H extends { kind: string },
  ...infer R extends readonly { kind: string }[],
]
  ? [H['kind']] extends [Seen]
    ? false
    : Distinct<R, Seen | H['kind']>
  : true;
const _distinct: Distinct<Kinds> = true;

type NamesOf<T extends readonly unknown[]> = { -readonly [I in keyof T]: T[I] extends { kind: infer K } ? K : never };
type ParamsSchemasOf<T extends readonly unknown[]> = { -readonly [I in keyof T]: T[I] extends { params: infer S } ? S : never };

export const PROBE_KIND_NAMES = PROBE_KINDS.map((k) => k.kind) as NamesOf<Kinds>;

/** A check's `probe`: the parameters of one kind, told apart by `kind`. */
export const ProbeParamsSchema = z.discriminatedUnion('kind', PROBE_KINDS.map((k) => k.params) as unknown as ParamsSchemasOf<Kinds>);
export type ProbeParams = z.output<typeof ProbeParamsSchema>;
export type ParamsOf<K extends ProbeKindName> = Extract<ProbeParams, { kind: K }>;

/** kind → its definition, every kind. */
export const KINDS = Object.fromEntries(PROBE_KINDS.map((k) => [k.kind, k])) as { readonly [K in ProbeKindName]: Extract<AnyProbeKind, { kind: K }> };

/** Probe kinds judged on time or live load: they never share the CPU with other probes on a small host. */
export const LATENCY_SENSITIVE_KINDS: ReadonlySet<ProbeKindName> = new Set(PROBE_KINDS.filter((k) => k.latencySensitive).map((k) => k.kind));

/** The seat capabilities one check needs, from its kind's declaration. */
export function capabilitiesFor(params: ProbeParams): readonly SeatCapability[] {
  const def = KINDS[params.kind] as ProbeKind<ProbeKindName, z.ZodType<ProbeParams>>;
  return def.needsFor ? def.needsFor(params) : def.needs;
}

/**
 * A kind's probe behind its capability check: once the parameters parse, a seat handle without a
 * capability the check needs gives the check the capability's error (never a pass or a fail), and
 * the probe does not run.
 */
function checked(def: ProbeKind<ProbeKindName, z.ZodType<ProbeParams>>): Probe {
  return {
    kind: def.kind,
    params: def.params,
    async run(seat, params: ProbeParams, deadline) {
      const missing = missingCapability(seat, def.needsFor ? def.needsFor(params) : def.needs);
      if (missing) throw missing;
      return def.probe.run(seat, params, deadline);
    },
  };
}

/** kind → the probe the harness runs for it (its capability check first), every kind. */
export const PROBES = Object.fromEntries(
  PROBE_KINDS.map((k) => [k.kind, checked(k as unknown as ProbeKind<ProbeKindName, z.ZodType<ProbeParams>>)]),
) as { readonly [K in ProbeKindName]: Probe };

/** Run one check's probe as the harness does: parameters, then capabilities, then the probe (runProbe's contract). */
export function runKind(kind: ProbeKindName, seat: SeatHandle, params: unknown, deadline: Deadline): Promise<ProbeOutcome> {
  return runProbe(PROBES[kind], seat, params, deadline);
}
