import { describe, expect, it } from 'vitest';
import { section } from '../../graders/parsers/nvidia-smi-capture.js';
import { parseComputeApps, parseList, parseQueryGpu } from '../../graders/parsers/nvidia-smi.js';
import { inventoryFromNvidiaSmi, placeGpus, type GpuInventory } from './gpu-placement.js';

const H200 = 'linux-x86_64__nvidia-h200__590.48.01.txt';
const MIG = 'linux-x86_64__nvidia-h200-mig__590.48.01.txt';

function inventory(file: string, phase: 'idle' | 'load'): GpuInventory {
  return inventoryFromNvidiaSmi(
    parseList(section(file, 'nvidia-smi -L')),
    parseQueryGpu(section(file, 'nvidia-smi --query-gpu=', phase)),
    parseComputeApps(section(file, 'nvidia-smi --query-compute-apps=', phase)),
  );
}

describe('GPU placement on real nvidia-smi captures', () => {
  it('idle H200: one whole GPU with its memory; given to the first seat, not to the second', () => {
    const inv = inventory(H200, 'idle');
    expect(inv.slots).toHaveLength(1);
    expect(inv.slots[0]!.memoryMiB).toBeGreaterThan(140_000);
    expect(inv.busy).toEqual([]);
    const p = placeGpus(inv, [
      { seat: 's1', kind: 'gpu', count: 1 },
      { seat: 's2', kind: 'gpu', count: 1 },
    ]);
    expect(p.placed).toEqual({ s1: [inv.slots[0]!.uuid] });
    expect(p.unplaced.map((u) => u.seat)).toEqual(['s2']);
  });

  it('H200 under load (gpu-burn, memory hogs): busy, nothing placed', () => {
    const inv = inventory(H200, 'load');
    expect(inv.busy).toEqual([inv.slots[0]!.uuid]);
    expect(placeGpus(inv, [{ seat: 's1', kind: 'gpu', count: 1 }]).unplaced).toHaveLength(1);
  });

  it('H200 in MIG mode: the whole GPU is not offered; instances go smallest-first, by profile and memory', () => {
    const inv = inventory(MIG, 'idle');
    expect(inv.slots.filter((s) => s.kind === 'mig').map((s) => [s.profile, s.memoryMiB])).toEqual([
      ['1c.3g.71gb', 71 * 1024],
      ['2c.3g.71gb', 71 * 1024],
      ['2g.35gb', 35 * 1024],
      ['1g.18gb', 18 * 1024],
      ['1g.18gb', 18 * 1024],
    ]);
    expect(placeGpus(inv, [{ seat: 'w', kind: 'gpu', count: 1 }]).unplaced).toHaveLength(1);
    const p = placeGpus(inv, [
      { seat: 'a', kind: 'mig', count: 1 },
      { seat: 'b', kind: 'mig', count: 1, minMemoryMiB: 30_000 },
      { seat: 'c', kind: 'mig', count: 1, profile: '1g.18gb' },
      { seat: 'd', kind: 'mig', count: 1, profile: '1g.18gb' },
      { seat: 'e', kind: 'mig', count: 2 },
    ]);
    expect(p.placed).toEqual({
      a: ['MIG-00000003-0000-0000-0000-000000000003'],
      b: ['MIG-00000002-0000-0000-0000-000000000002'],
      c: ['MIG-00000004-0000-0000-0000-000000000004'],
      e: ['MIG-00000000-0000-0000-0000-000000000000', 'MIG-00000001-0000-0000-0000-000000000001'],
    });
    expect(p.unplaced).toEqual([{ seat: 'd', reason: 'wanted 1 free MIG instance(s) 1g.18gb, found 0' }]);
  });

  it('slots taken by seats already placed are skipped; a process on a MIG GPU marks its instances busy', () => {
    const inv = inventory(MIG, 'idle');
    const p = placeGpus(inv, [{ seat: 'a', kind: 'mig', count: 1 }], ['MIG-00000003-0000-0000-0000-000000000003']);
    expect(p.placed.a).toEqual(['MIG-00000004-0000-0000-0000-000000000004']);
    const loaded = inventory(MIG, 'load');
    const apps = parseComputeApps(section(MIG, 'nvidia-smi --query-compute-apps=', 'load'));
    if (apps.length > 0) {
      expect(placeGpus(loaded, [{ seat: 'a', kind: 'mig', count: 1 }]).unplaced).toHaveLength(1);
    } else {
      expect(loaded.busy).toEqual([]);
    }
  });
});
