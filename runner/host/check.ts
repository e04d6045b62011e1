import type { Config } from '../core/config.js';
import { asDeploylabError, type Lang } from '../core/errors.js';
import { metrics } from '../core/metrics.js';
import { table } from '../core/output.js';
import type { InspectImages } from '../images/types.js';
import { clusterForbidden, probeCluster, type ClusterProbe } from '../sandbox/backend.js';
import { EXIT_OF, evaluateHost, overallOf } from './evaluate.js';
import { imageOps } from './images.js';
import { gatherInventory } from './inventory.js';
import { gpuTaskFits, type GpuDemand, type GpuTaskFit } from './gpu-fit.js';
import { DEFAULT_TASKS_ROOT, loadTaskTree } from '../tasks/loader.js';
import type { CheckItem, HostReport, ItemStatus, Overall } from './types.js';

export interface CheckHostOptions {
  env?: Record<string, string | undefined>;
  /** Defaults to the images module's inspectImages. */
  inspectImages?: InspectImages;
  /** Defaults to the sandbox backend's probeCluster (asked only when sandbox.driver is k8s). */
  probeCluster?: (config: Config) => Promise<ClusterProbe>;
  /** The tasks whose GPU needs are judged; the valid tasks of the project's tree by default. */
  tasks?: { id: string; needs: GpuDemand }[];
}

/** The project's valid tasks; none when the tree cannot be read (the host check does not judge tasks). */
function treeTasks(): { id: string; needs: GpuDemand }[] {
  try {
    return loadTaskTree(DEFAULT_TASKS_ROOT).tasks.map((t) => ({ id: t.task.id, needs: t.task.needs }));
  } catch {
    return [];
  }
}

/** Where seats run (config `sandbox.driver`), judged like the other items. */
export type BackendItem = Omit<CheckItem, 'id'> & { id: 'backend'; driver: Config['sandbox']['driver'] };

/** The host report plus the sandbox backend; the backend counts toward the verdict and exit code. */
export type CheckedHost = HostReport & { backend: BackendItem };

const BACKEND_TITLE = { zh: '沙箱后端', en: 'sandbox backend' };

/** The backend item: Docker is judged by the engine item; Kubernetes by whether the cluster answers. */
export async function backendItem(config: Config, probe: (config: Config) => Promise<ClusterProbe> = probeCluster): Promise<BackendItem> {
  if (config.sandbox.driver === 'docker') {
    return {
      id: 'backend',
      driver: 'docker',
      title: BACKEND_TITLE,
      status: 'ok',
      message: { zh: 'docker：考位运行在本机的 Docker 引擎上（见“容器引擎”一项）', en: 'docker: seats run on the Docker engine of this host (see the container engine item)' },
      details: { driver: 'docker' },
    };
  }
  let p: ClusterProbe;
  try {
    p = await probe(config);
  } catch (e) {
    const err = asDeploylabError(e);
    // A kubeconfig or context the config names wrongly is bad input (exit 3), as any config error.
    if (err.fault === 'config') throw err;
    return {
      id: 'backend',
      driver: 'k8s',
      title: BACKEND_TITLE,
      status: 'error',
      code: err.code,
      message: { zh: `k8s：${err.zh}`, en: `k8s: ${err.message}` },
      ...(err.hint ? { hint: err.hint } : {}),
      details: { driver: 'k8s' },
    };
  }
  const details = { driver: 'k8s', server: p.server, context: p.context };
  if (!p.reachable) {
    return { id: 'backend', driver: 'k8s', title: BACKEND_TITLE, status: 'error', code: p.error.code, message: p.error.message, ...(p.error.hint ? { hint: p.error.hint } : {}), details };
  }
  if (!p.canListNamespaces) {
    const e = clusterForbidden(p);
    return { id: 'backend', driver: 'k8s', title: BACKEND_TITLE, status: 'fail', code: e.code, message: { zh: e.zh, en: e.message }, ...(e.hint ? { hint: e.hint } : {}), details: { ...details, version: p.version } };
  }
  return {
    id: 'backend',
    driver: 'k8s',
    title: BACKEND_TITLE,
    status: 'ok',
    message: {
      zh: `k8s：集群 ${p.server}（上下文 ${p.context}）应答，Kubernetes ${p.version}`,
      en: `k8s: the cluster at ${p.server} (context ${p.context}) answers, Kubernetes ${p.version}`,
    },
    details: { ...details, version: p.version },
  };
}

