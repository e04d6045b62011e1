/**
 * The `http` probe kind: one request from the harness to a port of the seat, judged on status,
 * headers, body, JSON fields and provenance.
 */
import { defineKind } from '../probe-kind.js';
import { HttpParamsSchema } from './params.js';
import { httpProbe } from './http.js';

export const httpKind = defineKind({
  kind: 'http',
  params: HttpParamsSchema,
  probe: httpProbe,
  latencySensitive: false,
  needs: [],
});
