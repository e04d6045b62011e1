/**
 * The `finetune` probe kind: a fine-tuned checkpoint of a tiny character language model, read by
 * the grader's own restricted loader and numpy model in the trusted toolbox: frozen and trained
 * tensors against the seat's base model, held-out loss, and the training log against the grader's
 * own measurement.
 */
import { defineKind } from '../probe-kind.js';
import { FinetuneParamsSchema } from './params.js';
import { finetuneProbe } from './finetune.js';

export const finetuneKind = defineKind({
  kind: 'finetune',
  params: FinetuneParamsSchema,
  probe: finetuneProbe,
  latencySensitive: false,
  needs: ['toolbox'],
});
