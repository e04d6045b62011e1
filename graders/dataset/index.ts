/**
 * The `dataset` probe kind: a fine-tuning dataset in JSON Lines, judged record by record against
 * the grader's own truth (encoding, format, coverage, uniqueness).
 */
import { defineKind } from '../probe-kind.js';
import { DatasetParamsSchema } from './params.js';
import { datasetProbe } from './dataset.js';

export const datasetKind = defineKind({
  kind: 'dataset',
  params: DatasetParamsSchema,
  probe: datasetProbe,
  latencySensitive: false,
  needs: [],
});
