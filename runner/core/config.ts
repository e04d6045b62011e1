import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DeploylabError, type Lang } from './errors.js';
import { parseOrThrow } from './validation.js';

/**
 * The harness configuration. Layers, later wins: schema defaults → config file → DEPLOYLAB_*
 * environment → command-line flags. Strict everywhere: an unknown key is an error, not ignored.
 */
export const ConfigSchema = z.strictObject({
  /** Unset means: follow the locale (Simplified Chinese unless it is an English one). */
  lang: z.enum(['zh', 'en']).optional(),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  dataDir: z.string().min(1).default('./data'),
  docker: z
    .strictObject({
      /** e.g. unix:///var/run/docker.sock or tcp://127.0.0.1:2375; empty means the local socket. */
      host: z.string().default(''),
      /** Session networks take their subnets from here (one /22 per session); keep it clear of the centre's LAN. */
      seatSubnetPool: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/).default('10.213.0.0/16'),
    })
    .prefault({}),
  /** Where exam seats run (runner/sandbox/backend.ts builds the driver from this). */
  sandbox: z
    .strictObject({
      /** `docker`: the engine of the `docker` section, one host. `k8s`: a namespace per seat on a cluster. */
      driver: z
        .enum(['docker', 'k8s'], {
          error: (iss) => `must be "docker" or "k8s", not ${JSON.stringify(iss.input)} (沙箱后端只能是 docker 或 k8s)`,
        })
        .default('docker'),
      /** Read only when driver is k8s (runner/sandbox/k8s-driver.ts). */
      k8s: z
        .strictObject({
          /** Kubeconfig file; empty: KUBECONFIG, then ~/.kube/config, then the in-cluster service account. */
          kubeconfig: z.string().default(''),
          /** Context of that kubeconfig; empty: its current context. */
          context: z.string().default(''),
          /** The trusted `files` sidecar of every seat pod, pullable by the cluster; empty: `<images.prefix>/toolbox:latest`. */
          toolboxImage: z.string().default(''),
          /** How long provisioning waits for a seat's workspace pod to run. */
          readyTimeoutSeconds: z.number().positive().default(180),
          /** Label of the runner's own namespace: graders there may reach seat services (the seats' network policy). */
          graderNamespaceLabel: z
            .strictObject({
              key: z.string().min(1).default('deploylab.component'),
              value: z.string().min(1).default('harness'),
            })
            .prefault({}),
        })
        .prefault({}),
    })
    .prefault({}),
  images: z
    .strictObject({
      prefix: z.string().regex(/^[a-z0-9][a-z0-9._/-]*$/).default('deploylab'),
      /** Base image where a registry is reachable. */
      base: z.string().default('debian:bookworm-slim'),
      /** Bootstrap the base from the Debian mirror instead of pulling it. */
      offline: z.boolean().default(false),
      /** Debian mirror for offline bootstrap; empty means the one apt on this host uses. */
      debianMirror: z.string().default(''),
      /** node-llama-cpp release whose bundled llama.cpp source the images are built from. */
      llamaCppNpmVersion: z.string().default('3.21.1'),
      /** CUDA base for workspace-gpu. */
      cudaBase: z.string().default('nvidia/cuda:12.4.1-runtime-ubuntu22.04'),
    })
    .prefault({}),
  server: z
    .strictObject({
      /** Bearer token of the examiner API (/api/examiner/*); empty turns that API off. Set it via DEPLOYLAB_SERVER_EXAMINER_TOKEN rather than a file. */
      examinerToken: z
        .string()
        .default('')
        .refine((t) => t === '' || /^[\x21-\x7e]{24,512}$/.test(t), {
          message: 'the examiner token must be empty (examiner API and dashboard off) or 24 to 512 printable characters without spaces, e.g. `openssl rand -hex 24` (监考令牌须为空或 24 位以上无空格字符)',
        }),
    })
    .prefault({}),
  /** The runner's watch over the seats' disk (runner/sessions/disk-watch.ts). */
  disk: z
    .strictObject({
      /** Per exam seat, across all its sandboxes (writable layers, volumes, the nested daemon's data). */
      seatQuotaMiB: z.number().int().min(16).default(2048),
      /** Warn the candidate and the examiner from this share of the quota on. */
      warnPercent: z.number().min(1).max(100).default(90),
      /** How often the supervisor samples. */
      sampleSeconds: z.number().min(1).default(15),
      /** Per exam seat, names (inodes) in its writable layers and volumes: empty files fill a host's inode table before its disk. */
      seatQuotaFiles: z.number().int().min(1000).default(200_000),
      /** Free space the host keeps for the store, evidence and archives: no seat is opened into it. */
      reserveGiB: z.number().min(0).default(10),
      /** Free inodes the host keeps, likewise. */
      reserveFiles: z.number().int().min(0).default(500_000),
      /** After an examiner's release a seat is warned but not stopped again for this long (time to delete files). */
      graceSeconds: z.number().min(0).default(120),
    })
    .prefault({}),
  host: z
    .strictObject({
      minFreeDiskGiB: z.number().positive().default(20),
      minMemoryGiB: z.number().positive().default(4),
    })
    .prefault({}),
});

