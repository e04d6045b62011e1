import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gguf } from '@huggingface/gguf';
import Docker from 'dockerode';
import { extract as tarExtract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasEngine } from '../helpers/docker-env.js';
import { requireImage } from '../helpers/images.js';

const docker = new Docker();
const LABEL = { 'deploylab.component': 'test', 'deploylab.test': 'llama-tools' };
const MOSTLY_Q4_K_M = 15;
const GGML_TYPE_Q4_K = 12;

async function removeOurs(): Promise<void> {
  const filters = JSON.stringify({ label: ['deploylab.test=llama-tools'] });
  const left = await docker.listContainers({ all: true, filters });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  const nets = await docker.listNetworks({ filters });
  await Promise.all(nets.map((n) => docker.getNetwork(n.Id).remove()));
}

async function exec(c: Docker.Container, cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const e = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await e.start({});
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (b: Buffer) => (stdout += b.toString()));
  err.on('data', (b: Buffer) => (stderr += b.toString()));
  docker.modem.demuxStream(stream, out, err);
  await new Promise((r) => stream.on('end', r));
  const { ExitCode } = await e.inspect();
  return { code: ExitCode ?? -1, stdout, stderr };
}

/** Copy one file out through the engine's archive API (never through the sandbox's own tools). */
async function copyOut(c: Docker.Container, path: string, dest: string): Promise<void> {
  const archive = await c.getArchive({ path });
  const ex = tarExtract();
  let found = false;
  ex.on('entry', (header, stream, next) => {
    if (header.type === 'file' && !found) {
      found = true;
      pipeline(stream, createWriteStream(dest)).then(() => next(), next);
    } else {
      stream.on('end', () => next());
      stream.resume();
    }
  });
  await pipeline(archive, ex);
  if (!found) throw new Error(`no file at ${path}`);
}

describe.skipIf(!hasEngine)('llama.cpp tools in the workspace-cpu image', () => {
  let container: Docker.Container;
  let port = 0;
  const tmp = mkdtempSync(join(tmpdir(), 'llama-tools-'));

  beforeAll(async () => {
    const ref = await requireImage('workspace-cpu');
    await removeOurs();
    // Its own network, like a seat's, rather than the engine's default bridge.
    const net = await docker.createNetwork({ Name: `deploylab-test-llama-tools-${process.pid}`, Labels: LABEL });
    container = await docker.createContainer({
      Image: ref,
      Cmd: ['sleep', 'infinity'],
      Labels: LABEL,
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: {
        // Loopback only; the engine picks a free port.
        PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
        NanoCpus: 1_000_000_000,
        Memory: 1024 * 1024 * 1024,
        PidsLimit: 256,
        NetworkMode: net.id,
      },
    });
    await container.start();
    const info = await container.inspect();
    port = Number(info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort);
  });

  afterAll(async () => {
    await removeOurs();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('runs as the candidate in /workspace and ships the model with its manifest', async () => {
    const who = await exec(container, ['sh', '-c', 'id -un; pwd; cat /opt/models/manifest.json; sha256sum /opt/models/tiny-llama-f16.gguf']);
    expect(who.code).toBe(0);
    const [user, cwd] = who.stdout.split('\n');
    expect(user).toBe('candidate');
    expect(cwd).toBe('/workspace');
    const manifest = JSON.parse(who.stdout.slice(who.stdout.indexOf('{'), who.stdout.lastIndexOf('}') + 1)) as {
      models: Array<{ file: string; sha256: string; bytes: number }>;
    };
    const tiny = manifest.models.find((m) => m.file === 'tiny-llama-f16.gguf');
    expect(tiny).toBeDefined();
    expect(who.stdout).toContain(`${tiny!.sha256}  /opt/models/tiny-llama-f16.gguf`);
  });

  it('llama-quantize turns the F16 model into a smaller Q4_K_M whose header says so', async () => {
    const q = await exec(container, ['llama-quantize', '/opt/models/tiny-llama-f16.gguf', '/workspace/tiny-q4km.gguf', 'Q4_K_M']);
    expect(q.code, q.stderr.slice(-2000)).toBe(0);
    const sizes = await exec(container, ['stat', '-c', '%s', '/opt/models/tiny-llama-f16.gguf', '/workspace/tiny-q4km.gguf']);
    const [f16, q4] = sizes.stdout.trim().split('\n').map(Number);
    expect(q4).toBeGreaterThan(0);
    expect(q4!).toBeLessThan(f16! / 2);

    const local = join(tmp, 'tiny-q4km.gguf');
    await copyOut(container, '/workspace/tiny-q4km.gguf', local);
    const { metadata, tensorInfos } = await gguf(local, { allowLocalFile: true });
    const kv = metadata as Record<string, unknown>;
    expect(kv['general.architecture']).toBe('llama');
    expect(kv['general.file_type']).toBe(MOSTLY_Q4_K_M);
    // The tensors themselves, not just the label: most 2-D weights are Q4_K.
    const q4k = tensorInfos.filter((t) => t.dtype === GGML_TYPE_Q4_K).length;
    expect(q4k).toBeGreaterThan(tensorInfos.length / 2);
  });

  it('llama-server serves the quantized model and answers chat completions with real token counts', async () => {
    const e = await container.exec({
      Cmd: ['sh', '-c', 'exec llama-server -m /workspace/tiny-q4km.gguf --host 0.0.0.0 --port 8080 -c 512 -t 1 --metrics >/workspace/server.log 2>&1'],
      AttachStdout: false,
      AttachStderr: false,
    });
    await e.start({ Detach: true });
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    let healthy = false;
    while (!healthy && Date.now() < deadline) {
      try {
        healthy = (await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) })).ok;
      } catch {
        // not listening yet
      }
      if (!healthy) await new Promise((r) => setTimeout(r, 500));
    }
    if (!healthy) {
      const log = await exec(container, ['tail', '-n', '30', '/workspace/server.log']);
      throw new Error(`llama-server did not become healthy:\n${log.stdout}`);
    }
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: '你好，请介绍一下大模型部署。' }], max_tokens: 8, temperature: 0 }),
      signal: AbortSignal.timeout(30_000),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      choices: Array<{ message?: { role: string; content: string } }>;
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    expect(body.choices[0]?.message?.role).toBe('assistant');
    expect(typeof body.choices[0]?.message?.content).toBe('string');
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
    // The server's own counter moved too.
    const m = await (await fetch(`${base}/metrics`)).text();
    expect(m).toMatch(/llamacpp:tokens_predicted_total \d*[1-9]/);
  });
});

