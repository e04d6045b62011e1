import { z } from 'zod';
import { AbsolutePath, ContainerRole, Timeout } from '../params.js';

/** A closed range of numbers. */
const Range = z.strictObject({ min: z.number(), max: z.number() }).refine((r) => r.min <= r.max, { message: 'min ≤ max' });
/** A layer of the grader's TinyCharLM; its tensors are `<layer>.weight` and (linear layers) `<layer>.bias`. */
const Layer = z.enum(['embed', 'fc1', 'fc2', 'head']);

/**
 * The grader's own definition of the model (its numpy forward pass in eval.py): the vocabulary,
 * in id order, and how many previous characters predict the next.
 */
const ModelSchema = z.strictObject({
  vocab: z.string().min(2).refine((v) => new Set(v).size === [...v].length, { message: 'each character once' }),
  context: z.number().int().min(1).max(64),
});

/**
 * The checkpoint is this seat's base model fine-tuned with `frozen` layers kept (frozen tensors
 * bit-identical, every other tensor changed), and the training took effect: on the grader's copy
 * of the training corpus its loss is at most `maxRatio` × the base model's (weights changed any
 * other way, by noise or by hand, do not get there).
 */
const WeightsSchema = z.strictObject({ frozen: z.array(Layer).min(1), data: AbsolutePath, maxRatio: z.number().gt(0).lt(1) });

/** The grader's held-out text of the domain: the candidate's loss on it is at most `maxRatio` × the base model's. */
const HeldoutSchema = z.strictObject({ data: AbsolutePath, maxRatio: z.number().gt(0).lt(1) });

/**
 * The training log (JSON Lines, as the provided train.py writes it) is the log of this run: its
 * settings are those asked for, one line per epoch, and its final training loss agrees with the
 * grader's own loss of the checkpoint on the grader's copy of the training corpus.
 */
const LogSchema = z.strictObject({
  path: AbsolutePath,
  /** The grader's copy of the training corpus (root-only), measured with the candidate's checkpoint. */
  data: AbsolutePath,
  /** The training file the log must name (the candidate's copy, where the sheet says). */
  dataFile: AbsolutePath,
  epochs: Range,
  lr: Range,
  freeze: z.array(Layer).min(1),
  tolerance: z.strictObject({ absolute: z.number().nonnegative().default(0.002), relative: z.number().nonnegative().default(0.005) }).prefault({}),
  maxBytes: z.number().int().positive().max(16 * 1024 * 1024).default(1024 * 1024),
});

export const FinetuneParamsSchema = z
  .strictObject({
    kind: z.literal('finetune'),
    container: ContainerRole.default('workspace'),
    /** The candidate's fine-tuned weights (a torch.save'd state_dict). */
    checkpoint: AbsolutePath,
    /** The grader's copy of this seat's pretrained model (root-only in the seat). */
    base: AbsolutePath,
    model: ModelSchema,
    weights: WeightsSchema.optional(),
    heldout: HeldoutSchema.optional(),
    log: LogSchema.optional(),
    timeoutMs: Timeout.default(60_000),
  })
  .refine((p) => [p.weights, p.heldout, p.log].filter((x) => x !== undefined).length === 1, { message: 'give exactly one of weights, heldout, log' });

export type FinetuneParams = z.output<typeof FinetuneParamsSchema>;
