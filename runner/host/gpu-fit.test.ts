import { describe, expect, it } from 'vitest';
import { section } from '../../graders/parsers/nvidia-smi-capture.js';
import { parseComputeApps, parseList, parseQueryGpu } from '../../graders/parsers/nvidia-smi.js';
import { gpuFit, gpuTaskFits, migProfileMemoryMiB, missingText } from './gpu-fit.js';
import { gpuTaskLines } from './check.js';
import type { GpuFacts } from './types.js';

const H100 = 'linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt';
const H200 = 'linux-x86_64__nvidia-h200__590.48.01.txt';
const H200_MIG = 'linux-x86_64__nvidia-h200-mig__590.48.01.txt';
const L40S = 'linux-x86_64__nvidia-l40s__595.80.txt';

/** GpuFacts as gatherGpu would build them from this captured host. */
function factsOf(file: string): GpuFacts {
  return {
    state: 'present',
    nvidiaSmi: '/usr/bin/nvidia-smi',
    gpus: parseQueryGpu(section(file, 'nvidia-smi --query-gpu=', 'idle')),
    apps: parseComputeApps(section(file, 'nvidia-smi --query-compute-apps=', 'idle')),
    list: parseList(section(file, 'nvidia-smi -L')),
  };
}
const NO_GPU: GpuFacts = { state: 'absent' };
const FAILED: GpuFacts = {
  state: 'error',
  nvidiaSmi: '/usr/bin/nvidia-smi',
  error: {
    code: 'NVIDIA_SMI_FAILED',
    message: { zh: '/usr/bin/nvidia-smi 运行失败：NVIDIA-SMI has failed', en: '/usr/bin/nvidia-smi failed: NVIDIA-SMI has failed' },
  },
};
const en = (f: ReturnType<typeof gpuFit>): string[] => (f.verdict === 'fits' ? [] : f.missing.map((m) => m.en));
const zh = (f: ReturnType<typeof gpuFit>): string[] => (f.verdict === 'fits' ? [] : f.missing.map((m) => m.zh));

