import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempSeat, type TempSeat } from './__helpers__/temp-seat.js';
import { ggufProbe } from './gguf.js';
import { Deadline, runProbe, type ProbeOutcome } from './probe.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./parsers/__fixtures__/${name}`, import.meta.url));

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
  await mkdir(join(seat.root, 'workspace'), { recursive: true });
});
afterEach(async () => {
  await seat.cleanup();
});

const put = (name: string, as: string): Promise<void> => copyFile(fixture(name), join(seat.root, as));
const run = (params: unknown): Promise<ProbeOutcome> => runProbe(ggufProbe, seat, params, Deadline.after(5000));

describe('gguf probe: work done right', () => {
  it('passes a Q8_0 model on its tensors and header, with the header as evidence', async () => {
    await put('tiny-llama-q8_0.gguf', 'workspace/model.gguf');
    const o = await run({
      path: '/workspace/model.gguf',
      expect: { architecture: 'llama', fileType: ['MOSTLY_Q8_0'], bulkType: ['Q8_0'], blockCount: 2, maxFileBytes: 64 * 1024 },
    });
    expect(o.status, JSON.stringify(o)).toBe('pass');
    const header = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'GGUF header');
    expect(header?.kind === 'note' && header.data).toMatchObject({
      fileType: { id: 7, name: 'MOSTLY_Q8_0' },
      tensorTypes: { Q8_0: 15, F32: 5, F16: 1 },
      bulkWeightType: 'Q8_0',
      consistencyProblems: [],
    });
  });
});

describe('gguf probe: work absent or wrong', () => {
  it('a Q8_0 file named as Q4_K_M fails a Q4_K_M check: the name is not evidence', async () => {
    await put('tiny-llama-q8_0.gguf', 'workspace/model-Q4_K_M.gguf');
    const o = await run({ path: '/workspace/model-Q4_K_M.gguf', expect: { fileType: ['MOSTLY_Q4_K_M'], bulkType: ['Q4_K'] } });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(fileType, bulkType)');
  });

  it('a header relabelled to Q4_K_M over Q8_0 tensors fails on the tensors and the consistency check', async () => {
    // Patch general.file_type in place (u32 after the key) from 7 to 15.
    const bytes = await readFile(fixture('tiny-llama-q8_0.gguf'));
    const key = Buffer.from('general.file_type');
    const at = bytes.indexOf(key) + key.length + 4; // then the u32 value type, then the value
    expect(bytes.readUInt32LE(at)).toBe(7);
    bytes.writeUInt32LE(15, at);
    await writeFile(join(seat.root, 'workspace/model.gguf'), bytes);
    const o = await run({ path: '/workspace/model.gguf', expect: { fileType: ['MOSTLY_Q4_K_M'], bulkType: ['Q4_K'] } });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(bulkType, consistent)');
  });

  it('a badly pruned model (block_count 3, blocks 0 and 2) fails consistency', async () => {
    await put('tiny-inconsistent.gguf', 'workspace/pruned.gguf');
    const o = await run({ path: '/workspace/pruned.gguf', expect: { maxBlockCount: 3 } });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(consistent)');
  });

  it('a missing file, and a file that is not GGUF, fail', async () => {
    expect((await run({ path: '/workspace/none.gguf' })).summary.en).toBe('model file not found: /workspace/none.gguf');
    await writeFile(join(seat.root, 'workspace/model.gguf'), 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 4368439584\n');
    const o = await run({ path: '/workspace/model.gguf' });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('not a valid GGUF file');
  });
});

describe('gguf probe: could not judge', () => {
  it('a header larger than the read limit is an error to re-grade with a larger limit', async () => {
    await put('tiny-llama-q8_0.gguf', 'workspace/model.gguf');
    const o = await run({ path: '/workspace/model.gguf', readBytes: 1000 });
    expect(o.status).toBe('error');
    expect(o.error?.code).toBe('GGUF_HEADER_TRUNCATED');
  });
});
