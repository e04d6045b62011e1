/**
 * The `browser` probe kind: the candidate's web page in the trusted toolbox's own Chromium, in
 * the seat's network namespace: the Vue app's identity and reactivity, the controls' defaults,
 * the request one click sends with the grader's values, the answer shown, and range validation.
 */
import { defineKind } from '../probe-kind.js';
import { BrowserParamsSchema } from './params.js';
import { browserProbe } from './browser.js';

export const browserKind = defineKind({
  kind: 'browser',
  params: BrowserParamsSchema,
  probe: browserProbe,
  latencySensitive: false,
  needs: ['toolbox'],
});
