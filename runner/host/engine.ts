import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { z } from 'zod';
import type { Config } from '../core/config.js';
import { DeploylabError } from '../core/errors.js';
import { metrics } from '../core/metrics.js';
import type { EngineFacts, EngineTarget, FactError } from './types.js';

type Env = Record<string, string | undefined>;

export const DEFAULT_SOCKET = '/var/run/docker.sock';

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[?::1\]?)$/i;

/** Resolve where the engine is: config docker.host wins, then DOCKER_HOST, then the local socket. */
export function engineTarget(config: Config, env: Env = process.env): EngineTarget {
  const fromConfig = config.docker.host.trim();
  const fromEnv = (env.DOCKER_HOST ?? '').trim();
  const source: EngineTarget['source'] = fromConfig ? 'config' : fromEnv ? 'DOCKER_HOST' : 'default';
  const raw = fromConfig || fromEnv || `unix://${DEFAULT_SOCKET}`;
  const tls = env.DOCKER_TLS_VERIFY === '1' || raw.startsWith('https://');
  if (raw.startsWith('unix://')) {
    const socketPath = raw.slice('unix://'.length) || DEFAULT_SOCKET;
    return { url: `unix://${socketPath}`, source, kind: 'unix', socketPath, tls: false, local: true };
  }
  const m = /^(tcp|http|https):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(raw);
  if (m) {
    const port = m[3] ? Number(m[3]) : tls ? 2376 : 2375;
    const host = m[2]!;
    return { url: `tcp://${host}:${port}`, source, kind: 'tcp', host: host.replace(/^\[|\]$/g, ''), port, tls, local: LOOPBACK.test(host) };
  }
  throw new DeploylabError({
    code: 'ENGINE_HOST_INVALID',
    fault: 'config',
    message: {
      zh: `容器引擎地址无效（来自 ${source === 'config' ? '配置 docker.host' : 'DOCKER_HOST'}）：${raw}`,
      en: `invalid container engine address (from ${source === 'config' ? 'config docker.host' : 'DOCKER_HOST'}): ${raw}`,
    },
    hint: {
      zh: '写成 unix:///var/run/docker.sock 或 tcp://主机:端口',
      en: 'write it as unix:///var/run/docker.sock or tcp://host:port',
    },
  });
}

/**
 * A dockerode client for the target. `timeoutMs` bounds every request: use it for quick probes,
 * never for builds or log streams.
 */
export function engineClient(target: EngineTarget, opts: { timeoutMs?: number; env?: Env } = {}): Docker {
  const base: Docker.DockerOptions = opts.timeoutMs ? { timeout: opts.timeoutMs } : {};
  if (target.kind === 'unix') return new Docker({ ...base, socketPath: target.socketPath! });
  const env = opts.env ?? process.env;
  const tlsFiles: Partial<Record<'ca' | 'cert' | 'key', Buffer>> = {};
  if (target.tls && env.DOCKER_CERT_PATH) {
    for (const f of ['ca', 'cert', 'key'] as const) tlsFiles[f] = readFileSync(join(env.DOCKER_CERT_PATH, `${f}.pem`));
  }
  return new Docker({ ...base, host: target.host!, port: target.port!, protocol: target.tls ? 'https' : 'http', ...tlsFiles });
}

/** Only the fields we use from GET /version and GET /info; the rest is the engine's business. */
const VersionSchema = z.object({ Version: z.string(), ApiVersion: z.string(), Os: z.string().default('') });
const InfoSchema = z.object({
  Driver: z.string(),
  DockerRootDir: z.string(),
  NCPU: z.number().int(),
  MemTotal: z.number(),
  CgroupVersion: z.enum(['1', '2']).optional(),
  CgroupDriver: z.string().optional(),
  OperatingSystem: z.string().default(''),
  MemoryLimit: z.boolean().optional(),
  SwapLimit: z.boolean().optional(),
  CpuCfsQuota: z.boolean().optional(),
  PidsLimit: z.boolean().optional(),
  Runtimes: z.record(z.string(), z.unknown()).nullish(),
});

export function unreachableError(target: EngineTarget, cause: unknown): FactError {
  const why = cause instanceof Error ? cause.message : String(cause);
  const where =
    target.source === 'default' ? '' : target.source === 'config' ? '（配置 docker.host）' : '（环境变量 DOCKER_HOST）';
  const whereEn = target.source === 'default' ? '' : target.source === 'config' ? ' (config docker.host)' : ' (DOCKER_HOST)';
  return {
    code: 'ENGINE_UNREACHABLE',
    message: {
      zh: `无法连接容器引擎 ${target.url}${where}：${why}`,
      en: `cannot reach the container engine at ${target.url}${whereEn}: ${why}`,
    },
    hint:
      target.kind === 'tcp'
        ? {
            zh: `确认 ${target.host}:${target.port} 上的 dockerd 在运行并监听该端口、防火墙放行；或改正/去掉 DOCKER_HOST 与 docker.host`,
            en: `check that dockerd runs on ${target.host}:${target.port} and listens there, and that no firewall blocks it; or fix/unset DOCKER_HOST and docker.host`,
          }
        : {
            zh: `确认 dockerd 在运行且 ${target.socketPath} 可访问（root 或 docker 组）；以 root 运行 deploylab host prepare 可安装并启动它`,
            en: `check that dockerd runs and ${target.socketPath} is accessible (root or the docker group); run deploylab host prepare as root to install and start it`,
          },
  };
}

/** Ask the engine who it is. Never throws: an unreachable engine is a fact. */
export async function probeEngine(target: EngineTarget, timeoutMs = 10_000): Promise<EngineFacts> {
  const docker = engineClient(target, { timeoutMs });
  try {
    const [version, info] = await Promise.all([docker.version(), docker.info()]);
    const v = VersionSchema.parse(version);
    const i = InfoSchema.parse(info);
    return {
      reachable: true,
      target,
      version: v.Version,
      apiVersion: v.ApiVersion,
      os: i.OperatingSystem || v.Os,
      storageDriver: i.Driver,
      cgroupVersion: i.CgroupVersion ?? null,
      cgroupDriver: i.CgroupDriver ?? null,
      rootDir: i.DockerRootDir,
      ncpu: i.NCPU,
      memTotalBytes: i.MemTotal,
      limits: { memory: i.MemoryLimit ?? null, swap: i.SwapLimit ?? null, cpuQuota: i.CpuCfsQuota ?? null, pids: i.PidsLimit ?? null },
      runtimes: Object.keys(i.Runtimes ?? {}),
    };
  } catch (cause) {
    metrics.engineErrors.inc({ operation: 'host-probe' });
    return { reachable: false, target, error: unreachableError(target, cause) };
  }
}
