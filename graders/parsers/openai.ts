/**
 * OpenAI-compatible chat completions as served by llama-server, vLLM and candidates' own gateways:
 * the non-streaming response shape, and a server-sent-events stream assembler that records when
 * each chunk arrived and derives latency figures with vLLM's serving-benchmark definitions.
 */
import type { ErrorCode } from '../../runner/core/error-codes.js';
import { createParser } from 'eventsource-parser';
import { z } from 'zod';
import { DeploylabError } from '../../runner/core/errors.js';
import { issuesOf } from '../../runner/core/validation.js';

const count = z.number().int().nonnegative();

export const usageSchema = z
  .looseObject({ prompt_tokens: count, completion_tokens: count, total_tokens: count })
  .refine((u) => u.total_tokens === u.prompt_tokens + u.completion_tokens, {
    message: 'total_tokens must equal prompt_tokens + completion_tokens',
  });
export type Usage = z.infer<typeof usageSchema>;

export const chatCompletionSchema = z.looseObject({
  id: z.string().min(1),
  object: z.literal('chat.completion'),
  created: z.number().int().nonnegative(),
  model: z.string().min(1),
  choices: z
    .array(
      z.looseObject({
        index: z.number().int().nonnegative(),
        message: z.looseObject({ role: z.literal('assistant'), content: z.string().nullable() }),
        finish_reason: z.string().nullable(),
      }),
    )
    .min(1),
  usage: usageSchema,
});
export type ChatCompletion = z.infer<typeof chatCompletionSchema>;

export const chatChunkSchema = z.looseObject({
  id: z.string().min(1),
  object: z.literal('chat.completion.chunk'),
  created: z.number().int().nonnegative(),
  model: z.string().min(1),
  choices: z.array(
    z.looseObject({
      index: z.number().int().nonnegative(),
      delta: z.looseObject({
        role: z.string().optional(),
        content: z.string().nullable().optional(),
        reasoning_content: z.string().nullable().optional(),
      }),
      finish_reason: z.string().nullable().optional(),
    }),
  ),
  usage: usageSchema.nullable().optional(),
});
export type ChatChunk = z.infer<typeof chatChunkSchema>;

function invalid(code: ErrorCode, zh: string, en: string, details?: Record<string, unknown>): DeploylabError {
  return new DeploylabError({ code, fault: 'candidate', message: { zh, en }, ...(details ? { details } : {}) });
}

/** Validate a non-streaming chat completion body (already JSON-decoded). */
export function parseChatCompletion(body: unknown): ChatCompletion {
  const r = chatCompletionSchema.safeParse(body);
  if (r.success) return r.data;
  const issues = issuesOf(r.error, 'response');
  const lines = issues.map((i) => `${i.path}: ${i.problem}`).join('; ');
  throw invalid('OPENAI_RESPONSE_INVALID', `对话补全响应不符合 OpenAI 格式：${lines}`, `chat completion response is not OpenAI-shaped: ${lines}`, { issues });
}

export interface StreamChunk {
  /** Milliseconds after the request was sent. */
  atMs: number;
  chunk: ChatChunk;
  /** Text this chunk added (content and reasoning), '' for role-only or usage-only chunks. */
  text: string;
}

export interface StreamMetrics {
  /** Time to the first chunk that carries a token. */
  ttftMs: number | null;
  /** Gaps between successive token-bearing chunks. */
  itlMs: number[];
  /** (e2e − ttft) / (output tokens − 1); null with fewer than two output tokens. */
  tpotMs: number | null;
  /** Time to the end of the stream (`[DONE]`). */
  e2eMs: number | null;
  /** From the usage chunk when sent, otherwise the number of token-bearing chunks. */
  outputTokens: number;
  outputTokensFrom: 'usage' | 'chunks';
}

export interface ChatStream {
  chunks: StreamChunk[];
  role: string | null;
  content: string;
  finishReason: string | null;
  usage: Usage | null;
  /** Whether `data: [DONE]` arrived; a stream without it is incomplete. */
  done: boolean;
  doneAtMs: number | null;
  ids: string[];
  metrics: StreamMetrics;
}

/**
 * Assembles a chat completion SSE stream fed piece by piece with the time each piece arrived.
 * Strict: a `data:` that is not a JSON chunk, or anything after `[DONE]`, is an error.
 */
export class ChatStreamAssembler {
  private readonly chunks: StreamChunk[] = [];
  private done = false;
  private doneAtMs: number | null = null;
  private now = 0;
  private readonly parser = createParser({
    onEvent: (ev) => this.onEvent(ev.data),
  });

