/**
 * The `recovery` probe kind: the harness breaks the service; it must answer again, by itself,
 * within the allowance.
 */
import { defineKind } from '../probe-kind.js';
import { RecoveryParamsSchema } from './params.js';
import { recoveryProbe } from './recovery.js';

export const recoveryKind = defineKind({
  kind: 'recovery',
  params: RecoveryParamsSchema,
  probe: recoveryProbe,
  latencySensitive: true,
  needs: ['restart', 'image-files'],
  needsFor: (p) => [
    ...(p.disrupt.action === 'restart-container' ? (['restart'] as const) : []),
    // The identity is judged as a `process` check, with its needs.
    ...(p.then.identity?.expect.executable !== undefined ? (['image-files'] as const) : []),
  ],
});
