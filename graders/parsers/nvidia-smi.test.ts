import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CAPTURE_DIR, captureFiles, readCapture, section } from './nvidia-smi-capture.js';
import {
  COMPUTE_APPS_ARGS,
  COMPUTE_APPS_FIELDS,
  GPU_QUERY_FIELDS,
  GPU_QUERY_ARGS,
  NvidiaSmiParseError,
  parseComputeApps,
  parseCsv,
  parseList,
  parseQueryGpu,
} from './nvidia-smi.js';

const H100 = 'linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt';
const H200 = 'linux-x86_64__nvidia-h200__590.48.01.txt';
const H200_MIG = 'linux-x86_64__nvidia-h200-mig__590.48.01.txt';
const L40S = 'linux-x86_64__nvidia-l40s__595.80.txt';
const ZERO_UUID = 'GPU-00000000-0000-0000-0000-000000000000';

const gpuQuery = (file: string, phase: string): string => section(file, 'nvidia-smi --query-gpu=', phase);
const apps = (file: string, phase: string): string => section(file, 'nvidia-smi --query-compute-apps=', phase);

/** Expected values, read by hand from each capture's query-gpu and -q sections. */
const EXPECTED = {
  [H100]: {
    name: 'NVIDIA H100 80GB HBM3', driver: '590.48.01', total: 81559, mig: 'Disabled', bus: '00000000:00:09.0',
    idle: { used: 0, free: 81081, util: 0, power: 69.85 },
    load: { used: 19818, free: 61263, util: 100, power: 631.95 },
    loadApps: [[11327, '/root/tools/memhog', 2566], [11328, '/root/tools/memhog', 1542], [11345, './gpu_burn', 15690]],
  },
  [H200]: {
    name: 'NVIDIA H200', driver: '590.48.01', total: 143771, mig: 'Disabled', bus: '00000000:83:00.0',
    idle: { used: 0, free: 143158, util: 0, power: 77.71 },
    load: { used: 32362, free: 110796, util: 100, power: 627.4 },
    loadApps: [[10291, '/root/tools/memhog', 2566], [10293, '/root/tools/memhog', 1542], [10309, './gpu_burn', 28234]],
  },
  [H200_MIG]: {
    // In MIG mode the whole-GPU utilisation is not reported: `[N/A]` → null.
    name: 'NVIDIA H200', driver: '590.48.01', total: 143771, mig: 'Enabled', bus: '00000000:83:00.0',
    idle: { used: 55, free: 143103, util: null, power: 78.28 },
    load: { used: 16959, free: 126199, util: null, power: 295.01 },
    loadApps: [[12249, '/root/tools/memhog', 2194], [12250, '/root/tools/memhog', 1170], [12267, './gpu_burn', 13526]],
  },
  [L40S]: {
    // No MIG on an L40S: mig.mode.* answer `[N/A]` → null.
    name: 'NVIDIA L40S', driver: '595.80', total: 46068, mig: null, bus: '00000000:01:00.0',
    idle: { used: 0, free: 45460, util: 100, power: 144.97 },
    load: { used: 1235, free: 44225, util: 9, power: 110.23 },
    loadApps: [[20037, 'ffmpeg', 538], [20038, 'ffmpeg', 681]],
  },
} as const;

describe('capture helper', () => {
  it('finds every capture and splits it into its 25 sections', () => {
    expect(captureFiles().sort()).toEqual([H100, H200_MIG, H200, L40S].sort());
    for (const f of captureFiles()) {
      const s = readCapture(f);
      expect(s).toHaveLength(25);
      expect(s.filter((x) => x.command.startsWith('nvidia-smi --query-gpu=')).map((x) => x.phase)).toEqual(['idle', 'load']);
    }
  });
});