  feed(text: string, atMs: number): void {
    this.now = atMs;
    this.parser.feed(text);
  }

  private onEvent(data: string): void {
    if (this.done) throw invalid('OPENAI_STREAM_INVALID', '[DONE] 之后仍有数据', 'data after [DONE]');
    if (data.trim() === '[DONE]') {
      this.done = true;
      this.doneAtMs = this.now;
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      throw invalid('OPENAI_STREAM_INVALID', `流中的数据不是 JSON：${data.slice(0, 200)}`, `stream data is not JSON: ${data.slice(0, 200)}`);
    }
    if (json && typeof json === 'object' && 'error' in json) {
      const msg = JSON.stringify((json as { error: unknown }).error).slice(0, 300);
      throw invalid('OPENAI_STREAM_ERROR', `服务在流中返回了错误：${msg}`, `the server sent an error in the stream: ${msg}`);
    }
    const r = chatChunkSchema.safeParse(json);
    if (!r.success) {
      const lines = issuesOf(r.error, 'chunk').map((i) => `${i.path}: ${i.problem}`).join('; ');
      throw invalid('OPENAI_STREAM_INVALID', `流中的分块格式不对：${lines}`, `stream chunk is not OpenAI-shaped: ${lines}`);
    }
    const text = r.data.choices.map((c) => (c.delta.reasoning_content ?? '') + (c.delta.content ?? '')).join('');
    this.chunks.push({ atMs: this.now, chunk: r.data, text });
  }

  finish(): ChatStream {
    let role: string | null = null;
    let finishReason: string | null = null;
    let usage: Usage | null = null;
    const ids = new Set<string>();
    for (const { chunk } of this.chunks) {
      ids.add(chunk.id);
      for (const c of chunk.choices) {
        if (c.delta.role && role === null) role = c.delta.role;
        if (c.finish_reason) finishReason = c.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    const tokenChunks = this.chunks.filter((c) => c.text.length > 0);
    return {
      chunks: this.chunks,
      role,
      content: this.chunks.map((c) => c.chunk.choices.map((x) => x.delta.content ?? '').join('')).join(''),
      finishReason,
      usage,
      done: this.done,
      doneAtMs: this.doneAtMs,
      ids: [...ids],
      metrics: streamMetrics(
        tokenChunks.map((c) => c.atMs),
        this.doneAtMs,
        usage?.completion_tokens ?? null,
      ),
    };
  }
}

/**
 * vLLM benchmark definitions (benchmarks/backend_request_func.py, serving benchmark):
 * TTFT first token-bearing chunk; ITL gaps between token-bearing chunks; E2E end of stream;
 * TPOT = (E2E − TTFT) / (output_tokens − 1).
 */
export function streamMetrics(tokenTimesMs: number[], endMs: number | null, usageTokens: number | null): StreamMetrics {
  const ttftMs = tokenTimesMs[0] ?? null;
  const itlMs = tokenTimesMs.slice(1).map((t, i) => t - tokenTimesMs[i]!);
  const outputTokens = usageTokens ?? tokenTimesMs.length;
  const tpotMs = ttftMs !== null && endMs !== null && outputTokens > 1 ? (endMs - ttftMs) / (outputTokens - 1) : null;
  return { ttftMs, itlMs, tpotMs, e2eMs: endMs, outputTokens, outputTokensFrom: usageTokens === null ? 'chunks' : 'usage' };
}

/** Assemble a whole captured stream given as pieces with their arrival times. */
export function assembleChatStream(pieces: Iterable<{ atMs: number; text: string }>): ChatStream {
  const a = new ChatStreamAssembler();
  for (const p of pieces) a.feed(p.text, p.atMs);
  return a.finish();
}

/**
 * Read a live response body, stamping each network read with the time since `startedAt`
 * (a `performance.now()` value taken when the request was sent).
 */
export async function readChatStream(
  body: AsyncIterable<Uint8Array>,
  startedAt: number,
  onPiece?: (text: string) => void,
): Promise<ChatStream> {
  const a = new ChatStreamAssembler();
  const decoder = new TextDecoder();
  for await (const bytes of body) {
    const atMs = performance.now() - startedAt;
    const text = decoder.decode(bytes, { stream: true });
    onPiece?.(text);
    a.feed(text, atMs);
  }
  const tail = decoder.decode();
  if (tail) a.feed(tail, performance.now() - startedAt);
  return a.finish();
}