export type Config = z.output<typeof ConfigSchema>;

type Env = Record<string, string | undefined>;

/** DEPLOYLAB_* variables and where each lands in the config. */
const ENV_KEYS: Record<string, { path: string[]; kind: 'string' | 'number' | 'boolean' }> = {
  DEPLOYLAB_LANG: { path: ['lang'], kind: 'string' },
  DEPLOYLAB_LOG_LEVEL: { path: ['logLevel'], kind: 'string' },
  DEPLOYLAB_DATA_DIR: { path: ['dataDir'], kind: 'string' },
  DEPLOYLAB_DOCKER_HOST: { path: ['docker', 'host'], kind: 'string' },
  DEPLOYLAB_DOCKER_SEAT_SUBNET_POOL: { path: ['docker', 'seatSubnetPool'], kind: 'string' },
  DEPLOYLAB_SANDBOX_DRIVER: { path: ['sandbox', 'driver'], kind: 'string' },
  DEPLOYLAB_SANDBOX_K8S_KUBECONFIG: { path: ['sandbox', 'k8s', 'kubeconfig'], kind: 'string' },
  DEPLOYLAB_SANDBOX_K8S_CONTEXT: { path: ['sandbox', 'k8s', 'context'], kind: 'string' },
  DEPLOYLAB_SANDBOX_K8S_TOOLBOX_IMAGE: { path: ['sandbox', 'k8s', 'toolboxImage'], kind: 'string' },
  DEPLOYLAB_IMAGES_PREFIX: { path: ['images', 'prefix'], kind: 'string' },
  DEPLOYLAB_IMAGES_BASE: { path: ['images', 'base'], kind: 'string' },
  DEPLOYLAB_IMAGES_OFFLINE: { path: ['images', 'offline'], kind: 'boolean' },
  DEPLOYLAB_IMAGES_DEBIAN_MIRROR: { path: ['images', 'debianMirror'], kind: 'string' },
  DEPLOYLAB_HOST_MIN_FREE_DISK_GIB: { path: ['host', 'minFreeDiskGiB'], kind: 'number' },
  DEPLOYLAB_DISK_SEAT_QUOTA_MIB: { path: ['disk', 'seatQuotaMiB'], kind: 'number' },
  DEPLOYLAB_DISK_RESERVE_GIB: { path: ['disk', 'reserveGiB'], kind: 'number' },
  DEPLOYLAB_SERVER_EXAMINER_TOKEN: { path: ['server', 'examinerToken'], kind: 'string' },
};
/** DEPLOYLAB_* variables that are not config values. */
const ENV_OTHER = new Set(['DEPLOYLAB_CONFIG', 'DEPLOYLAB_TEST_DOCKER']);

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== 'object' || next === null) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)) {
      out[k] = deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>);
    } else if (v !== undefined) out[k] = v;
  }
  return out;
}

