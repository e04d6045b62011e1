import { z } from 'zod';
import { AbsolutePath, ContainerRole, Timeout } from '../params.js';

/** GGUF tensor type names as llama.cpp spells them. */
export const GgmlType = z.enum([
  'F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q8_1',
  'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_K',
  'MXFP4', 'IQ1_S', 'IQ1_M', 'IQ2_XXS', 'IQ2_XS', 'IQ2_S', 'IQ3_XXS', 'IQ3_S', 'IQ4_NL', 'IQ4_XS', 'TQ1_0', 'TQ2_0',
]);

export const GgufParamsSchema = z.strictObject({
  kind: z.literal('gguf'),
  container: ContainerRole.default('workspace'),
  path: AbsolutePath,
  expect: z
    .strictObject({
      /** general.file_type (llama_ftype), e.g. 15 = MOSTLY_Q4_K_M. */
      fileType: z.number().int().min(0).optional(),
      architecture: z.string().min(1).optional(),
      /** Read from the tensor table, not the name: these types must hold at least minShare of the 2-D weights. */
      tensorTypes: z
        .strictObject({
          majority: z.array(GgmlType).min(1),
          minShare: z.number().gt(0).max(1).default(0.5),
          forbid: z.array(GgmlType).optional(),
        })
        .optional(),
      /** Size of this file ÷ size of `source`. */
      sizeRatio: z
        .strictObject({ source: AbsolutePath, min: z.number().positive().optional(), max: z.number().positive().optional() })
        .refine((r) => r.min !== undefined || r.max !== undefined, { message: 'give min or max' })
        .optional(),
      /** Load it in the trusted toolbox and generate this many tokens. */
      loads: z.strictObject({ generateTokens: z.number().int().min(1).max(256).default(8) }).optional(),
      /** llama.block_count (the number of transformer layers) as the header declares it. */
      blockCount: z.number().int().min(0).optional(),
      /**
       * The tensors are the ones the task's recipe makes: the grader builds its own file in the
       * trusted toolbox (the `build` commands in order, on the toolbox's own copy of the provided
       * models, never the seat's) and the candidate's file must hold the same tensors as its
       * `output`: names, types, shapes and data bytes. Metadata may differ. llama-quantize is
       * deterministic (same file at any thread count), so a doctored source, another preset or a
       * requantized intermediate shows in the data.
       */
      sameTensorsAs: z
        .strictObject({
          build: z.array(z.array(z.string().min(1)).min(1)).min(1),
          output: AbsolutePath,
        })
        .optional(),
    })
    .prefault({}),
  timeoutMs: Timeout.default(120_000),
});
