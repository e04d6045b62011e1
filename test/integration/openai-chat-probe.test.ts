/**
 * The openai-chat probe against a real llama-server (workspace-cpu image, tiny model), plain and
 * streamed, with llama.cpp's own token counter; provenance with that server as the reference,
 * judged on gateways a candidate could really write in front of it (a genuine forwarder, one that
 * adds defaults of its own, one that streams an unstreamed answer; a canned reply with side
 * traffic, a replay of the first answer, a swap of the question); and the same probe after the
 * server is gone.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { openaiChatProbe } from '../../graders/openai-chat/openai-chat.js';
import { Deadline, runProbe, type ProbeOutcome, type SeatHandle } from '../../graders/probe.js';
import { closeServer, listenOnLoopback } from '../../graders/__helpers__/loopback-server.js';
import { hasEngine } from '../helpers/docker-env.js';
import { requireImage } from '../helpers/images.js';

const docker = new Docker();
const TEST = 'openai-chat-probe';
const LABEL = { 'deploylab.component': 'test', 'deploylab.test': TEST };

async function removeOurs(): Promise<void> {
  const filters = JSON.stringify({ label: [`deploylab.test=${TEST}`] });
  const left = await docker.listContainers({ all: true, filters });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  const nets = await docker.listNetworks({ filters });
  await Promise.all(nets.map((n) => docker.getNetwork(n.Id).remove()));
}

/**
 * A seat of one container whose port 8080 is published on loopback (and whose port 8000 is a
 * candidate's gateway on loopback when one is set); its path check asks the engine.
 */
function containerSeat(c: Docker.Container, hostPort: () => number, gatewayPort: () => number | null = () => null): SeatHandle {
  return {
    id: TEST,
    labels: LABEL,
    async endpoint(port) {
      if (port === 8000 && gatewayPort() !== null) return { host: '127.0.0.1', port: gatewayPort()! };
      if (port !== 8080) throw new Error(`port ${port} not published`);
      return { host: '127.0.0.1', port: hostPort() };
    },
    async readFile() {
      return null;
    },
    async listProcesses() {
      return [];
    },
    async checkPath() {
      try {
        await docker.ping();
      } catch (e) {
        throw new DeploylabError({ code: 'SANDBOX_ENGINE_ERROR', fault: 'infrastructure', message: { zh: '引擎无响应', en: 'engine not answering' }, cause: e });
      }
      await c.inspect(); // the container (the seat) still exists
    },
  };
}

const assertions = (o: ProbeOutcome): Record<string, string> => {
  const n = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'expectations checked');
  const list = (n?.kind === 'note' ? n.data?.['assertions'] : []) as { id: string; actual: string }[];
  return Object.fromEntries(list.map((x) => [x.id, x.actual]));
};
const verdicts = (o: ProbeOutcome): Record<string, boolean> => {
  const n = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'expectations checked');
  const list = (n?.kind === 'note' ? n.data?.['assertions'] : []) as { id: string; ok: boolean }[];
  return Object.fromEntries(list.map((x) => [x.id, x.ok]));
};
type ProvenanceRow = { request: number; nonce: string; message: string; candidate: string; reference: string; match: boolean };
const provenanceRows = (o: ProbeOutcome): ProvenanceRow[] => {
  const n = o.evidence.find((e) => e.kind === 'note' && e.text.en.startsWith('provenance:'));
  return (n?.kind === 'note' ? n.data?.['requests'] : []) as ProvenanceRow[];
};

// ---------------------------------------------------------------------------------------------
// Gateways a candidate could put on port 8000 in front of the model server

type Upstream = () => string;
type Handler = (body: Record<string, unknown>, res: ServerResponse) => Promise<void>;

function gateway(handle: Handler): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (raw += d));
    req.on('end', () => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        res.writeHead(422, { 'content-type': 'application/json' }).end('{"error":"invalid JSON"}');
        return;
      }
      handle(body, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: String(e) }));
      });
    });
  });
}

/**
 * POST JSON upstream on a connection of its own: llama-server closes idle keep-alive connections,
 * and fetch's pool would then send the next request on a closed socket ("other side closed").
 */
