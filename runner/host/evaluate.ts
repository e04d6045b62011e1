import { EXIT } from '../core/output.js';
import type { ImageName } from '../images/types.js';
import type { CheckItem, HostInventory, HostReport, ItemStatus, Overall, Thresholds } from './types.js';

const GiB = 1024 ** 3;
export const gib = (bytes: number): number => Math.round((bytes / GiB) * 10) / 10;

/**
 * Images every exam host needs (dind and app-base for docker-in-seat tasks); workspace-gpu only
 * where there are GPUs to run it on.
 */
export function requiredImages(inv: Pick<HostInventory, 'gpu'>): ImageName[] {
  const names: ImageName[] = ['base', 'workspace-cpu', 'toolbox', 'dind', 'app-base'];
  if (inv.gpu.state === 'present' && inv.gpu.gpus.length > 0) names.push('workspace-gpu');
  return names;
}

function engineItem(inv: HostInventory): CheckItem {
  const title = { zh: '容器引擎', en: 'container engine' };
  const e = inv.engine;
  if (e.reachable) {
    return {
      id: 'engine',
      title,
      status: 'ok',
      message: {
        zh: `Docker ${e.version}（API ${e.apiVersion}），${e.target.url}`,
        en: `Docker ${e.version} (API ${e.apiVersion}) at ${e.target.url}`,
      },
      details: { target: e.target, version: e.version, apiVersion: e.apiVersion, os: e.os },
    };
  }
  // Nothing installed on the local socket's host: a plain "no", which prepare can fix.
  const missing = e.target.kind === 'unix' && !inv.host.dockerdPath && inv.host.dockerdPid === null;
  if (missing) {
    return {
      id: 'engine',
      title,
      status: 'fail',
      code: 'ENGINE_MISSING',
      message: { zh: '本机未安装 Docker 引擎（找不到 dockerd）', en: 'no Docker engine installed on this host (no dockerd found)' },
      hint: { zh: '以 root 运行 deploylab host prepare 安装并启动它', en: 'run deploylab host prepare as root to install and start it' },
      details: { target: e.target },
    };
  }
  return {
    id: 'engine',
    title,
    status: 'error',
    code: e.error.code,
    message: e.error.message,
    ...(e.error.hint ? { hint: e.error.hint } : {}),
    details: { target: e.target, dockerdPid: inv.host.dockerdPid },
  };
}

function couldNot(id: CheckItem['id'], title: CheckItem['title'], why: CheckItem['message'], code = 'ENGINE_UNREACHABLE'): CheckItem {
  return { id, title, status: 'error', code, message: why, details: {} };
}

const NO_ENGINE = { zh: '容器引擎不可达，无法检查', en: 'cannot check: the container engine is unreachable' };

function storageItem(inv: HostInventory): CheckItem {
  const title = { zh: '存储驱动', en: 'storage driver' };
  const e = inv.engine;
  if (!e.reachable) return couldNot('storage-driver', title, NO_ENGINE);
  if (e.storageDriver === 'vfs') {
    return {
      id: 'storage-driver',
      title,
      status: 'warn',
      message: {
        zh: 'vfs：每个容器完整复制镜像，慢且占盘',
        en: 'vfs: every container copies its whole image, slow and disk-hungry',
      },
      hint: { zh: '生产考点建议用 overlay2', en: 'use overlay2 on an exam host' },
      details: { driver: e.storageDriver },
    };
  }
  return { id: 'storage-driver', title, status: 'ok', message: { zh: e.storageDriver, en: e.storageDriver }, details: { driver: e.storageDriver } };
}

