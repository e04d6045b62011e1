import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { assembleChatStream, parseChatCompletion, readChatStream, streamMetrics } from './openai.js';

// A llama-server stream as its to_json_oaicompat_chat*() writes it: nlohmann/json sorts keys,
// a role-only first chunk with content null, one chunk per token, an empty-delta chunk with the
// finish reason, then (stream_options.include_usage) a usage chunk with empty choices and timings.
const base = '"created":1717200000,"id":"chatcmpl-q3M8kR","model":"tiny-llama-q4_k_m.gguf","object":"chat.completion.chunk","system_fingerprint":"b6800-abc1234"';
const delta = (d: string, finish = 'null'): string =>
  `data: {"choices":[{"delta":${d},"finish_reason":${finish},"index":0}],${base}}\n\n`;
const LLAMA_STREAM: { atMs: number; text: string }[] = [
  { atMs: 40, text: delta('{"content":null,"role":"assistant"}') },
  { atMs: 120, text: delta('{"content":"你"}') },
  { atMs: 150, text: delta('{"content":"好"}') },
  { atMs: 185, text: delta('{"content":"，"}') },
  { atMs: 215, text: delta('{"content":"世界"}') },
  {
    atMs: 216,
    text:
      delta('{}', '"stop"') +
      `data: {"choices":[],${base},"timings":{"prompt_n":11,"prompt_ms":38.2,"predicted_n":4,"predicted_ms":95.1},"usage":{"completion_tokens":4,"prompt_tokens":11,"total_tokens":15}}\n\n`,
  },
  { atMs: 217, text: 'data: [DONE]\n\n' },
];

function rejection(f: () => unknown): DeploylabError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DeploylabError);
    expect((e as DeploylabError).fault).toBe('candidate');
    return e as DeploylabError;
  }
  throw new Error('no error thrown');
}

describe('chat completion stream (llama-server shape)', () => {
  it('assembles role, content, finish reason and usage, and requires [DONE]', () => {
    const s = assembleChatStream(LLAMA_STREAM);
    expect(s.role).toBe('assistant');
    expect(s.content).toBe('你好，世界');
    expect(s.finishReason).toBe('stop');
    expect(s.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 });
    expect(s.done).toBe(true);
    expect(s.doneAtMs).toBe(217);
    expect(s.chunks).toHaveLength(7);
    expect(s.ids).toEqual(['chatcmpl-q3M8kR']);
  });

  it('computes TTFT from the first token-bearing chunk, not the role-only one', () => {
    const m = assembleChatStream(LLAMA_STREAM).metrics;
    expect(m.ttftMs).toBe(120);
    expect(m.itlMs).toEqual([30, 35, 30]);
    expect(m.e2eMs).toBe(217);
    expect(m.outputTokens).toBe(4);
    expect(m.outputTokensFrom).toBe('usage');
    expect(m.tpotMs).toBeCloseTo((217 - 120) / 3, 10);
  });

  it('gives the same result however the bytes were split, with CRLF line ends', () => {
    const whole = LLAMA_STREAM.map((p) => p.text).join('').replaceAll('\n', '\r\n');
    const pieces = [...whole].map((ch) => ({ atMs: 5, text: ch }));
    const s = assembleChatStream(pieces);
    expect(s.content).toBe('你好，世界');
    expect(s.done).toBe(true);
    expect(s.usage?.completion_tokens).toBe(4);
  });

  it('a stream cut before [DONE] is marked not done', () => {
    const s = assembleChatStream(LLAMA_STREAM.slice(0, -1));
    expect(s.done).toBe(false);
    expect(s.metrics.e2eMs).toBeNull();
    expect(s.metrics.tpotMs).toBeNull();
  });

  it('without a usage chunk, output tokens are counted from token-bearing chunks', () => {
    const s = assembleChatStream([...LLAMA_STREAM.slice(0, 5), { atMs: 230, text: delta('{}', '"length"') + 'data: [DONE]\n\n' }]);
    expect(s.usage).toBeNull();
    expect(s.finishReason).toBe('length');
    expect(s.metrics.outputTokens).toBe(4);
    expect(s.metrics.outputTokensFrom).toBe('chunks');
    expect(s.metrics.tpotMs).toBeCloseTo((230 - 120) / 3, 10);
  });

  it('vLLM-style reasoning_content counts as tokens but not as content', () => {
    const s = assembleChatStream([
      { atMs: 10, text: delta('{"role":"assistant","content":""}') },
      { atMs: 20, text: delta('{"reasoning_content":"think"}') },
      { atMs: 35, text: delta('{"content":"ok"}') + 'data: [DONE]\n\n' },
    ]);
    expect(s.content).toBe('ok');
    expect(s.metrics.ttftMs).toBe(20);
    expect(s.metrics.itlMs).toEqual([15]);
  });

  it('rejects data that is not JSON, chunks of the wrong shape, errors and data after [DONE]', () => {
    expect(rejection(() => assembleChatStream([{ atMs: 1, text: 'data: hello\n\n' }])).code).toBe('OPENAI_STREAM_INVALID');
    expect(
      rejection(() => assembleChatStream([{ atMs: 1, text: 'data: {"choices":[],"object":"chat.completion"}\n\n' }])).code,
    ).toBe('OPENAI_STREAM_INVALID');
    expect(
      rejection(() => assembleChatStream([{ atMs: 1, text: 'data: {"error":{"code":500,"message":"context full"}}\n\n' }])).code,
    ).toBe('OPENAI_STREAM_ERROR');
    expect(rejection(() => assembleChatStream([...LLAMA_STREAM, { atMs: 300, text: delta('{"content":"x"}') }])).message).toContain(
      'data after [DONE]',
    );
  });

  it('rejects usage whose total is not prompt + completion', () => {
    const e = rejection(() =>
      assembleChatStream([{ atMs: 1, text: `data: {"choices":[],${base},"usage":{"completion_tokens":4,"prompt_tokens":11,"total_tokens":99}}\n\n` }]),
    );
    expect(e.message).toContain('total_tokens must equal prompt_tokens + completion_tokens');
  });

  it('streamMetrics with a single token has no TPOT', () => {
    expect(streamMetrics([50], 60, 1)).toEqual({ ttftMs: 50, itlMs: [], tpotMs: null, e2eMs: 60, outputTokens: 1, outputTokensFrom: 'usage' });
    expect(streamMetrics([], 60, null).ttftMs).toBeNull();
  });
});

