import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../core/config.js';
import { DeploylabError, type Bilingual, type ErrorCode } from '../core/errors.js';
import { dockerFor, requireEngine } from '../images/image-build.js';
import { DEFAULT_SUBNET_PREFIX, dockerDriverFor, sandboxesPerSessionFor } from './docker-driver.js';
import type {
  Endpoint,
  EvidenceArchive,
  ExecOptions,
  DiskUsageFilter,
  ExecResult,
  FileEntry,
  Leftover,
  SandboxDriver,
  SeatDiskUsage,
  SeatPlan,
  SeatProcess,
  SeatRef,
  SeatStatus,
  SweepFilter,
  SweptItem,
  TerminalOptions,
  TerminalSession,
  WriteFile,
} from './driver.js';
import type { K8sDriverOptions } from './k8s-driver.js';
import { COMPONENT_SEAT, LABEL } from './labels.js';

/**
 * The composition root of the sandbox backend: the one place that turns `sandbox.driver` into a
 * driver. Docker builds a DockerDriver over the `docker` section; k8s a K8sDriver over
 * `sandbox.k8s`. The Kubernetes client library is loaded only when the k8s backend is used.
 */

export type BackendName = SandboxDriver['name'];

// ---------------------------------------------------------------------------------------------
// What a backend is, from the config alone


/** `name` and `sandboxesPerSession` of the configured driver, without building it. */
export function backendShape(config: Config): Pick<SandboxDriver, 'name' | 'sandboxesPerSession'> {
  if (config.sandbox.driver === 'k8s') return { name: 'k8s', sandboxesPerSession: null };
  return { name: 'docker', sandboxesPerSession: sandboxesPerSessionFor(DEFAULT_SUBNET_PREFIX) };
}

// ---------------------------------------------------------------------------------------------
// The lazy driver

/**
 * A driver that builds the real one on its first method call (never for `name` or
 * `sandboxesPerSession`): what commands that only read the store hand to SessionService, so they
 * run with the engine or the cluster down. A factory that throws fails that call, and the next
 * call tries again.
 */
export function lazySandboxDriver(
  shape: Pick<SandboxDriver, 'name' | 'sandboxesPerSession'>,
  factory: () => SandboxDriver | Promise<SandboxDriver>,
): SandboxDriver {
  return new LazyDriver(shape, factory);
}

class LazyDriver implements SandboxDriver {
  readonly name: BackendName;
  readonly sandboxesPerSession: number | null;
  private built: Promise<SandboxDriver> | undefined;

  constructor(
    shape: Pick<SandboxDriver, 'name' | 'sandboxesPerSession'>,
    private readonly factory: () => SandboxDriver | Promise<SandboxDriver>,
  ) {
    this.name = shape.name;
    this.sandboxesPerSession = shape.sandboxesPerSession;
  }

  private real(): Promise<SandboxDriver> {
    if (!this.built) {
      const p = (async () => this.factory())();
      this.built = p;
      p.catch(() => {
        if (this.built === p) this.built = undefined;
      });
    }
    return this.built;
  }

