import { z } from 'zod';
import { ContainerRole, ProcessExpectSchema, ProcessMatchSchema, Timeout } from '../params.js';

export const ProcessParamsSchema = z.strictObject({
  kind: z.literal('process'),
  container: ContainerRole.default('workspace'),
  match: ProcessMatchSchema,
  expect: ProcessExpectSchema,
  timeoutMs: Timeout.default(10_000),
});
