/**
 * The `resource-samples` probe kind: the candidate's CPU and memory samples of a process, compared
 * with the host's own measurements while idle and under load.
 */
import { defineKind } from '../probe-kind.js';
import { ResourceSamplesParamsSchema } from './params.js';
import { resourceSamplesProbe } from './resource-samples.js';

export const resourceSamplesKind = defineKind({
  kind: 'resource-samples',
  params: ResourceSamplesParamsSchema,
  probe: resourceSamplesProbe,
  latencySensitive: true,
  needs: [],
});