  async provision(plan: SeatPlan): Promise<SeatStatus> {
    return (await this.real()).provision(plan);
  }
  async status(ref: SeatRef): Promise<SeatStatus> {
    return (await this.real()).status(ref);
  }
  async exec(ref: SeatRef, opts: ExecOptions): Promise<ExecResult> {
    return (await this.real()).exec(ref, opts);
  }
  async openTerminal(ref: SeatRef, opts?: TerminalOptions): Promise<TerminalSession> {
    return (await this.real()).openTerminal(ref, opts);
  }
  async readFile(ref: SeatRef, path: string, opts?: { maxBytes?: number; container?: string }): Promise<Buffer> {
    return (await this.real()).readFile(ref, path, opts);
  }
  async readTree(ref: SeatRef, path: string, opts?: { maxBytes?: number; container?: string; prefix?: boolean }): Promise<FileEntry[]> {
    return (await this.real()).readTree(ref, path, opts);
  }
  async writeFiles(ref: SeatRef, files: WriteFile[], opts?: { container?: string }): Promise<void> {
    return (await this.real()).writeFiles(ref, files, opts);
  }
  async processes(ref: SeatRef): Promise<SeatProcess[]> {
    return (await this.real()).processes(ref);
  }
  async endpoint(ref: SeatRef, port: number, opts?: { container?: string }): Promise<Endpoint> {
    return (await this.real()).endpoint(ref, port, opts);
  }
  async freeze(ref: SeatRef): Promise<void> {
    return (await this.real()).freeze(ref);
  }
  async thaw(ref: SeatRef): Promise<void> {
    return (await this.real()).thaw(ref);
  }
  async diskUsage(filter?: DiskUsageFilter): Promise<SeatDiskUsage[]> {
    return (await this.real()).diskUsage(filter);
  }
  async halt(ref: SeatRef): Promise<void> {
    return (await this.real()).halt(ref);
  }
  async release(ref: SeatRef): Promise<void> {
    return (await this.real()).release(ref);
  }
  async captureEvidence(ref: SeatRef, destFile: string, opts?: { path?: string }): Promise<EvidenceArchive> {
    return (await this.real()).captureEvidence(ref, destFile, opts);
  }
  async destroy(ref: SeatRef): Promise<void> {
    return (await this.real()).destroy(ref);
  }
  async list(filter?: SweepFilter): Promise<SeatStatus[]> {
    return (await this.real()).list(filter);
  }
  async sweep(filter?: SweepFilter): Promise<SweptItem[]> {
    return (await this.real()).sweep(filter);
  }
  async leftovers(filter: { session: string }): Promise<Leftover[]> {
    return (await this.real()).leftovers(filter);
  }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

type K8sClient = typeof import('@kubernetes/client-node');

/** The client library, loaded on first use (it is large, and Docker-only centres never need it). */
const k8sClient = (): Promise<K8sClient> => import('@kubernetes/client-node');

/** Where the kubeconfig came from, as a person would say it. */
function kubeconfigSource(config: Config): Bilingual {
  const k = config.sandbox.k8s;
  if (k.kubeconfig) return { zh: k.kubeconfig, en: k.kubeconfig };
  if (process.env.KUBECONFIG) return { zh: `${process.env.KUBECONFIG}（KUBECONFIG）`, en: `${process.env.KUBECONFIG} (KUBECONFIG)` };
  return { zh: '默认位置（~/.kube/config 或集群内服务账号）', en: 'from the default places (~/.kube/config or the in-cluster service account)' };
}

/**
 * The KubeConfig `sandbox.k8s` names: its file (or the default chain) and context. Reads a file,
 * contacts nothing. An unreadable file or an unknown context is a config error naming the field.
 */
export function kubeConfigFrom(config: Config, lib: Pick<K8sClient, 'KubeConfig'>): KubeConfig {
  const k = config.sandbox.k8s;
  const kc = new lib.KubeConfig();
  try {
    if (k.kubeconfig) kc.loadFromFile(k.kubeconfig);
    else kc.loadFromDefault();
  } catch (cause) {
    const why = (cause as Error).message;
    throw new DeploylabError({
      code: 'K8S_KUBECONFIG_INVALID',
      fault: 'config',
      message: {
        zh: `无法读取 Kubernetes 配置 ${kubeconfigSource(config).zh}（配置项 sandbox.k8s.kubeconfig）：${why}`,
        en: `cannot load the kubeconfig ${kubeconfigSource(config).en} (setting sandbox.k8s.kubeconfig): ${why}`,
      },
      hint: { zh: '检查 sandbox.k8s.kubeconfig 的路径与内容', en: 'check the path and the content of sandbox.k8s.kubeconfig' },
      cause,
    });
  }
  if (k.context) {
    if (!kc.getContextObject(k.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new DeploylabError({
        code: 'K8S_CONTEXT_UNKNOWN',
        fault: 'config',
        message: {
          zh: `Kubernetes 配置 ${kubeconfigSource(config).zh} 中没有上下文 ${k.context}（配置项 sandbox.k8s.context）`,
          en: `the kubeconfig ${kubeconfigSource(config).en} has no context ${k.context} (setting sandbox.k8s.context)`,
        },
        hint: { zh: `可用的有：${known.join(', ') || '无'}`, en: `known ones: ${known.join(', ') || 'none'}` },
      });
    }
    kc.setCurrentContext(k.context);
  }
  return kc;
}

/** K8sDriver's options from `sandbox.k8s` (and images.prefix for the default toolbox image). */
export function k8sDriverOptions(config: Config, kubeConfig: KubeConfig): K8sDriverOptions {
  const k = config.sandbox.k8s;
  return {
    kubeConfig,
    toolboxImage: k.toolboxImage || `${config.images.prefix}/toolbox:latest`,
    readyTimeoutMs: Math.round(k.readyTimeoutSeconds * 1000),
    graderNamespaceLabel: { key: k.graderNamespaceLabel.key, value: k.graderNamespaceLabel.value },
  };
}

async function buildK8sDriver(config: Config): Promise<SandboxDriver> {
  const [lib, { K8sDriver }] = await Promise.all([k8sClient(), import('./k8s-driver.js')]);
  return new K8sDriver(k8sDriverOptions(config, kubeConfigFrom(config, lib)));
}

export type ClusterProbe =
  | { reachable: true; server: string; context: string; version: string; canListNamespaces: boolean }
  | { reachable: false; server: string; context: string; error: { code: ErrorCode; message: Bilingual; hint?: Bilingual } };

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    p,
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no answer within ${Math.round(ms / 1000)} s`)), ms).unref()),
  ]);
}

const statusOf = (e: unknown): number | undefined => {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'number' ? c : undefined;
};

/**
 * Does the configured cluster answer: its version, then whether these credentials may list
 * namespaces (what the driver's list and sweep do). A bad kubeconfig or context still throws
 * (a config error); a cluster that does not answer is a result, not an exception.
 */
export async function probeCluster(config: Config, opts: { timeoutMs?: number } = {}): Promise<ClusterProbe> {
  const lib = await k8sClient();
  const kc = kubeConfigFrom(config, lib);
  const server = kc.getCurrentCluster()?.server ?? '(none)';
  const context = kc.getCurrentContext() || '(none)';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const unreachable = (cause: unknown): ClusterProbe => {
    const why = (cause as Error).message;
    return {
      reachable: false,
      server,
      context,
      error: {
        code: 'CLUSTER_UNREACHABLE',
        message: {
          zh: `Kubernetes 集群 ${server}（上下文 ${context}）无应答：${why}`,
          en: `the Kubernetes cluster at ${server} (context ${context}) does not answer: ${why}`,
        },
        hint: {
          zh: '检查 sandbox.k8s.kubeconfig 与 sandbox.k8s.context，以及本机到集群 API 的网络',
          en: 'check sandbox.k8s.kubeconfig and sandbox.k8s.context, and the network from here to the cluster API',
        },
      },
    };
  };
  let version: string;
  try {
    version = (await withTimeout(kc.makeApiClient(lib.VersionApi).getCode(), timeoutMs)).gitVersion;
  } catch (cause) {
    return unreachable(cause);
  }
  let canListNamespaces = true;
  try {
    await withTimeout(kc.makeApiClient(lib.CoreV1Api).listNamespace({ limit: 1, labelSelector: `${LABEL.component}=${COMPONENT_SEAT}` }), timeoutMs);
  } catch (e) {
    const code = statusOf(e);
    if (code === 401 || code === 403) canListNamespaces = false;
    else return unreachable(e);
  }
  return { reachable: true, server, context, version, canListNamespaces };
}

/** The cluster answers, or CLUSTER_UNREACHABLE (infrastructure): what requireEngine is for Docker. */
export async function requireCluster(config: Config, opts: { timeoutMs?: number } = {}): Promise<void> {
  const p = await probeCluster(config, opts);
  if (!p.reachable) {
    throw new DeploylabError({
      code: p.error.code,
      fault: 'infrastructure',
      message: p.error.message,
      ...(p.error.hint ? { hint: p.error.hint } : {}),
      details: { server: p.server, context: p.context },
    });
  }
  if (!p.canListNamespaces) throw clusterForbidden(p);
}

/** The cluster answered but these credentials may not list namespaces, which every seat operation needs. */
export function clusterForbidden(p: { server: string; context: string }): DeploylabError {
  return new DeploylabError({
    code: 'CLUSTER_FORBIDDEN',
    fault: 'infrastructure',
    message: {
      zh: `Kubernetes 集群 ${p.server}（上下文 ${p.context}）拒绝列出命名空间：当前凭据权限不足`,
      en: `the Kubernetes cluster at ${p.server} (context ${p.context}) refuses to list namespaces: these credentials lack the permission`,
    },
    hint: {
      zh: '为运行本工具的账号授予管理命名空间、Pod、Service、NetworkPolicy、ResourceQuota 与 LimitRange 的权限',
      en: 'grant the account this runs as the right to manage namespaces, pods, services, network policies, resource quotas and limit ranges',
    },
    details: { server: p.server, context: p.context },
  });
}

// ---------------------------------------------------------------------------------------------
// The composition root

/**
 * The configured driver. Docker: a DockerDriver with its toolbox and host-engine access; building
 * it contacts no engine. k8s: a K8sDriver built on first use (the client library loads then, and
 * the kubeconfig is read then); building it contacts no cluster.
 */
export function sandboxDriverFor(config: Config): SandboxDriver {
  if (config.sandbox.driver === 'k8s') return lazySandboxDriver(backendShape(config), () => buildK8sDriver(config));
  return dockerDriverFor(config);
}

/** The driver, built on its first method call: for commands that may never touch a seat. */
export function lazySandboxDriverFor(config: Config, factory: () => SandboxDriver | Promise<SandboxDriver> = () => sandboxDriverFor(config)): SandboxDriver {
  return lazySandboxDriver(backendShape(config), factory);
}

/** The backend answers: the Docker engine (ENGINE_UNREACHABLE) or the cluster (CLUSTER_UNREACHABLE). */
export async function requireBackend(config: Config): Promise<void> {
  if (config.sandbox.driver === 'k8s') await requireCluster(config);
  else await requireEngine(dockerFor(config));
}