function cgroupItem(inv: HostInventory): CheckItem {
  const title = { zh: 'cgroup 与资源限制', en: 'cgroups and limits' };
  const e = inv.engine;
  const fromEngine = e.reachable ? e.cgroupVersion : null;
  const version = fromEngine ?? inv.host.cgroupFs;
  const source = fromEngine ? 'engine' : '/sys/fs/cgroup';
  const limits = e.reachable ? e.limits : null;
  const details = { version, source, driver: e.reachable ? e.cgroupDriver : null, limits };
  if (!version) {
    return {
      id: 'cgroup',
      title,
      status: 'warn',
      message: { zh: '无法确定 cgroup 版本：资源限制可能不生效', en: 'cgroup version unknown: resource limits may not apply' },
      details,
    };
  }
  const head = { zh: `v${version}（来自 ${source}）`, en: `v${version} (from ${source})` };
  // Seats rely on hard memory, CPU and pids limits; the engine says which the kernel supports.
  const missing = limits
    ? (['memory', 'cpuQuota', 'pids'] as const).filter((k) => limits[k] === false)
    : [];
  if (missing.length > 0) {
    return {
      id: 'cgroup',
      title,
      status: 'fail',
      code: 'LIMITS_UNSUPPORTED',
      message: {
        zh: `${head.zh}；引擎无法施加这些限制：${missing.join(', ')}（考位将没有硬性限制）`,
        en: `${head.en}; the engine cannot enforce: ${missing.join(', ')} (seats would run without hard limits)`,
      },
      hint: {
        zh: '在内核启动参数中启用对应的 cgroup 控制器（如 cgroup_enable=memory），重启',
        en: 'enable those cgroup controllers on the kernel command line (e.g. cgroup_enable=memory) and reboot',
      },
      details,
    };
  }
  if (limits?.swap === false) {
    return {
      id: 'cgroup',
      title,
      status: 'warn',
      message: { zh: `${head.zh}；不能限制 swap`, en: `${head.en}; swap cannot be limited` },
      hint: { zh: '内核参数加 swapaccount=1，或关闭 swap', en: 'add swapaccount=1 to the kernel command line, or turn swap off' },
      details,
    };
  }
  return { id: 'cgroup', title, status: 'ok', message: head, details };
}

function cpuItem(inv: HostInventory): CheckItem {
  const title = { zh: 'CPU', en: 'CPU' };
  const cpus = inv.engine.reachable ? inv.engine.ncpu : inv.host.cpus;
  if (cpus < 2) {
    return {
      id: 'cpu',
      title,
      status: 'warn',
      message: { zh: `仅 ${cpus} 个 CPU：延迟类检查会互相干扰`, en: `only ${cpus} CPU: latency checks will disturb each other` },
      details: { cpus },
    };
  }
  return { id: 'cpu', title, status: 'ok', message: { zh: `${cpus} 个`, en: `${cpus}` }, details: { cpus } };
}

function memoryItem(inv: HostInventory, t: Thresholds): CheckItem {
  const title = { zh: '内存', en: 'memory' };
  const bytes = inv.engine.reachable ? inv.engine.memTotalBytes : inv.host.memTotalBytes;
  const have = gib(bytes);
  const details = { totalGiB: have, requiredGiB: t.minMemoryGiB };
  if (bytes < t.minMemoryGiB * GiB) {
    return {
      id: 'memory',
      title,
      status: 'fail',
      code: 'MEMORY_LOW',
      message: { zh: `内存 ${have} GiB，少于要求的 ${t.minMemoryGiB} GiB`, en: `${have} GiB of memory, less than the required ${t.minMemoryGiB} GiB` },
      hint: { zh: '换一台内存更大的主机，或调低配置 host.minMemoryGiB', en: 'use a host with more memory, or lower config host.minMemoryGiB' },
      details,
    };
  }
  return { id: 'memory', title, status: 'ok', message: { zh: `${have} GiB`, en: `${have} GiB` }, details };
}

function diskItem(inv: HostInventory, t: Thresholds, purpose: 'data' | 'engine-root'): CheckItem {
  const id = purpose === 'data' ? 'disk-data' : 'disk-engine';
  const title = purpose === 'data' ? { zh: '数据目录磁盘', en: 'data dir disk' } : { zh: '引擎目录磁盘', en: 'engine root disk' };
  const d = inv.disks.find((x) => x.purpose === purpose);
  if (!d) return couldNot(id, title, { zh: '没有测量', en: 'not measured' }, 'DISK_UNMEASURABLE');
  if (d.error) return { id, title, status: 'error', code: d.error.code, message: d.error.message, details: { path: d.path } };
  if (d.remote) {
    return {
      id,
      title,
      status: 'warn',
      message: {
        zh: `引擎在远程主机，${d.path} 不在本机，无法测量`,
        en: `the engine is remote: ${d.path} is not on this host and cannot be measured`,
      },
      details: { path: d.path, remote: true },
    };
  }
  const free = gib(d.freeBytes ?? 0);
  const details = { path: d.path, measuredPath: d.measuredPath, freeGiB: free, totalGiB: gib(d.totalBytes ?? 0), requiredGiB: t.minFreeDiskGiB };
  if ((d.freeBytes ?? 0) < t.minFreeDiskGiB * GiB) {
    return {
      id,
      title,
      status: 'fail',
      code: 'DISK_LOW',
      message: {
        zh: `${d.path} 可用 ${free} GiB，少于要求的 ${t.minFreeDiskGiB} GiB`,
        en: `${d.path} has ${free} GiB free, less than the required ${t.minFreeDiskGiB} GiB`,
      },
      hint: {
        zh: '清理该分区（或把数据目录/引擎目录移到更大的分区），或调低配置 host.minFreeDiskGiB',
        en: 'free space on that filesystem (or move the data/engine dir to a larger one), or lower config host.minFreeDiskGiB',
      },
      details,
    };
  }
  return { id, title, status: 'ok', message: { zh: `${d.path}：可用 ${free} GiB`, en: `${d.path}: ${free} GiB free` }, details };
}

