/**
 * The `process` probe kind: the seat's processes from the host: count, user, options, port, and
 * which program they really are.
 */
import { defineKind } from '../probe-kind.js';
import { ProcessParamsSchema } from './params.js';
import { processProbe } from './process.js';

export const processKind = defineKind({
  kind: 'process',
  params: ProcessParamsSchema,
  probe: processProbe,
  latencySensitive: false,
  needs: ['image-files'],
  needsFor: (p) => (p.expect.executable !== undefined ? ['image-files'] : []),
});