describe.skipIf(!hasEngine)('the grader toolbox image', () => {
  let container: Docker.Container;

  beforeAll(async () => {
    const ref = await requireImage('toolbox');
    container = await docker.createContainer({
      Image: ref,
      Labels: { ...LABEL, 'deploylab.toolbox': 'yes' },
      HostConfig: { NetworkMode: 'none', NanoCpus: 1_000_000_000, Memory: 512 * 1024 * 1024 },
    });
    await container.start();
  });

  afterAll(async () => {
    await container?.remove({ force: true });
  });

  it('is labelled as the toolbox and carries the same llama tools and models', async () => {
    const info = await container.inspect();
    expect(info.Config.Labels['deploylab.role']).toBe('toolbox');
    const r = await exec(container, ['sh', '-c', 'for t in llama-quantize llama-server llama-cli llama-perplexity llama-imatrix llama-bench llama-gguf-split; do command -v $t || exit 1; done; sha256sum /opt/models/tiny-llama-f16.gguf']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{64} {2}\/opt\/models\/tiny-llama-f16\.gguf$/m);
  });

  it('nginx -t accepts a valid copied config and rejects a broken one', async () => {
    const ok = 'events {}\nhttp { server { listen 8080; location / { return 200 "ok"; } } }\n';
    const bad = 'events {}\nhttp { server { listen 8080; location / { retrun 200; } } }\n';
    const good = await exec(container, ['sh', '-c', `printf '%s' '${ok}' > /tmp/ok.conf && nginx -t -c /tmp/ok.conf`]);
    expect(good.code, good.stderr).toBe(0);
    const broken = await exec(container, ['sh', '-c', `printf '%s' '${bad}' > /tmp/bad.conf && nginx -t -c /tmp/bad.conf`]);
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toMatch(/unknown directive "retrun"/);
  });
});