function postJson(url: string, body: unknown): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
      resolve(new Response(Readable.toWeb(res) as ReadableStream, { status: res.statusCode ?? 502, headers }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** POST a body upstream and relay status, type and bytes as they come (streamed or not). */
async function relay(up: Upstream, body: unknown, res: ServerResponse): Promise<void> {
  const r = await postJson(`${up()}/v1/chat/completions`, body);
  res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
  if (r.body) for await (const chunk of r.body) res.write(chunk);
  res.end();
}

/** A throw-away request of the gateway's own that makes the server generate 64 tokens. */
async function sideTraffic(up: Upstream): Promise<void> {
  const r = await postJson(`${up()}/v1/chat/completions`, { messages: [{ role: 'user', content: 'warm up' }], max_tokens: 64, ignore_eos: true, stream: true });
  await r.text();
}

function sse(res: ServerResponse, content: string, model: string, usage?: object): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const base = { id: 'chatcmpl-gw', object: 'chat.completion.chunk', created: 1717200000, model };
  const pieces = content.match(/[\s\S]{1,3}/gu) ?? [];
  pieces.forEach((piece, i) => res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: piece } : { content: piece } }] })}\n\n`));
  res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], ...(usage ? { usage } : {}) })}\n\n`);
  res.end('data: [DONE]\n\n');
}

const gateways = {
  /** The work done: the request passed on as it came. */
  forwarder: (up: Upstream): Handler => (body, res) => relay(up, body, res),
  /** Also correct: defaults of its own for what the caller left out, fields greedy decoding ignores. */
  withDefaults: (up: Upstream): Handler => (body, res) => relay(up, { max_tokens: 256, top_p: 0.9, user: 'gateway', ...body }, res),
  /** Also correct: asks upstream unstreamed and streams the answer itself. */
  streamsItself: (up: Upstream): Handler => async (body, res) => {
    const r = await postJson(`${up()}/v1/chat/completions`, { ...body, stream: false, stream_options: undefined });
    const j = (await r.json()) as { model: string; usage: object; choices: { message: { content: string } }[] };
    if (!body['stream']) {
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(j));
      return;
    }
    sse(res, j.choices[0]!.message.content, j.model, j.usage);
  },
  /** Shortcut: a canned reply, with side traffic so the server's counter moves more than claimed. */
  cannedWithSideTraffic: (up: Upstream): Handler => async (body, res) => {
    await sideTraffic(up);
    const text = '你好，我是本地部署的大语言模型助手。';
    const usage = { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 };
    if (body['stream']) return sse(res, text, 'tiny-llama', usage);
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({ id: 'chatcmpl-c', object: 'chat.completion', created: 1717200000, model: 'tiny-llama', choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage }),
    );
  },
  /** Shortcut: the first real answer kept and replayed for every later question, plus side traffic. */
  replayFirst: (up: Upstream): Handler => {
    let first: { model: string; usage: object; choices: { message: { content: string } }[] } | null = null;
    return async (body, res) => {
      if (!first) {
        const r = await postJson(`${up()}/v1/chat/completions`, { ...body, stream: false, stream_options: undefined });
        first = (await r.json()) as typeof first;
      } else {
        await sideTraffic(up);
      }
      if (body['stream']) return sse(res, first!.choices[0]!.message.content, first!.model, first!.usage);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...first, id: `chatcmpl-${Date.now()}` }));
    };
  },
  /** Shortcut: really asks the server, but a fixed question instead of the caller's. */
  fixedQuestion: (up: Upstream): Handler => (body, res) => relay(up, { ...body, messages: [{ role: 'user', content: '0a1b2c3d4e5f6a7b' }] }, res),
};

