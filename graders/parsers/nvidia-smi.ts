/**
 * Parsers for nvidia-smi's machine-readable answers.
 *
 * Why the CSV query interface and not a wrapper library: `node-nvidia-smi` runs `nvidia-smi -q -x`
 * through xml2js 0.4, which carries a prototype-pollution advisory (CVE-2023-0842), and the XML
 * layout changes between driver branches. `--query-gpu=<fields> --format=csv` is NVIDIA's stable,
 * documented scripting interface: we name exactly the fields we need and the parser is ~200 lines.
 *
 * Why `--format=csv` WITH header and units (not `noheader,nounits`): columns are matched by the
 * name in the header, so field order and extra fields do not matter, and the unit in the header
 * (`memory.total [MiB]`) is checked rather than assumed. It is also exactly the form in the real
 * captures the tests run on, so the code path tested is the code path used. `nounits` output is
 * still accepted (a bare number parses the same).
 */

/** Field list the harness asks the host's nvidia-smi for (see GPU_QUERY_ARGS). */
export const GPU_QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'driver_version',
  'pci.bus_id',
  'memory.total',
  'memory.used',
  'memory.free',
  'utilization.gpu',
  'utilization.memory',
  'power.draw',
  'power.limit',
  'temperature.gpu',
  'mig.mode.current',
  'mig.mode.pending',
] as const;

export const COMPUTE_APPS_FIELDS = ['pid', 'process_name', 'gpu_uuid', 'used_memory'] as const;

/** Arguments for `nvidia-smi` that produce what parseQueryGpu / parseComputeApps read. */
export const GPU_QUERY_ARGS = [`--query-gpu=${GPU_QUERY_FIELDS.join(',')}`, '--format=csv'];
export const COMPUTE_APPS_ARGS = [`--query-compute-apps=${COMPUTE_APPS_FIELDS.join(',')}`, '--format=csv'];
export const LIST_ARGS = ['-L'];

export class NvidiaSmiParseError extends Error {
  override readonly name = 'NvidiaSmiParseError';
}

/** One CSV cell: the raw text, or null for nvidia-smi's "no value" markers. */
export type Cell = string | null;

export interface CsvTable {
  /** Field names as queried, units stripped: `memory.total`, not `memory.total [MiB]`. */
  fields: string[];
  /** Unit per field from the header (`MiB`, `W`, `%`), or null. */
  units: (string | null)[];
  rows: Record<string, Cell>[];
}

/**
 * `[N/A]`, `[Not Supported]`, `[Requested functionality has been deprecated]`,
 * `[Insufficient Permissions]`, ... : every bracketed answer means "no value".
 */
function cell(raw: string): Cell {
  const v = raw.trim();
  if (v === '' || v === 'N/A' || /^\[.*\]$/.test(v)) return null;
  return v;
}

/** Columns whose values are free text and may themselves contain ", " (a process's command line). */
const FREE_TEXT_FIELDS = new Set(['process_name', 'name', 'gpu_name']);

/** Parse nvidia-smi `--format=csv` output (with header). A header-only answer gives zero rows. */
export function parseCsv(text: string): CsvTable {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '');
  const header = lines[0];
  if (header === undefined) throw new NvidiaSmiParseError('empty nvidia-smi CSV answer (no header line)');
  const fields: string[] = [];
  const units: (string | null)[] = [];
  for (const h of header.split(',')) {
    const m = /^\s*([^[\]]+?)\s*(?:\[([^\]]*)\])?\s*$/.exec(h);
    if (!m) throw new NvidiaSmiParseError(`unreadable CSV header field ${JSON.stringify(h)}`);
    fields.push(m[1]!);
    units.push(m[2] ?? null);
  }
  if (fields.some((f) => /\s/.test(f))) {
    throw new NvidiaSmiParseError(`not an nvidia-smi CSV header: ${JSON.stringify(header.slice(0, 120))}`);
  }
  const freeIdx = fields.findIndex((f) => FREE_TEXT_FIELDS.has(f));
  const rows = lines.slice(1).map((line, i) => {
    let parts = line.split(',');
    if (parts.length > fields.length && freeIdx >= 0) {
      // nvidia-smi does not quote: give the surplus back to the one free-text column.
      const extra = parts.length - fields.length;
      parts = [...parts.slice(0, freeIdx), parts.slice(freeIdx, freeIdx + extra + 1).join(','), ...parts.slice(freeIdx + extra + 1)];
    }
    if (parts.length !== fields.length) {
      throw new NvidiaSmiParseError(`CSV row ${i + 1} has ${parts.length} values for ${fields.length} fields`);
    }
    const row: Record<string, Cell> = {};
    fields.forEach((f, c) => (row[f] = cell(parts[c]!)));
    return row;
  });
  return { fields, units, rows };
}

/** A number from a cell like `143771 MiB`, `627.40 W`, `35 %` or `143771`; null when absent. */
export function numberOf(value: Cell, expectUnit?: string): number | null {
  if (value === null) return null;
  const m = /^(-?\d+(?:\.\d+)?)\s*([A-Za-z%]*)$/.exec(value.trim());
  if (!m) return null;
  if (expectUnit && m[2] && m[2] !== expectUnit) {
    throw new NvidiaSmiParseError(`expected a value in ${expectUnit}, got ${JSON.stringify(value)}`);
  }
  return Number(m[1]);
}

export type MigMode = 'Enabled' | 'Disabled';

