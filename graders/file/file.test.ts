import { createHash } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { checkJsonDocuments, fileProbe } from './file.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
  // The seat's own user database, read by the probe as a file to name owners.
  await put('/etc/passwd', `root:x:0:0:root:/root:/bin/bash\ncandidate:x:1000:1000::/workspace:/bin/bash\n${userInfo().username}:x:${process.getuid!()}:0::/:/bin/sh\n`);
});
afterEach(async () => {
  await seat.cleanup();
});

async function put(path: string, content: string | Buffer, mode = 0o644): Promise<void> {
  const host = join(seat.root, path);
  await mkdir(join(host, '..'), { recursive: true });
  await writeFile(host, content);
  await chmod(host, mode);
}

const run = (params: Record<string, unknown>): Promise<ProbeOutcome> =>
  runProbe(fileProbe, seat, { kind: 'file', ...params }, Deadline.after(5000));
const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

const ENV = 'MODEL_PATH=/models/qwen2-0.5b-q4_k_m.gguf\nAPI_KEY=sk-local-123\n';

describe('file probe: work done right', () => {
  it('passes on mode, owner, size, sha256 and content, with the file as evidence', async () => {
    await put('/workspace/.env', ENV, 0o600);
    const o = await run({
      path: '/workspace/.env',
      expect: { mode: '0600', owner: userInfo().username, minBytes: 10, maxBytes: 4096, sha256: sha(ENV), contains: ['API_KEY='], matches: '^MODEL_PATH=.+\\.gguf$' },
    });
    expect(o.status, JSON.stringify(o)).toBe('pass');
    expect(o.evidence[0]).toMatchObject({ kind: 'file', exists: true, mode: '0600', size: ENV.length, sha256: sha(ENV), excerpt: { text: ENV, truncated: false } });
  });

  it('passes a model that still matches the manifest in the image', async () => {
    const model = Buffer.alloc(3000, 9);
    await put('/opt/models/tiny.gguf', model);
    await put('/opt/models/manifest.json', JSON.stringify({ generator: 'x', models: [{ file: 'tiny.gguf', sha256: sha(model), bytes: 3000 }] }));
    const o = await run({ path: '/opt/models/tiny.gguf', expect: { sha256FromManifest: { manifest: '/opt/models/manifest.json', file: 'tiny.gguf' } } });
    expect(o.status).toBe('pass');
  });

  it('passes when a file that must be gone is gone', async () => {
    const o = await run({ path: '/workspace/secret.key', expect: { exists: false } });
    expect(o.status).toBe('pass');
    expect(o.evidence[0]).toEqual({ kind: 'file', path: '/workspace/secret.key', exists: false });
  });
});

describe('file probe: work absent or wrong', () => {
  it('fails when the file is missing', async () => {
    const o = await run({ path: '/workspace/.env' });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toBe('file not found: /workspace/.env');
  });

  it('fails when a file that must be removed is still there', async () => {
    await put('/workspace/secret.key', 'x');
    expect((await run({ path: '/workspace/secret.key', expect: { exists: false } })).status).toBe('fail');
  });

  it('fails on a world-readable secret owned by someone else, naming what is wrong', async () => {
    await put('/workspace/.env', ENV, 0o644);
    const o = await run({ path: '/workspace/.env', expect: { mode: '0600', owner: 'candidate', contains: ['API_KEY='] } });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toBe('file /workspace/.env: 2 of 3 expectation(s) not met (mode, owner)');
  });

  it('fails a modified model against the manifest, on digest and size', async () => {
    const model = Buffer.alloc(3000, 9);
    await put('/opt/models/tiny.gguf', Buffer.concat([model, Buffer.from('x')]));
    await put('/opt/models/manifest.json', JSON.stringify({ models: [{ file: 'tiny.gguf', sha256: sha(model), bytes: 3000 }] }));
    const o = await run({ path: '/opt/models/tiny.gguf', expect: { sha256FromManifest: { manifest: '/opt/models/manifest.json', file: 'tiny.gguf' } } });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(sha256, size)');
  });

  it('fails when the manifest does not list the file', async () => {
    await put('/opt/models/tiny.gguf', 'x');
    await put('/opt/models/manifest.json', JSON.stringify({ models: [] }));
    const o = await run({ path: '/opt/models/tiny.gguf', expect: { sha256FromManifest: { manifest: '/opt/models/manifest.json', file: 'tiny.gguf' } } });
    expect(o.status).toBe('fail');
    expect(JSON.stringify(o.evidence)).toContain('tiny.gguf not listed in /opt/models/manifest.json');
  });

  it('a directory where a file should be is the candidate’s fail', async () => {
    await mkdir(join(seat.root, 'workspace/.env'), { recursive: true });
    const o = await run({ path: '/workspace/.env' });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('not a regular file');
  });
});

describe('file probe: could not judge', () => {
  it('the harness’s own path down is error, not fail', async () => {
    await put('/workspace/.env', 'x');
    seat.breakPath(true);
    const o = await run({ path: '/workspace/.env' });
    expect(o.status).toBe('error');
    expect(o.error).toMatchObject({ code: 'SANDBOX_ENGINE_ERROR', fault: 'infrastructure' });
  });

  it('invalid parameters are a config error', async () => {
    const o = await run({ path: 'workspace/.env', expect: { matches: '(unclosed', sha256: 'abc' } });
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_PARAMS_INVALID');
    expect(o.error?.message.en).toContain('path');
    expect(o.error?.message.en).toContain('expect.matches: not a valid regular expression');
  });
});

describe('JSON and JSON Lines documents against a JSON Schema', () => {
  const LOG = [
    '{"ts":"2024-06-01T08:00:00Z","model":"qwen2-0.5b","prompt_tokens":11,"completion_tokens":4,"latency_ms":312}',
    '{"ts":"2024-06-01T08:00:02Z","model":"qwen2-0.5b","prompt_tokens":20,"completion_tokens":9,"latency_ms":401}',
    '',
  ].join('\n');
  const SCHEMA = {
    type: 'object',
    required: ['ts', 'model', 'prompt_tokens', 'completion_tokens', 'latency_ms'],
    properties: {
      ts: { type: 'string' },
      model: { type: 'string', minLength: 1 },
      prompt_tokens: { type: 'integer', minimum: 0 },
      completion_tokens: { type: 'integer', minimum: 0 },
      latency_ms: { type: 'number', minimum: 0 },
    },
  };

  it('accepts records that fit and names the line of one that does not', () => {
    expect(checkJsonDocuments(LOG, 'jsonl', SCHEMA)).toEqual({ documents: 2, problems: [] });
    const bad = checkJsonDocuments(LOG + '{"ts":"x","model":"","prompt_tokens":-1,"completion_tokens":1,"latency_ms":1}\nnot json\n', 'jsonl', SCHEMA);
    expect(bad.documents).toBe(4);
    expect(bad.problems).toHaveLength(2);
    expect(bad.problems[0]).toMatch(/^line 3: /);
    expect(bad.problems[1]).toMatch(/^line 4: not JSON/);
  });

  it('checks a single JSON document', () => {
    expect(checkJsonDocuments('{"port": 8080,}', 'json').problems[0]).toMatch(/^document: not JSON/);
    expect(checkJsonDocuments('{"port": 8080}', 'json', { type: 'object', required: ['host'], properties: { host: { type: 'string' } } }).problems).toHaveLength(1);
  });
});
