/**
 * The `newman` probe kind: the candidate's Postman collection run by the grader's own newman in the
 * trusted toolbox, against the seat's live service and, as mutation testing, against the grader's
 * own servers of the same contract (one keeping it, mutants each breaking one thing).
 */
import { defineKind } from '../probe-kind.js';
import { NewmanParamsSchema } from './params.js';
import { newmanProbe } from './newman.js';

export const newmanKind = defineKind({
  kind: 'newman',
  params: NewmanParamsSchema,
  probe: newmanProbe,
  latencySensitive: false,
  needs: ['toolbox'],
});
