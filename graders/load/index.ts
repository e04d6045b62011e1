/**
 * The `load` probe kind: a bounded load run from the harness: error rate, p95 latency, throughput,
 * and their ratios to a reference configuration the harness starts.
 */
import { defineKind } from '../probe-kind.js';
import { LoadParamsSchema } from './params.js';
import { loadProbe } from './load.js';

export const loadKind = defineKind({
  kind: 'load',
  params: LoadParamsSchema,
  probe: loadProbe,
  latencySensitive: true,
  needs: ['reference'],
  needsFor: (p) => (p.reference ? ['reference'] : []),
});
