/**
 * The GGUF reader on files llama.cpp itself wrote: the workspace image's F16 model, and what
 * llama-quantize makes of it (Q8_0, Q4_K_M, Q4_K_M with a pruned layer). Files leave the
 * container through the engine's archive API, as graders read them.
 */
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Docker from 'dockerode';
import { extract as tarExtract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockIndices, bulkWeightType, checkGgufConsistency, readGgufBuffer } from '../../graders/parsers/gguf.js';
import { hasEngine } from '../helpers/docker-env.js';
import { requireImage } from '../helpers/images.js';

const docker = new Docker();
const LABEL = { 'deploylab.component': 'test', 'deploylab.test': 'gguf-parser-real' };

async function removeOurs(): Promise<void> {
  const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: ['deploylab.test=gguf-parser-real'] }) });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
}

async function exec(c: Docker.Container, cmd: string[]): Promise<{ code: number; out: string }> {
  const e = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await e.start({});
  const sink = new PassThrough();
  let out = '';
  sink.on('data', (b: Buffer) => (out += b.toString()));
  docker.modem.demuxStream(stream, sink, sink);
  await new Promise((r) => stream.on('end', r));
  return { code: (await e.inspect()).ExitCode ?? -1, out };
}

/** The first `max` bytes of a file and its real size, through the archive API. */
async function readOut(c: Docker.Container, path: string, max = Number.POSITIVE_INFINITY): Promise<{ data: Buffer; size: number }> {
  const archive = await c.getArchive({ path });
  const ex = tarExtract();
  let result: { data: Buffer; size: number } | undefined;
  ex.on('entry', (header, stream, next) => {
    const parts: Buffer[] = [];
    let n = 0;
    stream.on('data', (chunk: unknown) => {
      const b = chunk as Buffer;
      if (n < max) parts.push(b);
      n += b.length;
    });
    stream.on('end', () => {
      if (!result && header.type === 'file') result = { data: Buffer.concat(parts).subarray(0, Math.min(n, max)), size: header.size ?? n };
      next();
    });
  });
  await pipeline(archive, ex);
  if (!result) throw new Error(`no file at ${path}`);
  return result;
}

describe.skipIf(!hasEngine)('GGUF reader on llama.cpp-written models (workspace-cpu image)', () => {
  let c: Docker.Container;

  beforeAll(async () => {
    const ref = await requireImage('workspace-cpu');
    await removeOurs();
    c = await docker.createContainer({
      Image: ref,
      Cmd: ['sleep', 'infinity'],
      Labels: LABEL,
      NetworkDisabled: true,
      HostConfig: { NanoCpus: 1_000_000_000, Memory: 1024 * 1024 * 1024, PidsLimit: 256 },
    });
    await c.start();
    for (const [type, extra] of [
      ['Q8_0', []],
      ['Q4_K_M', []],
      ['Q4_K_M', ['--prune-layers', '1']],
    ] as const) {
      const out = `/workspace/tiny-${type.toLowerCase()}${extra.length ? '-pruned' : ''}.gguf`;
      const q = await exec(c, ['llama-quantize', ...extra, '/opt/models/tiny-llama-f16.gguf', out, type]);
      expect(q.code, q.out.slice(-2000)).toBe(0);
    }
  });

  afterAll(async () => {
    await c?.remove({ force: true });
  });

  it('reads the F16 original: MOSTLY_F16, F16 weights, consistent', async () => {
    const { data, size } = await readOut(c, '/opt/models/tiny-llama-f16.gguf');
    const s = await readGgufBuffer(data, size);
    expect(s.architecture).toBe('llama');
    expect(s.fileType?.name).toBe('MOSTLY_F16');
    expect(bulkWeightType(s)).toBe('F16');
    expect(s.blockCount).toBe(blockIndices(s).length);
    expect(checkGgufConsistency(s)).toEqual({ consistent: true, problems: [] });
    expect(s.dataOffset + s.tensorBytes).toBeLessThanOrEqual(size);
  });

  it('reads llama-quantize output by its tensors: Q8_0 and Q4_K_M (with Q6_K where llama.cpp keeps it)', async () => {
    const q8 = await readOut(c, '/workspace/tiny-q8_0.gguf');
    const s8 = await readGgufBuffer(q8.data, q8.size);
    expect(s8.fileType).toEqual({ id: 7, name: 'MOSTLY_Q8_0' });
    expect(bulkWeightType(s8)).toBe('Q8_0');
    expect(checkGgufConsistency(s8).consistent).toBe(true);

    const q4 = await readOut(c, '/workspace/tiny-q4_k_m.gguf');
    const s4 = await readGgufBuffer(q4.data, q4.size);
    expect(s4.fileType).toEqual({ id: 15, name: 'MOSTLY_Q4_K_M' });
    expect(bulkWeightType(s4)).toBe('Q4_K');
    expect(Object.keys(s4.tensorTypes)).toContain('Q4_K');
    expect(checkGgufConsistency(s4).consistent).toBe(true);
    // Same tensors, fewer bytes.
    expect(s4.tensorCount).toBe(s8.tensorCount);
    expect(s4.tensorBytes).toBeLessThan(s8.tensorBytes);
    // Every tensor's data lies inside the file, and the last one ends near its end.
    expect(s4.dataOffset + Math.max(...s4.tensors.map((t) => t.offset + t.bytes))).toBeLessThanOrEqual(q4.size);
  });

  it('a pruned model has one block fewer, renumbered 0..N-1, and stays consistent', async () => {
    const full = await readOut(c, '/workspace/tiny-q4_k_m.gguf');
    const pruned = await readOut(c, '/workspace/tiny-q4_k_m-pruned.gguf');
    const a = await readGgufBuffer(full.data, full.size);
    const b = await readGgufBuffer(pruned.data, pruned.size);
    expect(b.blockCount).toBe(a.blockCount! - 1);
    expect(blockIndices(b)).toEqual(Array.from({ length: b.blockCount! }, (_, i) => i));
    expect(checkGgufConsistency(b).consistent).toBe(true);
  });

  it('a 64 KiB prefix of the quantized file gives the same header as the whole file', async () => {
    const whole = await readOut(c, '/workspace/tiny-q4_k_m.gguf');
    const prefix = await readOut(c, '/workspace/tiny-q4_k_m.gguf', 64 * 1024);
    expect(prefix.data.length).toBe(64 * 1024);
    expect(await readGgufBuffer(prefix.data, prefix.size)).toEqual(await readGgufBuffer(whole.data, whole.size));
  });
});
