import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempSeat, type TempSeat } from '../__helpers__/temp-seat.js';
import { ggufProbe } from './gguf.js';
import { Deadline, runProbe, type ProbeOutcome } from '../probe.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../parsers/__fixtures__/${name}`, import.meta.url));

let seat: TempSeat;
beforeEach(async () => {
  seat = await tempSeat();
  await mkdir(join(seat.root, 'workspace'), { recursive: true });
});
afterEach(async () => {
  await seat.cleanup();
});

const put = (name: string, as: string): Promise<void> => copyFile(fixture(name), join(seat.root, as));
const run = (params: Record<string, unknown>): Promise<ProbeOutcome> => runProbe(ggufProbe, seat, { kind: 'gguf', ...params }, Deadline.after(5000));

describe('gguf probe: work done right', () => {
  it('passes a Q8_0 model on its tensors and header, with the header as evidence', async () => {
    await put('tiny-llama-q8_0.gguf', 'workspace/model.gguf');
    // The "source": an F16 file four times the size, as the task's original would be.
    await writeFile(join(seat.root, 'workspace/source-f16.gguf'), Buffer.alloc(4 * 28224));
    const o = await run({
      path: '/workspace/model.gguf',
      expect: {
        architecture: 'llama',
        fileType: 7,
        tensorTypes: { majority: ['Q8_0'], minShare: 0.9, forbid: ['F32'] },
        sizeRatio: { source: '/workspace/source-f16.gguf', min: 0.2, max: 0.3 },
      },
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
  it('a declared block count other than the expected one fails', async () => {
    await put('tiny-llama-q8_0.gguf', 'workspace/model.gguf');
    const o = await run({ path: '/workspace/model.gguf', expect: { blockCount: 3 } });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(blockCount)');
    expect((await run({ path: '/workspace/model.gguf', expect: { blockCount: 2 } })).status).toBe('pass');
  });

  it('a Q8_0 file named as Q4_K_M fails a Q4_K_M check: the name is not evidence', async () => {
    await put('tiny-llama-q8_0.gguf', 'workspace/model-Q4_K_M.gguf');
    const o = await run({ path: '/workspace/model-Q4_K_M.gguf', expect: { fileType: 15, tensorTypes: { majority: ['Q4_K', 'Q6_K'], minShare: 0.75 } } });
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(fileType, tensorTypes)');
    expect(JSON.stringify(o.evidence)).toContain('"actual":"0.0%"');
  });

  it('a header relabelled to Q4_K_M over Q8_0 tensors fails on the tensors and the consistency check', async () => {
    // Patch general.file_type in place (u32 after the key) from 7 to 15.
    const bytes = await readFile(fixture('tiny-llama-q8_0.gguf'));
    const key = Buffer.from('general.file_type');
    const at = bytes.indexOf(key) + key.length + 4; // then the u32 value type, then the value
    expect(bytes.readUInt32LE(at)).toBe(7);
    bytes.writeUInt32LE(15, at);
    await writeFile(join(seat.root, 'workspace/model.gguf'), bytes);
    const o = await run({ path: '/workspace/model.gguf', expect: { fileType: 15, tensorTypes: { majority: ['Q4_K', 'Q6_K'] } } });
    expect(o.status).toBe('fail');
    // The declared type is what was asked for; the tensors and the consistency check say otherwise.
    expect(o.summary.en).toContain('2 of 3 expectation(s) not met (tensorTypes, consistent)');
  });

  it('a badly pruned model (block_count 3, blocks 0 and 2) fails consistency', async () => {
    await put('tiny-inconsistent.gguf', 'workspace/pruned.gguf');
    const o = await run({ path: '/workspace/pruned.gguf', expect: { architecture: 'llama' } });
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
  it('a check that needs the model loaded is an error until the toolbox is reachable', async () => {
    await put('tiny-llama-q8_0.gguf', 'workspace/model.gguf');
    const o = await run({ path: '/workspace/model.gguf', expect: { loads: { generateTokens: 8 } } });
    expect(o.status).toBe('error');
    expect(o.error).toMatchObject({ code: 'PROBE_NEEDS_TOOLBOX', fault: 'infrastructure' });
  });

  it('a comparison with the grader’s own reference build is an error, never a pass, without the toolbox', async () => {
    await put('tiny-llama-q8_0.gguf', 'workspace/model.gguf');
    const o = await run({
      path: '/workspace/model.gguf',
      expect: { sameTensorsAs: { build: [['llama-quantize', '/opt/models/tiny-llama-f16.gguf', '/tmp/reference.gguf', 'Q8_0']], output: '/tmp/reference.gguf' } },
    });
    expect(o.status).toBe('error');
    expect(o.error).toMatchObject({ code: 'PROBE_NEEDS_TOOLBOX', fault: 'infrastructure' });
  });
});