function migMode(value: Cell): MigMode | null {
  if (value === null) return null;
  if (/^enabled$/i.test(value)) return 'Enabled';
  if (/^disabled$/i.test(value)) return 'Disabled';
  return null;
}

export interface GpuRecord {
  index: number | null;
  uuid: string | null;
  name: string | null;
  driverVersion: string | null;
  pciBusId: string | null;
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  memoryFreeMiB: number | null;
  utilizationGpuPct: number | null;
  utilizationMemoryPct: number | null;
  powerDrawW: number | null;
  powerLimitW: number | null;
  temperatureC: number | null;
  /** null on GPUs without MIG support (nvidia-smi answers `[N/A]`). */
  migModeCurrent: MigMode | null;
  migModePending: MigMode | null;
}

function unitCheck(table: CsvTable, field: string, unit: string): void {
  const i = table.fields.indexOf(field);
  const u = i >= 0 ? table.units[i] : null;
  if (u && u !== unit) throw new NvidiaSmiParseError(`field ${field} is in ${u}, expected ${unit}`);
}

/** `nvidia-smi --query-gpu=... --format=csv`: one record per GPU. Fields not queried are null. */
export function parseQueryGpu(text: string): GpuRecord[] {
  const t = parseCsv(text);
  if (!t.fields.includes('uuid') && !t.fields.includes('index') && !t.fields.includes('name')) {
    throw new NvidiaSmiParseError('query-gpu answer has none of index, uuid, name');
  }
  for (const f of ['memory.total', 'memory.used', 'memory.free']) unitCheck(t, f, 'MiB');
  for (const f of ['power.draw', 'power.limit']) unitCheck(t, f, 'W');
  return t.rows.map((r) => ({
    index: numberOf(r['index'] ?? null),
    uuid: r['uuid'] ?? null,
    name: r['name'] ?? null,
    driverVersion: r['driver_version'] ?? null,
    pciBusId: r['pci.bus_id'] ?? null,
    memoryTotalMiB: numberOf(r['memory.total'] ?? null, 'MiB'),
    memoryUsedMiB: numberOf(r['memory.used'] ?? null, 'MiB'),
    memoryFreeMiB: numberOf(r['memory.free'] ?? null, 'MiB'),
    utilizationGpuPct: numberOf(r['utilization.gpu'] ?? null, '%'),
    utilizationMemoryPct: numberOf(r['utilization.memory'] ?? null, '%'),
    powerDrawW: numberOf(r['power.draw'] ?? null, 'W'),
    powerLimitW: numberOf(r['power.limit'] ?? null, 'W'),
    temperatureC: numberOf(r['temperature.gpu'] ?? null),
    migModeCurrent: migMode(r['mig.mode.current'] ?? null),
    migModePending: migMode(r['mig.mode.pending'] ?? null),
  }));
}

export interface ComputeApp {
  pid: number;
  processName: string | null;
  gpuUuid: string | null;
  gpuBusId: string | null;
  /** null where the driver cannot attribute memory (e.g. `[N/A]` inside some containers). */
  usedMemoryMiB: number | null;
}

/**
 * `nvidia-smi --query-compute-apps=pid,process_name,gpu_uuid,used_memory --format=csv`
 * (`used_gpu_memory` is the same field under its other name). Header only → no processes.
 */
export function parseComputeApps(text: string): ComputeApp[] {
  const t = parseCsv(text);
  if (!t.fields.includes('pid')) throw new NvidiaSmiParseError('query-compute-apps answer has no pid column');
  const memField = t.fields.includes('used_memory') ? 'used_memory' : 'used_gpu_memory';
  unitCheck(t, memField, 'MiB');
  return t.rows.map((r, i) => {
    const pid = numberOf(r['pid'] ?? null);
    if (pid === null || !Number.isInteger(pid)) throw new NvidiaSmiParseError(`compute app row ${i + 1} has no pid`);
    return {
      pid,
      processName: r['process_name'] ?? null,
      gpuUuid: r['gpu_uuid'] ?? null,
      gpuBusId: r['gpu_bus_id'] ?? null,
      usedMemoryMiB: numberOf(r[memField] ?? null, 'MiB'),
    };
  });
}

export interface MigDevice {
  /** Device index within its GPU. */
  index: number;
  /** Profile, e.g. `1g.18gb` or `1c.3g.71gb`. */
  profile: string;
  uuid: string;
}

export interface ListedGpu {
  index: number;
  name: string;
  uuid: string;
  migDevices: MigDevice[];
}

/** `nvidia-smi -L`: GPUs and, indented under each, its MIG devices. */
export function parseList(text: string): ListedGpu[] {
  const gpus: ListedGpu[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (line.trim() === '') continue;
    const g = /^GPU (\d+): (.+?) \(UUID: (GPU-[0-9a-fA-F-]+)\)$/.exec(line);
    if (g) {
      gpus.push({ index: Number(g[1]), name: g[2]!, uuid: g[3]!, migDevices: [] });
      continue;
    }
    const m = /^\s+MIG\s+(\S+)\s+Device\s+(\d+): \(UUID: (MIG-[^)\s]+)\)$/.exec(line);
    if (m) {
      const parent = gpus[gpus.length - 1];
      if (!parent) throw new NvidiaSmiParseError(`MIG device listed before any GPU: ${JSON.stringify(line)}`);
      parent.migDevices.push({ profile: m[1]!, index: Number(m[2]), uuid: m[3]! });
      continue;
    }
    throw new NvidiaSmiParseError(`unrecognised nvidia-smi -L line: ${JSON.stringify(line)}`);
  }
  return gpus;
}
