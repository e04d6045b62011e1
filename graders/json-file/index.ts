/**
 * The `json-file` probe kind: a JSON document in the seat, judged value by value at JSON pointers.
 */
import { defineKind } from '../probe-kind.js';
import { JsonFileParamsSchema } from './params.js';
import { jsonFileProbe } from './json-file.js';

export const jsonFileKind = defineKind({
  kind: 'json-file',
  params: JsonFileParamsSchema,
  probe: jsonFileProbe,
  latencySensitive: false,
  needs: [],
});