describe.skipIf(!hasEngine)('openai-chat probe on a real llama-server', () => {
  let c: Docker.Container;
  let port = 0;
  let seat: SeatHandle;
  let gw: Server | null = null;
  let gwPort: number | null = null;
  const counter = { target: { port: 8080 }, metric: 'llamacpp:tokens_predicted_total' };
  const base = { kind: 'openai-chat', target: { port: 8080 } };

  beforeAll(async () => {
    const ref = await requireImage('workspace-cpu');
    await removeOurs();
    // Our own network: the test does not lean on the engine's default bridge.
    const net = await docker.createNetwork({ Name: `deploylab-test-${TEST}`, Labels: LABEL });
    c = await docker.createContainer({
      Image: ref,
      // Greedy and without a prompt cache, as a provenance reference must be.
      Cmd: ['llama-server', '-m', '/opt/models/tiny-llama-f16.gguf', '--host', '0.0.0.0', '--port', '8080', '-c', '1024', '-np', '2', '-t', '1', '--temp', '0', '--no-cache-prompt', '--metrics'],
      Labels: LABEL,
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: {
        PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
        NetworkMode: net.id,
        NanoCpus: 1_000_000_000,
        Memory: 1024 * 1024 * 1024,
        PidsLimit: 256,
      },
    });
    await c.start();
    port = Number((await c.inspect()).NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort);
    seat = containerSeat(c, () => port, () => gwPort);
    const until = Date.now() + 60_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > until) throw new Error('llama-server did not become healthy');
      await new Promise((r) => setTimeout(r, 300));
    }
  });

  afterAll(async () => {
    if (gw) await closeServer(gw);
    await removeOurs();
  });

  const upstream: Upstream = () => `http://127.0.0.1:${port}`;
  async function useGateway(make: (up: Upstream) => Handler): Promise<void> {
    if (gw) await closeServer(gw);
    gw = gateway(make(upstream));
    gwPort = await listenOnLoopback(gw);
  }
  const checked = (stream: boolean): Record<string, unknown> => ({
    kind: 'openai-chat',
    target: { port: 8000 },
    model: 'tiny-llama',
    maxTokens: 32,
    stream,
    provenance: { target: { port: 8080 } },
    expect: { usage: !stream, serverCounter: counter },
  });

  it('passes a plain chat completion whose tokens show up in llama.cpp’s own counter', async () => {
    const o = await runProbe(openaiChatProbe, seat, { ...base, maxTokens: 12, expect: { serverCounter: counter } }, Deadline.after(60_000));
    expect(o.status, JSON.stringify(o, null, 1)).toBe('pass');
    const a = assertions(o);
    expect(Number(a['usage'])).toBeGreaterThanOrEqual(1);
    expect(Number(a['serverCounter']!.slice(1))).toBeGreaterThanOrEqual(Number(a['usage']));
    const [before, after] = o.evidence.filter((e) => e.kind === 'metrics');
    expect(before?.kind === 'metrics' && after?.kind === 'metrics' && after.samples[0]!.value > before.samples[0]!.value).toBe(true);
  });

  it('passes a streamed completion and records TTFT and E2E from real chunk arrivals', async () => {
    const o = await runProbe(
      openaiChatProbe,
      seat,
      { ...base, stream: true, maxTokens: 12, expect: { serverCounter: counter } },
      Deadline.after(60_000),
    );
    expect(o.status, JSON.stringify(o, null, 1)).toBe('pass');
    const timing = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'stream timings');
    const m = (timing?.kind === 'note' ? timing.data : {}) as { ttftMs: number; e2eMs: number; chunks: number };
    expect(m.ttftMs).toBeGreaterThan(0);
    expect(m.e2eMs).toBeGreaterThanOrEqual(m.ttftMs);
    expect(m.chunks).toBeGreaterThanOrEqual(2);
  });

  it('fails when the counter named is not the server’s (a vLLM name on llama.cpp)', async () => {
    const o = await runProbe(openaiChatProbe, seat, { ...base, expect: { serverCounter: { ...counter, metric: 'vllm:generation_tokens_total' } } }, Deadline.after(60_000));
    expect(o.status).toBe('fail');
    expect(assertions(o)['serverCounter']).toBe('(counter absent)');
  });

  describe('provenance: each answer must be the reference server’s own answer to that very request', () => {
    it.each([false, true])('a genuine forwarder passes (stream %s), every request with its own nonce and a distinct reference answer', async (stream) => {
      await useGateway(gateways.forwarder);
      const o = await runProbe(openaiChatProbe, seat, checked(stream), Deadline.after(60_000));
      expect(o.status, JSON.stringify(o, null, 1)).toBe('pass');
      const rows = provenanceRows(o);
      expect(rows).toHaveLength(3);
      expect(new Set(rows.map((r) => r.nonce)).size).toBe(3);
      expect(new Set(rows.map((r) => r.reference)).size).toBe(3);
      for (const r of rows) {
        expect(r.nonce).toMatch(/^[0-9a-f]{16}$/);
        expect(r.message).toBe(r.nonce);
        expect(r.candidate).toBe(r.reference);
      }
    });

    it('a gateway that adds defaults of its own for what the caller left out still passes', async () => {
      await useGateway(gateways.withDefaults);
      const o = await runProbe(openaiChatProbe, seat, checked(false), Deadline.after(60_000));
      expect(o.status, JSON.stringify(o, null, 1)).toBe('pass');
    });

    it('a gateway that streams an unstreamed upstream answer itself still passes', async () => {
      await useGateway(gateways.streamsItself);
      const o = await runProbe(openaiChatProbe, seat, checked(true), Deadline.after(60_000));
      expect(o.status, JSON.stringify(o, null, 1)).toBe('pass');
    });

    it.each([false, true])('a canned reply with side traffic fails on provenance alone (stream %s): the counter moved', async (stream) => {
      await useGateway(gateways.cannedWithSideTraffic);
      const o = await runProbe(openaiChatProbe, seat, checked(stream), Deadline.after(60_000));
      expect(o.status).toBe('fail');
      const v = verdicts(o);
      expect(v['serverCounter']).toBe(true);
      expect([v['provenance#1'], v['provenance#2'], v['provenance#3']]).toEqual([false, false, false]);
      expect(o.summary.en).toContain('provenance#1');
      // The evidence shows both texts side by side.
      for (const r of provenanceRows(o)) {
        expect(r.candidate).toBe('你好，我是本地部署的大语言模型助手。');
        expect(r.reference.length).toBeGreaterThan(0);
        expect(r.match).toBe(false);
      }
    });

    it.each([false, true])('a replay of the first real answer fails (stream %s): at most one request can match it', async (stream) => {
      await useGateway(gateways.replayFirst);
      const o = await runProbe(openaiChatProbe, seat, checked(stream), Deadline.after(60_000));
      expect(o.status).toBe('fail');
      const rows = provenanceRows(o);
      expect(rows[0]!.match, 'the first request was really forwarded').toBe(true);
      expect(rows.slice(1).map((r) => r.match)).toEqual([false, false]);
      expect(rows[1]!.candidate).toBe(rows[0]!.candidate);
    });

    it('the model’s real answer to another question fails, though the counter moves honestly', async () => {
      await useGateway(gateways.fixedQuestion);
      const o = await runProbe(openaiChatProbe, seat, checked(true), Deadline.after(60_000));
      expect(o.status).toBe('fail');
      const v = verdicts(o);
      expect(v['serverCounter']).toBe(true);
      expect(provenanceRows(o).filter((r) => r.match).length).toBeLessThanOrEqual(1);
    });

    it('the same request to the reference gives the same text, and different nonces mostly different texts', async () => {
      const ask = async (content: string): Promise<string | null> => {
        const r = await postJson(`${upstream()}/v1/chat/completions`, { messages: [{ role: 'user', content }], max_tokens: 32, temperature: 0 });
        const j = (await r.json()) as { choices?: { message: { content: string } }[] };
        return j.choices?.[0]?.message.content ?? null;
      };
      const texts: string[] = [];
      for (let i = 0; i < 12; i++) {
        const nonce = `${i.toString(16).padStart(2, '0')}${'5e7a91c3d2b4f6'}`;
        const a = await ask(nonce);
        expect(await ask(nonce)).toBe(a);
        if (a !== null) texts.push(a);
      }
      expect(texts.length).toBeGreaterThanOrEqual(6);
      expect(new Set(texts).size).toBeGreaterThanOrEqual(texts.length / 2);
    });
  });

  it('fails once the server is gone but the seat is still there', async () => {
    await c.stop({ t: 1 });
    const o = await runProbe(openaiChatProbe, seat, { ...base, timeoutMs: 5000 }, Deadline.after(30_000));
    expect(o.status, JSON.stringify(o, null, 1)).toBe('fail');
    expect(o.summary.en).toContain('unreachable');
  });
});
