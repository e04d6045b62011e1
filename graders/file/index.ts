/**
 * The `file` probe kind: a file in the seat: existence, digest, mode, owner, size, content.
 */
import { defineKind } from '../probe-kind.js';
import { FileParamsSchema } from './params.js';
import { fileProbe } from './file.js';

export const fileKind = defineKind({
  kind: 'file',
  params: FileParamsSchema,
  probe: fileProbe,
  latencySensitive: false,
  needs: [],
});
