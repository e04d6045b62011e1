import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { section } from '../../graders/parsers/nvidia-smi-capture.js';
import { gatherGpu, gatherGpuSync } from './inventory.js';

const tmp = mkdtempSync(join(tmpdir(), 'dl-gpu-sync-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const H200_MIG = 'linux-x86_64__nvidia-h200-mig__590.48.01.txt';

function bin(name: string, script: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'nvidia-smi'), script);
  chmodSync(join(dir, 'nvidia-smi'), 0o755);
  return dir;
}

describe('gatherGpuSync (what session open asks) agrees with gatherGpu', () => {
  it('a captured H200 in MIG mode: the same facts both ways', async () => {
    const dir = bin('ok', `#!/bin/sh\nd=$(dirname "$0")\ncase "$1" in --query-gpu=*) cat "$d/q.csv";; --query-compute-apps=*) cat "$d/apps.csv";; -L) cat "$d/list.txt";; *) exit 2;; esac\n`);
    writeFileSync(join(dir, 'q.csv'), section(H200_MIG, 'nvidia-smi --query-gpu=', 'idle'));
    writeFileSync(join(dir, 'apps.csv'), section(H200_MIG, 'nvidia-smi --query-compute-apps=', 'idle'));
    writeFileSync(join(dir, 'list.txt'), section(H200_MIG, 'nvidia-smi -L'));
    const env = { PATH: dir };
    const sync = gatherGpuSync(env);
    expect(sync).toEqual(await gatherGpu(env));
    expect(sync.state === 'present' && sync.list[0]!.migDevices).toHaveLength(5);
  });

  it('a failing nvidia-smi: NVIDIA_SMI_FAILED quoting what it said, both ways', async () => {
    const env = { PATH: bin('fail', `#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."\nexit 9\n`) };
    const sync = gatherGpuSync(env);
    expect(sync).toMatchObject({ state: 'error', error: { code: 'NVIDIA_SMI_FAILED' } });
    expect(sync.state === 'error' && sync.error.message.en).toContain("couldn't communicate with the NVIDIA driver");
    expect(sync).toEqual(await gatherGpu(env));
  });

  it('no nvidia-smi: absent', () => {
    expect(gatherGpuSync({ PATH: join(tmp, 'empty') })).toEqual({ state: 'absent' });
  });
});
