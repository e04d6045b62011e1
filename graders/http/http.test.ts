import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback } from '../__helpers__/loopback-server.js';
import { closedPort, tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { httpProbe } from './http.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';

// A real HTTP server on loopback plays the candidate's service; the seat maps its port 8000 to it.
let server: Server;
let port: number;
let seen: { method: string; url: string; body: string; contentType: string | undefined }[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body, contentType: req.headers['content-type'] });
      const json = (status: number, v: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': 'r-42' });
        res.end(JSON.stringify(v));
      };
      if (req.url === '/health') return json(200, { status: 'ok' });
      if (req.url === '/v1/chat/completions' && req.method === 'POST') {
        return json(200, {
          id: 'chatcmpl-1',
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content: '你好' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
        });
      }
      if (req.url === '/slow') return void setTimeout(() => json(200, { status: 'ok' }), 600);
      if (req.url === '/big') return json(200, { data: 'x'.repeat(1_200_000) });
      json(404, { error: 'not found' });
    });
  });
  port = await listenOnLoopback(server);
});
afterAll(() => closeServer(server));

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
  seat.ports.set(8000, port);
  seen = [];
});
afterEach(async () => {
  await seat.cleanup();
});

const run = (params: unknown, ms = 5000): Promise<ProbeOutcome> => runProbe(httpProbe, seat, params, Deadline.after(ms));


describe('http probe: work done right', () => {
  it('passes on status, header, JSON fields and latency, with the exchange as evidence', async () => {
    const o = await run({
      kind: 'http',
      target: { port: 8000 },
      method: 'POST',
      path: '/v1/chat/completions',
      body: { model: 'm', messages: [{ role: 'user', content: '你好' }] },
      expect: {
        headers: { 'content-type': '^application/json' },
        bodyContains: ['"assistant"'],
        bodyMatches: '"total_tokens":\\d+',
        json: [
          { pointer: '/object', equals: 'chat.completion' },
          { pointer: '/choices/0/message/content', equals: '你好' },
          { pointer: '/usage/completion_tokens' },
          { pointer: '/error', exists: false },
        ],
      },
    });
    expect(o.status).toBe('pass');
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/chat/completions', contentType: 'application/json' });
    expect(JSON.parse(seen[0]!.body)).toEqual({ model: 'm', messages: [{ role: 'user', content: '你好' }] });
    const ex = o.evidence[0]!;
    expect(ex.kind).toBe('http');
    if (ex.kind === 'http') {
      expect(ex.request.url).toBe(`http://127.0.0.1:${port}/v1/chat/completions`);
      expect(ex.response?.status).toBe(200);
      expect(ex.response?.headers).toContainEqual(['x-request-id', 'r-42']);
      expect(ex.response?.body.text).toContain('"total_tokens":11');
    }
  });
});

describe('http probe: work absent, wrong or too slow', () => {
  it('fails on the wrong status', async () => {
    const o = await run({ kind: 'http', target: { port: 8000 }, path: '/v1/models' });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(status)');
  });

  it('fails on a JSON field that is wrong or missing', async () => {
    const o = await run({ kind: 'http', target: { port: 8000 }, path: '/health', expect: { json: [{ pointer: '/status', equals: 'ok' }, { pointer: '/model' }] } });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('1 of 3 expectation(s) not met (json:/model)');
  });

  it('nothing listening, harness path fine → fail', async () => {
    seat.ports.set(9000, await closedPort());
    const o = await run({ kind: 'http', target: { port: 9000 }, path: '/health' });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toBe("the candidate's service is unreachable (ECONNREFUSED)");
  });

  it('slower than the candidate’s allowance → fail', async () => {
    const o = await run({ kind: 'http', target: { port: 8000 }, path: '/slow', timeoutMs: 150 });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toBe('the service did not answer within 150 ms');
  });

  it('a JSON check on a body past the read limit fails, saying so', async () => {
    const o = await run({ kind: 'http', target: { port: 8000 }, path: '/big', expect: { json: [{ pointer: '/data' }] } });
    expect(o.status).toBe('fail');
    expect(JSON.stringify(o.evidence)).toContain('body larger than the read limit');
  });
});