describe.each(Object.keys(EXPECTED) as (keyof typeof EXPECTED)[])('%s', (file) => {
  const want = EXPECTED[file];
  for (const phase of ['idle', 'load'] as const) {
    it(`query-gpu (${phase}): one GPU, name, driver, memory, utilisation, power, MIG mode`, () => {
      const gpus = parseQueryGpu(gpuQuery(file, phase));
      expect(gpus).toHaveLength(1);
      const g = gpus[0]!;
      expect(g.index).toBe(0);
      expect(g.uuid).toBe(ZERO_UUID);
      expect(g.name).toBe(want.name);
      expect(g.driverVersion).toBe(want.driver);
      expect(g.pciBusId).toBe(want.bus);
      expect(g.memoryTotalMiB).toBe(want.total);
      expect(g.memoryUsedMiB).toBe(want[phase].used);
      expect(g.memoryFreeMiB).toBe(want[phase].free);
      expect(g.utilizationGpuPct).toBe(want[phase].util);
      expect(g.powerDrawW).toBe(want[phase].power);
      expect(g.powerLimitW).toBe(file === L40S ? 350 : 700);
      expect(g.migModeCurrent).toBe(want.mig);
      expect(g.migModePending).toBe(want.mig);
    });
  }

  it('query-gpu: the full ~200-field answer keeps every column and maps [N/A] to null', () => {
    const t = parseCsv(gpuQuery(file, 'idle'));
    expect(t.fields.length).toBeGreaterThan(200);
    expect(t.rows[0]!['count']).toBe('1');
    expect(t.rows[0]!['fan.speed']).toBeNull(); // `[N/A]` on these passively cooled boards
    expect(t.units[t.fields.indexOf('memory.total')]).toBe('MiB');
    expect(t.units[t.fields.indexOf('power.draw')]).toBe('W');
  });

  it('query-compute-apps (idle): header-only answer means no processes', () => {
    const body = apps(file, 'idle');
    expect(body.trim().split('\n')).toHaveLength(1);
    expect(parseComputeApps(body)).toEqual([]);
  });

  it('query-compute-apps (load): PIDs, names, GPU and memory of each process', () => {
    const got = parseComputeApps(apps(file, 'load'));
    expect(got.map((a) => [a.pid, a.processName, a.usedMemoryMiB])).toEqual(want.loadApps);
    for (const a of got) {
      expect(a.gpuUuid).toBe(ZERO_UUID);
      expect(a.gpuBusId).toBe(want.bus);
    }
    // The processes account for part of the used memory, never more.
    const sum = got.reduce((s, a) => s + (a.usedMemoryMiB ?? 0), 0);
    expect(sum).toBeLessThanOrEqual(want.load.used);
  });

  it('-L lists the GPU with its UUID', () => {
    const gpus = parseList(section(file, 'nvidia-smi -L'));
    expect(gpus).toHaveLength(1);
    expect(gpus[0]).toMatchObject({ index: 0, name: want.name, uuid: ZERO_UUID });
    expect(gpus[0]!.migDevices).toHaveLength(file === H200_MIG ? 5 : 0);
  });
});

describe('H200 in MIG mode: -L lists the MIG devices', () => {
  it('five MIG devices with profiles and MIG- UUIDs', () => {
    const [gpu] = parseList(section(H200_MIG, 'nvidia-smi -L'));
    expect(gpu!.migDevices).toEqual([
      { index: 0, profile: '1c.3g.71gb', uuid: 'MIG-00000000-0000-0000-0000-000000000000' },
      { index: 1, profile: '2c.3g.71gb', uuid: 'MIG-00000001-0000-0000-0000-000000000001' },
      { index: 2, profile: '2g.35gb', uuid: 'MIG-00000002-0000-0000-0000-000000000002' },
      { index: 3, profile: '1g.18gb', uuid: 'MIG-00000003-0000-0000-0000-000000000003' },
      { index: 4, profile: '1g.18gb', uuid: 'MIG-00000004-0000-0000-0000-000000000004' },
    ]);
  });
});