describe('gpuFit', () => {
  it('a task without GPUs fits every host, even one whose nvidia-smi failed', () => {
    for (const f of [NO_GPU, FAILED, factsOf(L40S)]) expect(gpuFit(f, { gpus: 0 })).toEqual({ verdict: 'fits' });
  });

  it('a host without nvidia-smi has no GPU, and says both', () => {
    const fit = gpuFit(NO_GPU, { gpus: 2 });
    expect(fit.verdict).toBe('missing');
    expect(zh(fit)).toEqual(['需要 2 块 GPU，本机有 0 块', '本机没有 nvidia-smi']);
    expect(en(fit)).toEqual(['needs 2 GPUs, this host has 0', 'no nvidia-smi on this host']);
  });

  it('a failed nvidia-smi is "could not check", never "no GPU"', () => {
    const fit = gpuFit(FAILED, { gpus: 1 });
    expect(fit.verdict).toBe('could-not-check');
    expect(en(fit)[0]).toMatch(/^could not check this host's GPUs: .*NVIDIA-SMI has failed/);
    expect(en(fit).join(' ')).not.toMatch(/has 0/);
  });

  it('the H100, H200 and L40S captures give one whole GPU each', () => {
    for (const f of [H100, H200, L40S]) {
      expect(gpuFit(factsOf(f), { gpus: 1 }), f).toEqual({ verdict: 'fits' });
      expect(gpuFit(factsOf(f), { gpus: 1, gpu: { minMemoryMiB: 0, partition: 'any' } }), f).toEqual({ verdict: 'fits' });
    }
  });

  it('counts: two GPUs on a one-GPU host', () => {
    const fit = gpuFit(factsOf(H100), { gpus: 2 });
    expect(en(fit)).toEqual(['needs 2 whole GPUs, this host has 1']);
    expect(zh(fit)).toEqual(['需要 2 块整 GPU，本机有 1 块']);
  });

  it('memory per GPU: the L40S (46068 MiB) is too small for 80 GiB, the H100 (81559 MiB) is not', () => {
    const need = { gpus: 1, gpu: { minMemoryMiB: 81920, partition: 'whole' as const } };
    const fit = gpuFit(factsOf(L40S), need);
    expect(fit.verdict).toBe('missing');
    expect(zh(fit)).toEqual(['每块至少 81920 MiB 显存，本机最大 46068 MiB（够大的有 0 块）']);
    expect(en(fit)).toEqual(["at least 81920 MiB of memory each, this host's largest has 46068 MiB (0 large enough)"]);
    expect(gpuFit(factsOf(H100), { gpus: 1, gpu: { minMemoryMiB: 40960, partition: 'whole' } })).toEqual({ verdict: 'fits' });
    expect(gpuFit(factsOf(H100), need).verdict).toBe('missing');
    expect(gpuFit(factsOf(H200), need)).toEqual({ verdict: 'fits' });
  });

  it('MIG: needs MIG instances, the host GPUs have MIG disabled', () => {
    for (const f of [H100, H200, L40S]) {
      const fit = gpuFit(factsOf(f), { gpus: 1, gpu: { minMemoryMiB: 0, partition: 'mig' } });
      expect(zh(fit), f).toEqual(['需要 MIG 实例，本机 GPU 未启用 MIG', '需要 1 个 MIG 实例，本机有 0 个']);
    }
  });

  it('MIG: the H200 in MIG mode has five instances and no whole GPU', () => {
    const mig = factsOf(H200_MIG);
    expect(gpuFit(mig, { gpus: 5, gpu: { minMemoryMiB: 0, partition: 'mig' } })).toEqual({ verdict: 'fits' });
    expect(en(gpuFit(mig, { gpus: 6, gpu: { minMemoryMiB: 0, partition: 'mig' } }))).toEqual(['needs 6 MIG instances, this host has 5']);
    // 3g.71gb ×2, 2g.35gb, 1g.18gb ×2: three instances of at least 35 GiB.
    expect(gpuFit(mig, { gpus: 3, gpu: { minMemoryMiB: 35 * 1024, partition: 'mig' } })).toEqual({ verdict: 'fits' });
    const big = gpuFit(mig, { gpus: 3, gpu: { minMemoryMiB: 71 * 1024, partition: 'any' } });
    expect(en(big)).toEqual(["at least 72704 MiB of memory each, this host's largest has 72704 MiB (2 large enough)"]);
    const whole = gpuFit(mig, { gpus: 1 });
    expect(zh(whole)).toEqual(['需要整块 GPU，本机 GPU 已启用 MIG', '需要 1 块整 GPU，本机有 0 块']);
    expect(gpuFit(mig, { gpus: 1, gpu: { minMemoryMiB: 0, partition: 'any' } })).toEqual({ verdict: 'fits' });
  });

  it('MIG profiles name their memory', () => {
    expect(migProfileMemoryMiB('1g.18gb')).toBe(18 * 1024);
    expect(migProfileMemoryMiB('1c.3g.71gb')).toBe(71 * 1024);
    expect(migProfileMemoryMiB('weird')).toBeNull();
  });

  it('missingText joins the items in both languages', () => {
    expect(missingText([{ zh: '甲', en: 'a' }, { zh: '乙', en: 'b' }])).toEqual({ zh: '甲；乙', en: 'a; b' });
  });
});

describe('host check: the GPU tasks of the tree', () => {
  const tasks = [
    { id: 'serve', needs: { gpus: 0 } },
    { id: 'vllm-small', needs: { gpus: 1, gpu: { minMemoryMiB: 40960, partition: 'whole' as const } } },
    { id: 'vllm-big', needs: { gpus: 1, gpu: { minMemoryMiB: 81920, partition: 'whole' as const } } },
  ];

  it('lists only the GPU tasks, each with its verdict', () => {
    const fits = gpuTaskFits(factsOf(H100), tasks);
    expect(fits.map((f) => [f.taskId, f.fit.verdict])).toEqual([['vllm-small', 'fits'], ['vllm-big', 'missing']]);
    expect(gpuTaskFits(NO_GPU, tasks).map((f) => f.fit.verdict)).toEqual(['missing', 'missing']);
    expect(gpuTaskFits(FAILED, tasks).map((f) => f.fit.verdict)).toEqual(['could-not-check', 'could-not-check']);
    expect(gpuTaskFits(NO_GPU, [tasks[0]!])).toEqual([]);
  });

  it('prints them under the report, Chinese first with English beside', () => {
    const lines = gpuTaskLines(gpuTaskFits(factsOf(H100), tasks), 'zh');
    expect(lines).toEqual([
      '',
      'GPU 考题 (GPU tasks):',
      '  vllm-small [1 × whole ≥ 40960 MiB]: 可运行 (can run)',
      "  vllm-big [1 × whole ≥ 81920 MiB]: 不能运行 (cannot run): 每块至少 81920 MiB 显存，本机最大 81559 MiB（够大的有 0 块） (at least 81920 MiB of memory each, this host's largest has 81559 MiB (0 large enough))",
    ]);
    expect(gpuTaskLines([], 'en')).toEqual([]);
  });
});