describe('http probe: could not judge', () => {
  it('nothing listening because the harness path is down → error', async () => {
    seat.ports.set(9000, await closedPort());
    seat.breakPath(true);
    const o = await run({ kind: 'http', target: { port: 9000 }, path: '/health' });
    expect(o.status).toBe('error');
    expect(o.error?.fault).toBe('infrastructure');
    expect(o.evidence.some((e) => e.kind === 'http' && e.failure === 'ECONNREFUSED')).toBe(true);
  });

  it('the harness’s deadline passing before the candidate’s allowance → error PROBE_DEADLINE', async () => {
    const o = await run({ kind: 'http', target: { port: 8000 }, path: '/slow', timeoutMs: 5000 }, 150);
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_DEADLINE');
  });

  it('a port fetch refuses to use is a config error in the task, not the candidate’s fail', async () => {
    const o = await run({ kind: 'http', target: { port: 6000 }, path: '/health' });
    expect(o.error).toMatchObject({ code: 'PROBE_PORT_BLOCKED', fault: 'config' });
  });

  it('invalid parameters → config error', async () => {
    const o = await run({ kind: 'http', target: { port: 0 }, path: 'health', expect: { json: [{ path: 'x' }] } });
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_PARAMS_INVALID');
    expect(o.error?.message.en).toContain('target.port');
    expect(o.error?.message.en).toContain('unknown key(s): path');
  });
});

describe('http probe: a fresh nonce per request and the answering service’s signature', () => {
  // The task's upstream signs msg with a root-only key; an imitation echoes the query with no key.
  const KEY = 'k3y-only-the-upstream-reads';
  let signer: Server;
  let signerPort: number;
  let lastSig = '';
  const sign = async (msg: string): Promise<string> => {
    const { createHmac } = await import('node:crypto');
    return createHmac('sha256', KEY).update(msg).digest('hex');
  };
  beforeAll(async () => {
    signer = createServer((req, res) => {
      void (async () => {
        const u = new URL(req.url!, 'http://x');
        const msg = u.searchParams.get('msg') ?? '';
        const body =
          u.pathname === '/real'
            ? { service: 'orders-api', echo: msg, sig: await sign(msg) }
            : u.pathname === '/replay'
              ? { service: 'orders-api', echo: msg, sig: lastSig }
              : { service: 'orders-api', echo: msg, sig: 'f'.repeat(64) };
        if (u.pathname === '/real') lastSig = body.sig;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      })();
    });
    signerPort = await listenOnLoopback(signer);
  });
  afterAll(() => closeServer(signer));

  const check = (path: string) => ({
    kind: 'http',
    target: { port: 9000 },
    path: `${path}?msg={nonce}`,
    expect: {
      json: [{ pointer: '/echo', equals: '{nonce}' }],
      signature: { pointer: '/sig', key: { seatFile: '/opt/exam/hmac.key' } },
    },
  });

  beforeEach(async () => {
    seat.ports.set(9000, signerPort);
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(join(seat.root, 'opt/exam'), { recursive: true });
    await writeFile(join(seat.root, 'opt/exam/hmac.key'), `${KEY}\n`);
  });

  it('passes the real service: its echo of a fresh nonce, signed under the key', async () => {
    const a = await run(check('/real'));
    expect(a.status, JSON.stringify(a.evidence)).toBe('pass');
    const b = await run(check('/real'));
    expect(b.status).toBe('pass');
    const urls = [a, b].map((o) => (o.evidence[0] as { request: { url: string } }).request.url);
    expect(urls[0]).toMatch(/\?msg=dl[0-9a-f]{16}$/);
    expect(urls[0]).not.toBe(urls[1]);
  });

  it('fails an imitation that echoes the query but cannot sign it, and a replayed signature', async () => {
    const canned = await run(check('/canned'));
    expect(canned.status).toBe('fail');
    expect(canned.summary.en).toContain('signature:/sig');
    await run(check('/real'));
    const replay = await run(check('/replay'));
    expect(replay.status).toBe('fail');
  });

  it('is the task’s error when its key file is missing', async () => {
    const { rm } = await import('node:fs/promises');
    await rm(join(seat.root, 'opt/exam/hmac.key'));
    const o = await run(check('/real'));
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_KEY_MISSING');
  });
});
