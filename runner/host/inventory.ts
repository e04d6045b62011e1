import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import type { Config } from '../core/config.js';
import { asDeploylabError } from '../core/errors.js';
import {
  COMPUTE_APPS_ARGS,
  GPU_QUERY_ARGS,
  LIST_ARGS,
  parseComputeApps,
  parseList,
  parseQueryGpu,
} from '../../graders/parsers/nvidia-smi.js';
import type { ImageState } from '../images/types.js';
import { engineTarget, probeEngine } from './engine.js';
import type { DiskFact, EngineFacts, FactError, GpuFacts, HostFacts, HostInventory, ImageFacts } from './types.js';

type Env = Record<string, string | undefined>;

/** Find an executable on PATH, plus the sbin folders a non-root PATH often lacks (dockerd lives there). */
export function findBinary(name: string, env: Env = process.env): string | null {
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return null;
}

function osRelease(): HostFacts['os'] {
  const out = { id: '', idLike: [] as string[], versionId: '', pretty: '' };
  try {
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=("?)(.*)\2$/.exec(line.trim());
      if (!m) continue;
      if (m[1] === 'ID') out.id = m[3]!;
      if (m[1] === 'ID_LIKE') out.idLike = m[3]!.split(/\s+/);
      if (m[1] === 'VERSION_ID') out.versionId = m[3]!;
      if (m[1] === 'PRETTY_NAME') out.pretty = m[3]!;
    }
  } catch {
    // not Linux, or a stripped image: leave it empty, the plan treats it as "not Debian"
  }
  return out;
}

/** A dockerd process on this host, found through /proc (no pid file is reliable across setups). */
export function findDockerdPid(): number | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'utf8').trim() === 'dockerd') return Number(e);
    } catch {
      // the process ended while we looked
    }
  }
  return null;
}

export function gatherHostFacts(env: Env = process.env): HostFacts {
  return {
    cpus: availableParallelism(),
    memTotalBytes: totalmem(),
    cgroupFs: existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : existsSync('/sys/fs/cgroup') ? '1' : null,
    os: osRelease(),
    isRoot: process.getuid?.() === 0,
    hasSystemd: existsSync('/run/systemd/system'),
    dockerdPath: findBinary('dockerd', env),
    debootstrapPath: findBinary('debootstrap', env),
    dockerdPid: findDockerdPid(),
    nvidiaContainerToolkit:
      findBinary('nvidia-ctk', env) ?? findBinary('nvidia-container-runtime-hook', env) ?? findBinary('nvidia-container-cli', env),
  };
}

/** Free space where `path` lives; a path not created yet is measured at its nearest existing parent. */
export async function measureDisk(purpose: DiskFact['purpose'], path: string): Promise<DiskFact> {
  let p = resolve(path);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  try {
    const s = await statfs(p);
    return { purpose, path, measuredPath: p, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch (cause) {
    const why = (cause as Error).message;
    return {
      purpose,
      path,
      error: { code: 'DISK_UNMEASURABLE', message: { zh: `无法测量 ${p} 的可用空间：${why}`, en: `cannot measure free space at ${p}: ${why}` } },
    };
  }
}

function run(file: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      if (err) rej(Object.assign(err, { stdout, stderr }));
      else res({ stdout, stderr });
    });
  });
}

/** GPUs from the host's nvidia-smi. No binary: no GPU. A binary that fails: could not check. */
export async function gatherGpu(env: Env = process.env, timeoutMs = 20_000): Promise<GpuFacts> {
  const nvidiaSmi = findBinary('nvidia-smi', env);
  if (!nvidiaSmi) return { state: 'absent' };
  try {
    const gpus = parseQueryGpu((await run(nvidiaSmi, GPU_QUERY_ARGS, timeoutMs)).stdout);
    const apps = parseComputeApps((await run(nvidiaSmi, COMPUTE_APPS_ARGS, timeoutMs)).stdout);
    const list = parseList((await run(nvidiaSmi, LIST_ARGS, timeoutMs)).stdout);
    return { state: 'present', nvidiaSmi, gpus, apps, list };
  } catch (cause) {
    return nvidiaSmiFailed(nvidiaSmi, cause);
  }
}