describe('two-GPU CSV', () => {
  const text = readFileSync(CAPTURE_DIR + 'two-gpu-query-gpu.csv', 'utf8');

  it('two GPUs, by index, with names, driver and used memory; absent fields are null', () => {
    const gpus = parseQueryGpu(text);
    expect(gpus.map((g) => [g.index, g.name, g.uuid, g.driverVersion, g.memoryUsedMiB])).toEqual([
      [0, 'NVIDIA GeForce RTX 2080 SUPER', 'GPU-df6e7a7c-7314-46f8-abc4-b88b36dcf3aa', '466.63', 575],
      [1, 'Some Other GPU', 'GPU-04757e3e-3077-4e2e-b988-7e2d647b52e9', '123.45', 1234],
    ]);
    expect(gpus[0]!.memoryTotalMiB).toBeNull(); // not queried in this answer
    expect(parseCsv(text).rows.map((r) => r['serial'])).toEqual([null, null]); // `[N/A]`
  });

  it('[Not Supported] and other bracketed answers are null, not numbers or text', () => {
    const changed = text.replace('575 MiB', '[Not Supported]').replace('38 %', '[Unknown Error]');
    const [g] = parseQueryGpu(changed);
    expect(g!.memoryUsedMiB).toBeNull();
    expect(parseCsv(changed).rows[0]!['fan.speed']).toBeNull();
  });
});

describe('the forms the host query uses', () => {
  it('asks for CSV with header and units, fields by name', () => {
    expect(GPU_QUERY_ARGS[0]).toMatch(/^--query-gpu=index,uuid,name,driver_version,/);
    expect(GPU_QUERY_ARGS[1]).toBe('--format=csv');
    expect(COMPUTE_APPS_ARGS).toEqual(['--query-compute-apps=pid,process_name,gpu_uuid,used_memory', '--format=csv']);
  });

  it('every field the host query names is one these real drivers answer (nvidia-smi rejects the whole query otherwise)', () => {
    for (const f of captureFiles()) {
      const answered = parseCsv(gpuQuery(f, 'idle')).fields;
      expect(GPU_QUERY_FIELDS.filter((x) => !answered.includes(x))).toEqual([]);
      const help = section(f, 'nvidia-smi --help-query-compute-apps');
      expect(COMPUTE_APPS_FIELDS.filter((x) => !help.includes(`"${x}"`))).toEqual([]);
    }
  });

  it('reads `nounits` values and a compute-apps answer under its used_memory name', () => {
    const g = parseQueryGpu('index, name, memory.total [MiB], power.draw [W]\n0, NVIDIA H200, 143771, 627.40\n');
    expect(g[0]).toMatchObject({ index: 0, memoryTotalMiB: 143771, powerDrawW: 627.4 });
    const a = parseComputeApps(
      'pid, process_name, gpu_uuid, used_memory [MiB]\n4242, python3 -m vllm serve --a, b, GPU-1, 70000 MiB\n',
    );
    // an unquoted ", " inside the command line stays in the name
    expect(a).toEqual([{ pid: 4242, processName: 'python3 -m vllm serve --a, b', gpuUuid: 'GPU-1', gpuBusId: null, usedMemoryMiB: 70000 }]);
  });

  it('rejects what is not an nvidia-smi answer', () => {
    expect(() => parseQueryGpu('')).toThrow(NvidiaSmiParseError);
    expect(() => parseQueryGpu('NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver.')).toThrow(
      NvidiaSmiParseError,
    );
    expect(() => parseQueryGpu('index, memory.total [GiB]\n0, 140 GiB\n')).toThrow(/expected MiB/);
    expect(() => parseComputeApps('pid, used_memory [MiB]\nabc, 1 MiB\n')).toThrow(/no pid/);
    expect(() => parseList('No devices were found')).toThrow(NvidiaSmiParseError);
    expect(parseList('')).toEqual([]);
  });
});
