import { z } from 'zod';
import { AbsolutePath, ContainerRole, Timeout } from '../params.js';

/** A JSON value at a pointer, for the `json-file` probe. */
const JsonExpectation = z
  .strictObject({
    /** RFC 6901 pointer into the document ("" is the whole document). */
    pointer: z.string().regex(/^(\/.*)?$/),
    /** Deep equality; the key order of objects does not matter, numbers compare exactly. */
    equals: z.unknown().optional(),
    /** A number within ±tolerance of value. */
    near: z.strictObject({ value: z.number(), tolerance: z.number().min(0) }).optional(),
    /**
     * The value is an object with exactly these keys, in any order: no key missing, none added
     * (a strict answer: extra candidates or notes beside the answer are not accepted).
     */
    keys: z.array(z.string()).min(1).optional(),
  })
  .refine((j) => [j.equals, j.near, j.keys].filter((x) => x !== undefined).length === 1, { message: 'give equals, near or keys, exactly one' });

export const JsonFileParamsSchema = z.strictObject({
  kind: z.literal('json-file'),
  container: ContainerRole.default('workspace'),
  path: AbsolutePath,
  expect: z.array(JsonExpectation).min(1),
  /**
   * A key repeated within one object (which JSON.parse would settle silently, the last one
   * winning) fails the file: two answers under one key are not one answer.
   */
  duplicateKeys: z.enum(['refuse', 'allow']).default('refuse'),
  timeoutMs: Timeout.default(10_000),
});
