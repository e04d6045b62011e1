/**
 * The `gguf` probe kind: a GGUF model file in the seat: header, tensor types, size; loaded or
 * compared with the grader's own build in the trusted toolbox.
 */
import { defineKind } from '../probe-kind.js';
import { GgufParamsSchema } from './params.js';
import { ggufProbe } from './gguf.js';

export const ggufKind = defineKind({
  kind: 'gguf',
  params: GgufParamsSchema,
  probe: ggufProbe,
  latencySensitive: false,
  needs: ['toolbox'],
  needsFor: (p) => (p.expect.loads || p.expect.sameTensorsAs ? ['toolbox'] : []),
});
