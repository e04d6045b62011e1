import type { ComputeApp, GpuRecord, ListedGpu } from '../../graders/parsers/nvidia-smi.js';

/**
 * Placing GPU seats on a host: which whole GPUs or MIG instances are free, and which to give each
 * seat. Pure; the inventory comes from the host's nvidia-smi (adapter below, using the project's
 * parsers). The Docker driver then asks for exactly those UUIDs (DeviceRequests).
 */
export interface GpuSlot {
  /** What a container is given: `GPU-...` for a whole GPU, `MIG-...` for an instance. */
  uuid: string;
  kind: 'gpu' | 'mig';
  /** The physical GPU (its own UUID for a whole GPU). */
  gpuUuid: string;
  gpuIndex: number;
  name: string;
  /** MIG profile such as `1g.18gb`; absent for whole GPUs. */
  profile?: string;
  /** Memory of the slot; for MIG read from the profile name (`18gb` → 18 × 1024). */
  memoryMiB: number | null;
}

export interface GpuInventory {
  slots: GpuSlot[];
  /** UUIDs (GPU or MIG) on which some process already runs. */
  busy: string[];
}

export interface GpuRequest {
  seat: string;
  kind: 'gpu' | 'mig';
  count: number;
  /** Each slot must have at least this much memory. */
  minMemoryMiB?: number;
  /** Only MIG instances of this profile. */
  profile?: string;
}

export interface GpuPlacement {
  placed: Record<string, string[]>;
  unplaced: { seat: string; reason: string }[];
}

/**
 * Assign free slots to requests, in request order. A slot is free when no process runs on it, no
 * earlier seat holds it (`taken`), and, for a whole GPU, it is not in MIG mode and none of its
 * instances is held or busy. Among fitting slots the smallest one wins, so big ones stay for seats
 * that need them; ties go to the lower GPU index. A request is placed whole or not at all.
 */
export function placeGpus(inventory: GpuInventory, requests: GpuRequest[], taken: string[] = []): GpuPlacement {
  const held = new Set([...taken, ...inventory.busy]);
  const migParents = new Set(inventory.slots.filter((s) => s.kind === 'mig').map((s) => s.gpuUuid));
  const isFree = (s: GpuSlot): boolean => {
    if (held.has(s.uuid)) return false;
    if (s.kind === 'gpu') {
      if (migParents.has(s.uuid)) return false;
      return true;
    }
    // An instance of a GPU handed out whole is not free either.
    return !held.has(s.gpuUuid);
  };
  const out: GpuPlacement = { placed: {}, unplaced: [] };
  for (const req of requests) {
    const fits = inventory.slots
      .filter((s) => s.kind === req.kind && isFree(s))
      .filter((s) => req.profile === undefined || s.profile === req.profile)
      .filter((s) => req.minMemoryMiB === undefined || (s.memoryMiB ?? 0) >= req.minMemoryMiB)
      .sort((a, b) => (a.memoryMiB ?? Infinity) - (b.memoryMiB ?? Infinity) || a.gpuIndex - b.gpuIndex || a.uuid.localeCompare(b.uuid));
    if (fits.length < req.count) {
      out.unplaced.push({
        seat: req.seat,
        reason: `wanted ${req.count} free ${req.kind === 'gpu' ? 'whole GPU(s)' : 'MIG instance(s)'}${req.profile ? ` ${req.profile}` : ''}${req.minMemoryMiB ? ` ≥ ${req.minMemoryMiB} MiB` : ''}, found ${fits.length}`,
      });
      continue;
    }
    const chosen = fits.slice(0, req.count).map((s) => s.uuid);
    for (const u of chosen) held.add(u);
    out.placed[req.seat] = chosen;
  }
  return out;
}

/** MIG profile memory: `1g.18gb` / `1c.3g.71gb` → GiB × 1024. */
function profileMemoryMiB(profile: string): number | null {
  const m = /(\d+)gb$/.exec(profile);
  return m ? Number(m[1]) * 1024 : null;
}

/**
 * Build the inventory from `nvidia-smi -L`, `--query-gpu` and `--query-compute-apps` as parsed by
 * graders/parsers/nvidia-smi.ts. Compute apps name the physical GPU only, so on a MIG GPU a process
 * marks every instance of it busy (the safe side: never share an instance with a stranger).
 */
export function inventoryFromNvidiaSmi(listed: ListedGpu[], gpus: GpuRecord[], apps: ComputeApp[]): GpuInventory {
  const slots: GpuSlot[] = [];
  for (const g of listed) {
    const rec = gpus.find((r) => r.uuid === g.uuid) ?? gpus.find((r) => r.index === g.index);
    slots.push({ uuid: g.uuid, kind: 'gpu', gpuUuid: g.uuid, gpuIndex: g.index, name: g.name, memoryMiB: rec?.memoryTotalMiB ?? null });
    for (const m of g.migDevices) {
      slots.push({ uuid: m.uuid, kind: 'mig', gpuUuid: g.uuid, gpuIndex: g.index, name: g.name, profile: m.profile, memoryMiB: profileMemoryMiB(m.profile) });
    }
  }
  const busy = new Set<string>();
  for (const a of apps) {
    if (!a.gpuUuid) continue;
    busy.add(a.gpuUuid);
    for (const s of slots) if (s.kind === 'mig' && s.gpuUuid === a.gpuUuid) busy.add(s.uuid);
  }
  return { slots, busy: [...busy] };
}