function gpuItem(inv: HostInventory): CheckItem {
  const title = { zh: 'GPU', en: 'GPU' };
  const g = inv.gpu;
  if (g.state === 'absent') {
    return {
      id: 'gpu',
      title,
      status: 'ok',
      message: { zh: '无 GPU（未找到 nvidia-smi）：CPU 考点', en: 'no GPU (no nvidia-smi): a CPU centre' },
      details: { gpus: [] },
    };
  }
  if (g.state === 'error') {
    return { id: 'gpu', title, status: 'error', code: g.error.code, message: g.error.message, ...(g.error.hint ? { hint: g.error.hint } : {}), details: { nvidiaSmi: g.nvidiaSmi } };
  }
  const runtimes = inv.engine.reachable ? inv.engine.runtimes : [];
  const details = {
    gpus: g.gpus,
    processes: g.apps,
    migDevices: g.list.flatMap((x) => x.migDevices.map((m) => ({ gpu: x.uuid, ...m }))),
    containerToolkit: inv.host.nvidiaContainerToolkit,
    runtimes,
  };
  const summary = g.gpus
    .map((x) => `${x.index ?? '?'}: ${x.name ?? '?'} ${x.memoryTotalMiB ?? '?'} MiB${x.migModeCurrent === 'Enabled' ? ' MIG' : ''}`)
    .join('; ');
  const driver = g.gpus[0]?.driverVersion ?? '?';
  // Each finding warns: a GPU host with them can still run CPU tasks, but GPU tasks would suffer.
  const found: { code: string; zh: string; en: string; hint: { zh: string; en: string } }[] = [];
  const migPending = g.gpus.filter((x) => x.migModePending !== null && x.migModePending !== x.migModeCurrent);
  if (migPending.length > 0) {
    const ids = migPending.map((x) => x.index).join(',');
    found.push({
      code: 'MIG_PENDING',
      zh: `GPU ${ids} 的 MIG 模式待生效（当前 ${migPending[0]!.migModeCurrent}，待定 ${migPending[0]!.migModePending}）`,
      en: `MIG mode change pending on GPU ${ids} (current ${migPending[0]!.migModeCurrent}, pending ${migPending[0]!.migModePending})`,
      hint: { zh: '重置该 GPU 或重启主机后再考试', en: 'reset that GPU or reboot the host before the exam' },
    });
  }
  if (!inv.host.nvidiaContainerToolkit && !runtimes.includes('nvidia')) {
    found.push({
      code: 'GPU_RUNTIME_MISSING',
      zh: '未找到 NVIDIA Container Toolkit：容器用不到 GPU',
      en: 'no NVIDIA Container Toolkit: containers cannot use the GPUs',
      hint: { zh: '安装 nvidia-container-toolkit 并执行 nvidia-ctk runtime configure --runtime=docker，重启 dockerd', en: 'install nvidia-container-toolkit, run nvidia-ctk runtime configure --runtime=docker, restart dockerd' },
    });
  }
  if (g.apps.length > 0) {
    const procs = g.apps.map((a) => `${a.pid} ${a.processName ?? '?'} ${a.usedMemoryMiB ?? '?'} MiB`).join('; ');
    found.push({
      code: 'GPU_BUSY',
      zh: `已有进程占用 GPU：${procs}`,
      en: `processes already use the GPU: ${procs}`,
      hint: { zh: '考前结束这些进程，否则考生可用显存变少', en: 'stop them before the exam, or candidates get less GPU memory' },
    });
  }
  const head = { zh: `${summary}，驱动 ${driver}`, en: `${summary}, driver ${driver}` };
  if (found.length === 0) return { id: 'gpu', title, status: 'ok', message: head, details };
  return {
    id: 'gpu',
    title,
    status: 'warn',
    code: found[0]!.code,
    message: { zh: [head.zh, ...found.map((f) => f.zh)].join('；'), en: [head.en, ...found.map((f) => f.en)].join('; ') },
    hint: { zh: found.map((f) => f.hint.zh).join('；'), en: found.map((f) => f.hint.en).join('; ') },
    details: { ...details, findings: found.map((f) => f.code) },
  };
}

