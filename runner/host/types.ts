import type { Bilingual } from '../core/errors.js';
import type { ImageState } from '../images/types.js';
import type { ComputeApp, GpuRecord, ListedGpu } from '../../graders/parsers/nvidia-smi.js';
import type { GpuTaskFit } from './gpu-fit.js';

/** A failure to look at something, kept as data so the report can say what could not be checked. */
export interface FactError {
  code: string;
  message: Bilingual;
  hint?: Bilingual | undefined;
}

/** Where the engine is: from config docker.host, else DOCKER_HOST, else the local socket. */
export interface EngineTarget {
  /** As a person would write it: `unix:///var/run/docker.sock`, `tcp://10.0.0.5:2375`. */
  url: string;
  /** Which setting chose it. */
  source: 'config' | 'DOCKER_HOST' | 'default';
  kind: 'unix' | 'tcp';
  socketPath?: string;
  host?: string;
  port?: number;
  tls: boolean;
  /** The engine runs on this machine (a unix socket or a loopback address): its paths are ours. */
  local: boolean;
}

export type EngineFacts =
  | {
      reachable: true;
      target: EngineTarget;
      version: string;
      apiVersion: string;
      os: string;
      storageDriver: string;
      /** From the engine's info; null when the engine does not say (old engines). */
      cgroupVersion: '1' | '2' | null;
      cgroupDriver: string | null;
      rootDir: string;
      ncpu: number;
      memTotalBytes: number;
      /** What the kernel lets the engine enforce: seats' hard limits depend on it. null: not said. */
      limits: { memory: boolean | null; swap: boolean | null; cpuQuota: boolean | null; pids: boolean | null };
      /** Runtime names the engine knows (`runc`, `nvidia`, ...). */
      runtimes: string[];
    }
  | { reachable: false; target: EngineTarget; error: FactError };

export interface HostFacts {
  cpus: number;
  memTotalBytes: number;
  /** From /sys/fs/cgroup: the fallback when the engine cannot tell. */
  cgroupFs: '1' | '2' | null;
  os: { id: string; idLike: string[]; versionId: string; pretty: string };
  isRoot: boolean;
  hasSystemd: boolean;
  dockerdPath: string | null;
  debootstrapPath: string | null;
  /** PID of a dockerd already running on this host, if any. */
  dockerdPid: number | null;
  /** The NVIDIA Container Toolkit (what lets containers use the GPUs): the first of its binaries found. */
  nvidiaContainerToolkit: string | null;
}

export interface DiskFact {
  purpose: 'data' | 'engine-root';
  /** The path the harness cares about. */
  path: string;
  /** The path actually measured (the nearest existing parent when `path` does not exist yet). */
  measuredPath?: string;
  freeBytes?: number;
  totalBytes?: number;
  /** Set when the engine is remote: its root dir is not on this machine. */
  remote?: boolean;
  error?: FactError;
}

export type GpuFacts =
  | { state: 'absent' }
  | { state: 'present'; nvidiaSmi: string; gpus: GpuRecord[]; apps: ComputeApp[]; list: ListedGpu[] }
  | { state: 'error'; nvidiaSmi: string; error: FactError };

export type ImageFacts =
  | {
      state: 'known';
      images: ImageState[];
      /** The same images under the other base recipe (offline ↔ registry), looked at when the configured one is not current. */
      otherRecipe?: { offline: boolean; images: ImageState[] };
    }
  | { state: 'error'; error: FactError };

export interface HostInventory {
  checkedAt: string;
  dataDir: string;
  engine: EngineFacts;
  host: HostFacts;
  disks: DiskFact[];
  gpu: GpuFacts;
  images: ImageFacts;
}

export type ItemStatus = 'ok' | 'warn' | 'fail' | 'error';
export type ItemId = 'engine' | 'storage-driver' | 'cgroup' | 'cpu' | 'memory' | 'disk-data' | 'disk-engine' | 'gpu' | 'images';

export interface CheckItem {
  id: ItemId;
  title: Bilingual;
  status: ItemStatus;
  message: Bilingual;
  hint?: Bilingual;
  /** Stable code for fail/error items, e.g. ENGINE_UNREACHABLE, DISK_LOW. */
  code?: string;
  details: Record<string, unknown>;
}

export type Overall = 'ready' | 'not-ready' | 'could-not-check';

export interface HostReport {
  overall: Overall;
  ready: boolean;
  /** 0 ready, 1 not ready, 2 could not check (EXIT in runner/core/output.ts). */
  exitCode: number;
  checkedAt: string;
  items: CheckItem[];
  inventory: HostInventory;
  /** The tree's GPU tasks and whether this host can run them: information, not part of the verdict. */
  gpuTasks?: GpuTaskFit[];
}

export interface Thresholds {
  minFreeDiskGiB: number;
  minMemoryGiB: number;
}
