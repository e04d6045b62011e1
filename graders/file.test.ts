import { createHash } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempSeat, type TempSeat } from './__helpers__/temp-seat.js';
import { fileProbe } from './file.js';
import { Deadline, runProbe, type ProbeOutcome } from './probe.js';

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
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

const run = (params: unknown): Promise<ProbeOutcome> => runProbe(fileProbe, seat, params, Deadline.after(5000));

const LOG = [
  '{"ts":"2024-06-01T08:00:00Z","model":"qwen2-0.5b","prompt_tokens":11,"completion_tokens":4,"latency_ms":312}',
  '{"ts":"2024-06-01T08:00:02Z","model":"qwen2-0.5b","prompt_tokens":20,"completion_tokens":9,"latency_ms":401}',
  '',
].join('\n');
const LOG_SCHEMA = {
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

describe('file probe: work done right', () => {
  it('passes on mode, owner, size, sha256 and content patterns, with the file as evidence', async () => {
    const env = 'MODEL_PATH=/models/qwen2-0.5b-q4_k_m.gguf\nAPI_KEY=sk-local-123\n';
    await put('/workspace/.env', env, 0o600);
    const o = await run({
      path: '/workspace/.env',
      mode: '0600',
      modeForbidden: '0077',
      uid: process.getuid!(),
      minBytes: 10,
      sha256: createHash('sha256').update(env).digest('hex'),
      contains: ['^MODEL_PATH=.+\\.gguf$', '^API_KEY=\\S+$'],
      notContains: ['^DEBUG=1'],
    });
    expect(o.status).toBe('pass');
    expect(o.score).toBe(1);
    expect(o.evidence[0]).toMatchObject({ kind: 'file', exists: true, mode: '0600', size: env.length, excerpt: { text: env, truncated: false } });
  });

  it('passes JSON Lines whose every record fits the schema', async () => {
    await put('/workspace/logs/requests.jsonl', LOG);
    const o = await run({ path: '/workspace/logs/requests.jsonl', format: 'jsonl', schema: LOG_SCHEMA, minRecords: 2 });
    expect(o.status).toBe('pass');
  });

  it('passes when a file that must be gone is gone', async () => {
    const o = await run({ path: '/workspace/secret.key', exists: false });
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
    expect((await run({ path: '/workspace/secret.key', exists: false })).status).toBe('fail');
  });

  it('fails on world-readable secrets; fraction scoring gives partial credit', async () => {
    await put('/workspace/.env', 'API_KEY=x\n', 0o644);
    const all = await run({ path: '/workspace/.env', mode: '0600', contains: ['^API_KEY='] });
    expect(all.status).toBe('fail');
    expect(all.summary.en).toBe('file /workspace/.env: 1 of 2 expectation(s) not met (mode)');
    const frac = await run({ path: '/workspace/.env', mode: '0600', contains: ['^API_KEY='], scoring: 'fraction' });
    expect(frac.status).toBe('partial');
    expect(frac.score).toBe(0.5);
  });

  it('fails JSON Lines with a record that breaks the schema, naming the line', async () => {
    await put('/workspace/logs/requests.jsonl', LOG + '{"ts":"x","model":"","prompt_tokens":-1,"completion_tokens":1,"latency_ms":1}\n');
    const o = await run({ path: '/workspace/logs/requests.jsonl', format: 'jsonl', schema: LOG_SCHEMA });
    expect(o.status).toBe('fail');
    const checked = o.evidence.find((e) => e.kind === 'note')!;
    const json = (checked.kind === 'note' ? (checked.data?.['assertions'] as { id: string; actual: string }[]) : []).find((x) => x.id === 'jsonl');
    expect(json?.actual).toContain('line 3:');
  });

  it('fails a JSON file that is not JSON, and too few records', async () => {
    await put('/workspace/config.json', '{"port": 8080,}');
    expect((await run({ path: '/workspace/config.json', format: 'json' })).status).toBe('fail');
    await put('/workspace/logs/requests.jsonl', LOG);
    expect((await run({ path: '/workspace/logs/requests.jsonl', format: 'jsonl', minRecords: 3 })).status).toBe('fail');
  });

  it('fails sha256 on a file larger than the read limit instead of hashing a prefix', async () => {
    const big = Buffer.alloc(4096, 7);
    await put('/workspace/model.bin', big);
    const o = await run({ path: '/workspace/model.bin', readBytes: 1024, sha256: createHash('sha256').update(big).digest('hex') });
    expect(o.status).toBe('fail');
    expect(o.evidence[0]).toMatchObject({ size: 4096, excerpt: { length: 4096, truncated: true } });
    expect(o.evidence[0]).not.toHaveProperty('sha256');
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

  it('invalid parameters (relative path, bad regex, bad schema) are a config error', async () => {
    const o = await run({ path: 'workspace/.env', contains: ['(unclosed'], schema: { type: 'no-such-type' } });
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('PROBE_PARAMS_INVALID');
    expect(o.error?.message.en).toContain('path');
    expect(o.error?.message.en).toContain('contains[0]: not a valid regular expression');
    expect(o.error?.message.en).toContain('schema: not a JSON Schema');
  });
});