describe('non-streaming chat completion', () => {
  const llamaServerReply = {
    choices: [{ finish_reason: 'stop', index: 0, message: { role: 'assistant', content: '你好！' } }],
    created: 1717200000,
    model: 'tiny-llama-q4_k_m.gguf',
    system_fingerprint: 'b6800-abc1234',
    object: 'chat.completion',
    usage: { completion_tokens: 3, prompt_tokens: 11, total_tokens: 14 },
    id: 'chatcmpl-Zx81',
    timings: { prompt_n: 11, predicted_n: 3 },
  };

  it('accepts a llama-server reply and keeps extra fields', () => {
    const r = parseChatCompletion(llamaServerReply);
    expect(r.choices[0]?.message.content).toBe('你好！');
    expect(r.usage.completion_tokens).toBe(3);
    expect((r as Record<string, unknown>)['timings']).toEqual({ prompt_n: 11, predicted_n: 3 });
  });

  it('rejects a reply without usage, with the wrong object or with no choices', () => {
    const { usage: _u, ...noUsage } = llamaServerReply;
    expect(rejection(() => parseChatCompletion(noUsage)).message).toContain('usage');
    expect(rejection(() => parseChatCompletion({ ...llamaServerReply, object: 'text_completion' })).message).toContain('object');
    expect(rejection(() => parseChatCompletion({ ...llamaServerReply, choices: [] })).message).toContain('choices');
    expect(rejection(() => parseChatCompletion('{"choices": []}')).code).toBe('OPENAI_RESPONSE_INVALID');
  });
});

describe('reading a live SSE response over loopback', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Role chunk at once, the first token 150 ms later, then one every 60 ms after the previous
      // write (chained, so a late timer on a busy host delays the rest instead of bunching them).
      const send = (i: number): void => {
        const p = LLAMA_STREAM[i]!;
        if (p.text === 'data: [DONE]\n\n') return void res.end(p.text);
        res.write(p.text);
        setTimeout(() => send(i + 1), i === 0 ? 150 : 60);
      };
      send(0);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('stamps arrival times so TTFT, ITL and E2E reflect the server’s pacing', async () => {
    const t0 = performance.now();
    const res = await fetch(url, { method: 'POST', body: '{}' });
    const s = await readChatStream(res.body!, t0);
    expect(s.done).toBe(true);
    expect(s.content).toBe('你好，世界');
    const m = s.metrics;
    expect(m.ttftMs!).toBeGreaterThanOrEqual(145);
    expect(m.ttftMs!).toBeLessThan(1000);
    expect(m.itlMs).toHaveLength(3);
    // Stamped as each chunk arrived: together the gaps span the server's pacing (stamps taken at
    // the end would sum to about 0). One pair may still share a read on a busy host, so the
    // typical gap is checked, not every one.
    const sum = m.itlMs.reduce((a, b) => a + b, 0);
    expect(sum).toBeGreaterThanOrEqual(3 * 55);
    expect([...m.itlMs].sort((a, b) => a - b)[1]).toBeGreaterThanOrEqual(40);
    for (const gap of m.itlMs) expect(gap).toBeLessThan(1000);
    expect(m.e2eMs!).toBeGreaterThanOrEqual(m.ttftMs! + sum);
  });
});
