/**
 * The openai-chat probe against a real llama-server (workspace-cpu image, tiny model), plain and
 * streamed, with llama.cpp's own token counter; and the same probe after the server is gone.
 */
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { openaiChatProbe } from '../../graders/openai-chat.js';
import { Deadline, runProbe, type ProbeOutcome, type SeatHandle } from '../../graders/probe.js';
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

/** A seat of one container whose port 8080 is published on loopback; its path check asks the engine. */
function containerSeat(c: Docker.Container, hostPort: () => number): SeatHandle {
  return {
    id: TEST,
    labels: LABEL,
    async endpoint(port) {
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

describe.skipIf(!hasEngine)('openai-chat probe on a real llama-server', () => {
  let c: Docker.Container;
  let port = 0;
  let seat: SeatHandle;
  const counter = { target: { port: 8080 }, metric: 'llamacpp:tokens_predicted_total' };
  const base = { kind: 'openai-chat', target: { port: 8080 } };

  beforeAll(async () => {
    const ref = await requireImage('workspace-cpu');
    await removeOurs();
    // Our own network: the test does not lean on the engine's default bridge.
    const net = await docker.createNetwork({ Name: `deploylab-test-${TEST}`, Labels: LABEL });
    c = await docker.createContainer({
      Image: ref,
      Cmd: ['llama-server', '-m', '/opt/models/tiny-llama-f16.gguf', '--host', '0.0.0.0', '--port', '8080', '-c', '512', '-t', '1', '--metrics'],
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
    seat = containerSeat(c, () => port);
    const until = Date.now() + 60_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > until) throw new Error('llama-server did not become healthy');
      await new Promise((r) => setTimeout(r, 300));
    }
  });

  afterAll(async () => {
    await removeOurs();
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

  it('fails once the server is gone but the seat is still there', async () => {
    await c.stop({ t: 1 });
    const o = await runProbe(openaiChatProbe, seat, { ...base, timeoutMs: 5000 }, Deadline.after(30_000));
    expect(o.status, JSON.stringify(o, null, 1)).toBe('fail');
    expect(o.summary.en).toContain('unreachable');
  });
});
