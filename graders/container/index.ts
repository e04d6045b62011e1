/**
 * The `container` probe kind: containers and images as a Docker daemon reports them: the seat's
 * own daemon, or the seat's containers.
 */
import { defineKind } from '../probe-kind.js';
import { ContainerParamsSchema } from './params.js';
import { containerProbe } from './container.js';

export const containerKind = defineKind({
  kind: 'container',
  params: ContainerParamsSchema,
  probe: containerProbe,
  latencySensitive: false,
  needs: ['inspect-containers'],
  needsFor: (p) => (p.scope === 'seat' ? ['inspect-containers'] : []),
});