function envLayer(env: Env): Record<string, unknown> {
  const layer: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('DEPLOYLAB_') || raw === undefined) continue;
    const spec = ENV_KEYS[name];
    if (!spec) {
      if (!ENV_OTHER.has(name)) unknown.push(name);
      continue;
    }
    let value: unknown = raw;
    if (spec.kind === 'number') value = Number(raw);
    if (spec.kind === 'boolean') value = ['1', 'true', 'yes'].includes(raw.toLowerCase());
    setPath(layer, spec.path, value);
  }
  if (unknown.length > 0) {
    throw new DeploylabError({
      code: 'CONFIG_UNKNOWN_ENV',
      fault: 'config',
      message: {
        zh: `未知的环境变量：${unknown.join(', ')}`,
        en: `unknown environment variable(s): ${unknown.join(', ')}`,
      },
      hint: {
        zh: `可用的有：${Object.keys(ENV_KEYS).join(', ')}`,
        en: `known ones: ${Object.keys(ENV_KEYS).join(', ')}`,
      },
    });
  }
  return layer;
}

function fileLayer(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new DeploylabError({
      code: 'CONFIG_FILE_UNREADABLE',
      fault: 'config',
      message: { zh: `无法读取配置文件 ${path}`, en: `cannot read config file ${path}` },
      hint: { zh: '检查路径和权限', en: 'check the path and its permissions' },
      cause,
    });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (cause) {
    throw new DeploylabError({
      code: 'CONFIG_FILE_SYNTAX',
      fault: 'config',
      message: {
        zh: `配置文件 ${path} 不是合法的 YAML：${(cause as Error).message}`,
        en: `config file ${path} is not valid YAML: ${(cause as Error).message}`,
      },
      cause,
    });
  }
  if (typeof doc !== 'object' || Array.isArray(doc) || doc === null) {
    throw new DeploylabError({
      code: 'CONFIG_FILE_SYNTAX',
      fault: 'config',
      message: { zh: `配置文件 ${path} 顶层必须是映射`, en: `config file ${path} must hold a mapping at the top` },
    });
  }
  // Validate the file alone first so its problems name the file.
  parseOrThrow(ConfigSchema, doc, { source: path, code: 'CONFIG_INVALID', what: { zh: '配置', en: 'config' } });
  return doc as Record<string, unknown>;
}

export interface LoadConfigOptions {
  /** Explicit config file; otherwise DEPLOYLAB_CONFIG, otherwise ./deploylab.yaml if present. */
  file?: string | undefined;
  env?: Env;
  flags?: Record<string, unknown>;
}

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.DEPLOYLAB_CONFIG ?? (existsSync('deploylab.yaml') ? 'deploylab.yaml' : undefined);
  let merged: Record<string, unknown> = {};
  if (file) merged = deepMerge(merged, fileLayer(file));
  const fromEnv = envLayer(env);
  parseOrThrow(ConfigSchema, fromEnv, { source: 'environment', code: 'CONFIG_INVALID', what: { zh: '配置', en: 'config' } });
  merged = deepMerge(merged, fromEnv);
  merged = deepMerge(merged, opts.flags ?? {});
  return parseOrThrow(ConfigSchema, merged, { source: 'flags', code: 'CONFIG_INVALID', what: { zh: '配置', en: 'config' } });
}

/** Language for people: --lang wins, then config (file or DEPLOYLAB_LANG), then the locale; Simplified Chinese otherwise. */
export function detectLang(flag: string | undefined, env: Env = process.env, configured?: Lang): Lang {
  if (flag === 'en' || flag === 'zh') return flag;
  const fromEnv = env.DEPLOYLAB_LANG;
  if (fromEnv === 'en' || fromEnv === 'zh') return fromEnv;
  if (configured) return configured;
  const locale = env.LC_ALL || env.LC_MESSAGES || env.LANG || '';
  return /^en/i.test(locale) ? 'en' : 'zh';
}
