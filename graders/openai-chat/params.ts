import { z } from 'zod';
import { TargetSchema, Timeout, UrlPath } from '../params.js';

export const OpenAIChatParamsSchema = z.strictObject({
  kind: z.literal('openai-chat'),
  target: TargetSchema,
  path: UrlPath.default('/v1/chat/completions'),
  /** Model name to send; omitted means the server's default. */
  model: z.string().min(1).optional(),
  prompt: z.string().min(1).default('你好，请用一句话介绍你自己。'),
  maxTokens: z.number().int().min(1).max(4096).default(16),
  stream: z.boolean().default(false),
  headers: z.record(z.string(), z.string()).default({}),
  /**
   * Sent as llama-server's own `cache_prompt` request field when given (never otherwise). false
   * makes a candidate's llama-server decode each request from scratch like a --no-cache-prompt
   * reference: a prefix reused from an earlier request shifts the random model's numerics enough
   * to flip its greedy tokens, so an honest server would fail `provenance` without it.
   */
  cachePrompt: z.boolean().optional(),
  /**
   * Provenance: the answers must be the reference model server's own answers to exactly the
   * grader's requests. The probe sends `requests` requests, each with a fresh random nonce in its
   * one user message (`prompt` replaced by `message` with `{nonce}` filled in), and the same
   * model, max_tokens, stream and temperature 0 to the candidate and to `target` (a model server
   * the harness controls, e.g. the task's own backend that the candidate's wrapper must call; it
   * must decode greedily and without a prompt cache, llama-server --temp 0 --no-cache-prompt, so
   * that the same request gives the same text). Nonces are chosen first on the reference: its
   * answers must be well-formed, non-empty and differ pairwise (streamed: also identical to the
   * unstreamed answer), so one replayed or canned text cannot match them all. After the
   * candidate's answers the reference is asked again; each answer's text (message content, or the
   * concatenated stream deltas) must equal a reference text of its own request.
   */
  provenance: z
    .strictObject({
      target: TargetSchema,
      path: UrlPath.default('/v1/chat/completions'),
      /** The user message; `{nonce}` is replaced by 16 random hex digits per request. */
      message: z.string().includes('{nonce}', { message: 'must contain {nonce}' }).default('{nonce}'),
      /** At least two, so that no single text can match them all (the random model's answers often coincide). */
      requests: z.number().int().min(2).max(8).default(3),
      /** Nonces tried on the reference before giving up (an error: the reference cannot serve). */
      attempts: z.number().int().min(2).max(64).default(24),
    })
    .optional(),
  expect: z
    .strictObject({
      minCompletionTokens: z.number().int().min(1).default(1),
      /** The response must carry usage.prompt_tokens / usage.completion_tokens. */
      usage: z.boolean().default(true),
      /** The response's `model` must equal this. */
      model: z.string().min(1).optional(),
      /**
       * The server's own token counter must move by at least the completion tokens, so a fake
       * endpoint that returns canned JSON cannot pass. Supporting evidence only: side traffic
       * moves it too; `provenance` is what ties the answer to the model.
       */
      serverCounter: z
        .strictObject({
          target: TargetSchema.optional(),
          path: UrlPath.default('/metrics'),
          metric: z.string().min(1).default('llamacpp:tokens_predicted_total'),
        })
        .optional(),
    })
    .prefault({}),
  timeoutMs: Timeout.default(60_000),
});