function imagesItem(inv: HostInventory): CheckItem {
  const title = { zh: '沙箱镜像', en: 'sandbox images' };
  const im = inv.images;
  if (im.state === 'error') {
    return { id: 'images', title, status: 'error', code: im.error.code, message: im.error.message, ...(im.error.hint ? { hint: im.error.hint } : {}), details: {} };
  }
  const required = requiredImages(inv);
  const missing = im.images.filter((i) => required.includes(i.name) && !i.present).map((i) => i.name);
  const stale = im.images.filter((i) => required.includes(i.name) && i.present && !i.current).map((i) => i.name);
  const unknown = required.filter((n) => !im.images.some((i) => i.name === n));
  const details = { required, images: im.images, missing: [...missing, ...unknown], outdated: stale };
  if (missing.length + stale.length + unknown.length > 0) {
    const parts = { zh: [] as string[], en: [] as string[] };
    if (missing.length + unknown.length) {
      parts.zh.push(`缺少 ${[...missing, ...unknown].join(', ')}`);
      parts.en.push(`missing ${[...missing, ...unknown].join(', ')}`);
    }
    if (stale.length) {
      parts.zh.push(`过期（输入已变）${stale.join(', ')}`);
      parts.en.push(`outdated (inputs changed) ${stale.join(', ')}`);
    }
    const other = im.otherRecipe;
    if (other && required.every((n) => other.images.some((i) => i.name === n && i.current))) {
      // Everything is current under the other base recipe (e.g. `prepare --offline` with a config
      // that says registry). The runner accepts either recipe, so the host is ready; say which.
      const refs = other.images.filter((i) => required.includes(i.name)).map((i) => i.ref);
      const how = other.offline ? { zh: '从 Debian 镜像站自举（离线）', en: 'bootstrapped from the Debian mirror (offline)' } : { zh: '基于镜像仓库的基础镜像', en: 'built from the registry base' };
      return {
        id: 'images',
        title,
        status: 'ok',
        code: 'IMAGES_OTHER_RECIPE',
        message: { zh: `均为最新，${how.zh}构建：${refs.join(', ')}`, en: `all current, ${how.en}: ${refs.join(', ')}` },
        details: { ...details, otherRecipe: other },
      };
    }
    return {
      id: 'images',
      title,
      status: 'fail',
      code: 'IMAGES_NOT_READY',
      message: { zh: parts.zh.join('；'), en: parts.en.join('; ') },
      hint: { zh: '运行 deploylab host prepare（无网络时加 --offline）构建它们', en: 'run deploylab host prepare (add --offline without a registry) to build them' },
      details,
    };
  }
  const names = im.images.filter((i) => required.includes(i.name)).map((i) => i.ref);
  return { id: 'images', title, status: 'ok', message: { zh: `均为最新：${names.join(', ')}`, en: `all current: ${names.join(', ')}` }, details };
}

/** Worst wins: any fail → not ready; otherwise any item not checked → could not check. */
export function overallOf(statuses: ItemStatus[]): Overall {
  if (statuses.includes('fail')) return 'not-ready';
  if (statuses.includes('error')) return 'could-not-check';
  return 'ready';
}

export const EXIT_OF: Record<Overall, number> = { ready: EXIT.ok, 'not-ready': EXIT.notReady, 'could-not-check': EXIT.couldNotRun };

/** Pure: an inventory and thresholds in, the judged report out. */
export function evaluateHost(inv: HostInventory, t: Thresholds): HostReport {
  const items = [
    engineItem(inv),
    storageItem(inv),
    cgroupItem(inv),
    cpuItem(inv),
    memoryItem(inv, t),
    diskItem(inv, t, 'data'),
    diskItem(inv, t, 'engine-root'),
    gpuItem(inv),
    imagesItem(inv),
  ];
  const overall = overallOf(items.map((i) => i.status));
  return { overall, ready: overall === 'ready', exitCode: EXIT_OF[overall], checkedAt: inv.checkedAt, items, inventory: inv };
}