/** The same, blocking: for `session open`, which plans without awaiting (asked only for a GPU paper). */
export function gatherGpuSync(env: Env = process.env, timeoutMs = 20_000): GpuFacts {
  const nvidiaSmi = findBinary('nvidia-smi', env);
  if (!nvidiaSmi) return { state: 'absent' };
  const out = (args: string[]): string => execFileSync(nvidiaSmi, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 8 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    return { state: 'present', nvidiaSmi, gpus: parseQueryGpu(out(GPU_QUERY_ARGS)), apps: parseComputeApps(out(COMPUTE_APPS_ARGS)), list: parseList(out(LIST_ARGS)) };
  } catch (cause) {
    return nvidiaSmiFailed(nvidiaSmi, cause);
  }
}

function nvidiaSmiFailed(nvidiaSmi: string, cause: unknown): GpuFacts {
  const e = cause as Error & { stdout?: string | Buffer; stderr?: string | Buffer };
  // nvidia-smi explains itself on stdout ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver")
  const said = `${String(e.stderr ?? '')}\n${String(e.stdout ?? '')}`.trim().split('\n')[0] || e.message;
  return {
    state: 'error',
    nvidiaSmi,
    error: {
      code: 'NVIDIA_SMI_FAILED',
      message: { zh: `${nvidiaSmi} 运行失败：${said}`, en: `${nvidiaSmi} failed: ${said}` },
      hint: {
        zh: '检查 NVIDIA 驱动是否加载（nvidia-smi 单独运行应列出 GPU）',
        en: 'check that the NVIDIA driver is loaded (nvidia-smi alone should list the GPUs)',
      },
    },
  };
}

export async function gatherImages(
  config: Config,
  engine: EngineFacts,
  inspectImages: (config: Config) => Promise<ImageState[]>,
): Promise<ImageFacts> {
  if (!engine.reachable) {
    return {
      state: 'error',
      error: {
        code: 'ENGINE_UNREACHABLE',
        message: { zh: '容器引擎不可达，无法检查镜像', en: 'the container engine is unreachable: images cannot be checked' },
      },
    };
  }
  try {
    const images = await inspectImages(config);
    if (images.every((i) => i.current)) return { state: 'known', images };
    // Built with the other base recipe (e.g. `prepare --offline` while the config says registry)?
    const offline = !config.images.offline;
    const other = await inspectImages({ ...config, images: { ...config.images, offline } });
    return { state: 'known', images, otherRecipe: { offline, images: other } };
  } catch (cause) {
    const err = asDeploylabError(cause);
    const fe: FactError = { code: err.code, message: { zh: err.zh, en: err.message }, hint: err.hint };
    return { state: 'error', error: fe };
  }
}

export interface GatherDeps {
  env?: Env;
  inspectImages: (config: Config) => Promise<ImageState[]>;
  engineTimeoutMs?: number;
}

/** Look at everything the check judges. Never throws for what it finds; only for bad config. */
export async function gatherInventory(config: Config, deps: GatherDeps): Promise<HostInventory> {
  const env = deps.env ?? process.env;
  const target = engineTarget(config, env);
  const [engine, gpu, dataDisk] = await Promise.all([
    probeEngine(target, deps.engineTimeoutMs),
    gatherGpu(env),
    measureDisk('data', resolve(config.dataDir)),
  ]);
  let engineDisk: DiskFact;
  if (!engine.reachable) {
    engineDisk = { purpose: 'engine-root', path: '', error: { code: 'ENGINE_UNREACHABLE', message: engine.error.message } };
  } else if (!target.local) {
    engineDisk = { purpose: 'engine-root', path: engine.rootDir, remote: true };
  } else {
    engineDisk = await measureDisk('engine-root', engine.rootDir);
  }
  const images = await gatherImages(config, engine, deps.inspectImages);
  return {
    checkedAt: new Date().toISOString(),
    dataDir: resolve(config.dataDir),
    engine,
    host: gatherHostFacts(env),
    disks: [dataDisk, engineDisk],
    gpu,
    images,
  };
}