/** Gather the inventory and the backend, judge them against the config's thresholds, count the outcome. */
export async function checkHost(config: Config, opts: CheckHostOptions = {}): Promise<CheckedHost> {
  const inspectImages = opts.inspectImages ?? (await imageOps()).inspectImages;
  const [inv, backend] = await Promise.all([
    gatherInventory(config, { inspectImages, ...(opts.env ? { env: opts.env } : {}) }),
    backendItem(config, opts.probeCluster),
  ]);
  const host = evaluateHost(inv, config.host);
  const overall = overallOf([backend.status, ...host.items.map((i) => i.status)]);
  const gpuTasks = gpuTaskFits(inv.gpu, opts.tasks ?? treeTasks());
  const report: CheckedHost = { ...host, overall, ready: overall === 'ready', exitCode: EXIT_OF[overall], backend, ...(gpuTasks.length > 0 ? { gpuTasks } : {}) };
  for (const i of [backend, ...report.items]) metrics.hostChecks.inc({ item: i.id, status: i.status });
  return report;
}

const STATUS: Record<ItemStatus, { zh: string; en: string }> = {
  ok: { zh: '正常', en: 'ok' },
  warn: { zh: '注意', en: 'warn' },
  fail: { zh: '不满足', en: 'FAIL' },
  error: { zh: '无法检查', en: 'ERROR' },
};

const OVERALL: Record<Overall, { zh: string; en: string }> = {
  ready: { zh: '主机就绪', en: 'host ready' },
  'not-ready': { zh: '主机未就绪', en: 'host NOT ready' },
  'could-not-check': { zh: '无法完成检查', en: 'could not check the host' },
};

/** The report for people: one row per item, hints under the table. Chinese first, English beside. */
export function renderReport(r: HostReport & { backend?: BackendItem }, lang: Lang): string {
  const pick = (b: { zh: string; en: string }): string => (lang === 'zh' ? b.zh : b.en);
  const headers = lang === 'zh' ? ['项目', '状态', '说明'] : ['item', 'status', 'detail'];
  const all: Array<Omit<CheckItem, 'id'>> = [...(r.backend ? [r.backend] : []), ...r.items];
  const rows = all.flatMap((i) => {
    const code = i.code && i.status !== 'ok' ? ` [${i.code}]` : '';
    const row = [
      lang === 'zh' && i.title.zh !== i.title.en ? `${i.title.zh} ${i.title.en}` : pick(i.title),
      lang === 'zh' ? `${STATUS[i.status].zh} ${STATUS[i.status].en}` : STATUS[i.status].en,
      pick(i.message) + code,
    ];
    // Chinese readers get the English beside it: on a line of its own, under the Chinese.
    return lang === 'zh' && i.message.zh !== i.message.en ? [row, ['', '', i.message.en]] : [row];
  });
  const hints = all
    .filter((i) => i.hint && i.status !== 'ok')
    .map((i) => `  → ${lang === 'zh' ? i.title.zh : i.title.en}: ${lang === 'zh' ? `${i.hint!.zh} (${i.hint!.en})` : i.hint!.en}`);
  const head = lang === 'zh' ? `${OVERALL[r.overall].zh} (${OVERALL[r.overall].en})` : OVERALL[r.overall].en;
  return [table(headers, rows), '', head, ...hints, ...gpuTaskLines(r.gpuTasks ?? [], lang)].join('\n');
}

const FIT: Record<GpuTaskFit['fit']['verdict'], { zh: string; en: string }> = {
  fits: { zh: '可运行', en: 'can run' },
  missing: { zh: '不能运行', en: 'cannot run' },
  'could-not-check': { zh: '无法检查', en: 'could not check' },
};

/** Which GPU tasks of the tree this host can run, and what the others lack. */
export function gpuTaskLines(fits: readonly GpuTaskFit[], lang: Lang): string[] {
  if (fits.length === 0) return [];
  const pick = (b: { zh: string; en: string }): string => (lang === 'zh' ? `${b.zh} (${b.en})` : b.en);
  return [
    '',
    lang === 'zh' ? 'GPU 考题 (GPU tasks):' : 'GPU tasks:',
    ...fits.map((f) => {
      const need = `${f.gpus} × ${f.gpu.partition}${f.gpu.minMemoryMiB > 0 ? ` ≥ ${f.gpu.minMemoryMiB} MiB` : ''}`;
      const why = f.fit.verdict === 'fits' ? '' : `: ${f.fit.missing.map(pick).join('; ')}`;
      return `  ${f.taskId} [${need}]: ${pick(FIT[f.fit.verdict])}${why}`;
    }),
  ];
}
