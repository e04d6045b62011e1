/**
 * The openai-chat probe against wrong work a candidate can really hand in, served on loopback:
 * a "gateway" that returns canned OpenAI JSON without running a model, one whose metrics endpoint
 * is missing, and a stream cut before [DONE]. The passing case runs against a real llama-server
 * in test/integration/openai-chat-probe.test.ts.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback } from '../__helpers__/loopback-server.js';
import { closedPort, tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { openaiChatProbe } from './openai-chat.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';

const CANNED = {
  id: 'chatcmpl-fake',
  object: 'chat.completion',
  created: 1717200000,
  model: 'qwen2-7b',
  choices: [{ index: 0, message: { role: 'assistant', content: '我是一个大语言模型。' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 },
};
// A counter that never moves: what a fake server that copied llama.cpp's /metrics would serve.
const STATIC_METRICS = '# TYPE llamacpp:tokens_predicted_total counter\nllamacpp:tokens_predicted_total 96\n';

let server: Server;
let port: number;
beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/v1/chat/completions') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(CANNED));
      }
      if (req.url === '/cut/v1/chat/completions') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"你"}}]}\n\n');
        return res.end();
      }
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        return res.end(STATIC_METRICS);
      }
      res.writeHead(404).end();
    });
  });
  port = await listenOnLoopback(server);
});
afterAll(() => closeServer(server));

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
  seat.ports.set(8000, port);
  seat.ports.set(8080, port);
});
afterEach(async () => {
  await seat.cleanup();
});

const run = (params: Record<string, unknown>): Promise<ProbeOutcome> =>
  runProbe(openaiChatProbe, seat, { kind: 'openai-chat', target: { port: 8000 }, ...params }, Deadline.after(10_000));
const assertions = (o: ProbeOutcome): Record<string, boolean> => {
  const n = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'expectations checked');
  const list = (n?.kind === 'note' ? n.data?.['assertions'] : []) as { id: string; ok: boolean }[];
  return Object.fromEntries(list.map((x) => [x.id, x.ok]));
};
const counter = { target: { port: 8080 }, metric: 'llamacpp:tokens_predicted_total' };

describe('openai-chat probe: canned answers do not pass', () => {
  it('a well-formed canned reply fails because the model server’s token counter did not move', async () => {
    const o = await run({ expect: { serverCounter: counter } });
    expect(o.status).toBe('fail');
    expect(assertions(o)).toEqual({ response: true, usage: true, content: true, serverCounter: false });
    const m = o.evidence.filter((e) => e.kind === 'metrics');
    expect(m).toHaveLength(2);
    expect(m[0]).toMatchObject({ samples: [{ name: 'llamacpp:tokens_predicted_total', value: 96 }] });
  });

  it('a counter that is absent from the exposition fails the same way', async () => {
    const o = await run({ expect: { serverCounter: { ...counter, metric: 'vllm:generation_tokens_total' } } });
    expect(o.status).toBe('fail');
    expect(assertions(o)['serverCounter']).toBe(false);
  });

  it('a metrics endpoint that does not exist is a fail, not an error', async () => {
    const o = await run({ expect: { serverCounter: { ...counter, path: '/no-metrics' } } });
    expect(o.status).toBe('fail');
    expect(JSON.stringify(o.evidence)).toContain('HTTP 404');
  });

  it('without the counter check the canned reply would pass: that is why tasks name one', async () => {
    expect((await run({})).status).toBe('pass');
  });

  it('fails when the served model is not the one asked for', async () => {
    const o = await run({ expect: { model: 'tiny-llama' } });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(model)');
  });

  it('a stream that ends without [DONE] fails on the response', async () => {
    const o = await run({ path: '/cut/v1/chat/completions', stream: true });
    expect(o.status).toBe('fail');
    expect(assertions(o)['response']).toBe(false);
    expect(o.evidence[0]).toMatchObject({ kind: 'http', response: { status: 200 } });
  });
});

describe('openai-chat probe: whose fault', () => {
  it('metrics unreachable because the harness path is down → error', async () => {
    seat.ports.set(8080, await closedPort());
    seat.breakPath(true);
    const o = await run({ expect: { serverCounter: counter } });
    expect(o.status).toBe('error');
    expect(o.error?.fault).toBe('infrastructure');
  });

  it('the API not listening with the harness path fine → fail', async () => {
    seat.ports.set(8000, await closedPort());
    const o = await run({});
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('unreachable (ECONNREFUSED)');
  });
});

describe('openai-chat probe: cachePrompt', () => {
  it('chatBody sends cache_prompt only when the check gives cachePrompt', async () => {
    const { chatBody } = await import('./openai-chat.js');
    expect(chatBody({ maxTokens: 8, cachePrompt: false }, 'hi', false)).toMatchObject({ cache_prompt: false, temperature: 0 });
    expect(chatBody({ maxTokens: 8, cachePrompt: true }, 'hi', false)).toMatchObject({ cache_prompt: true });
    expect('cache_prompt' in chatBody({ maxTokens: 8 }, 'hi', false)).toBe(false);
  });
  it('the request the server receives carries cache_prompt: false', async () => {
    const bodies: unknown[] = [];
    const rec = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(CANNED));
      });
    });
    const recPort = await listenOnLoopback(rec);
    try {
      seat.ports.set(8001, recPort);
      await runProbe(openaiChatProbe, seat, { kind: 'openai-chat', target: { port: 8001 }, cachePrompt: false }, Deadline.after(10_000));
      expect(bodies).toHaveLength(1);
      expect(bodies[0]).toMatchObject({ cache_prompt: false, temperature: 0 });
    } finally {
      await closeServer(rec);
    }
  });
});
