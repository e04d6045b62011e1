import { describe, expect, it } from 'vitest';
import { section } from '../../graders/parsers/nvidia-smi-capture.js';
import { parseComputeApps, parseList, parseQueryGpu } from '../../graders/parsers/nvidia-smi.js';
import type { ImageState } from '../images/types.js';
import { evaluateHost, overallOf, requiredImages } from './evaluate.js';
import type { EngineTarget, GpuFacts, HostInventory, ItemId } from './types.js';

const GiB = 1024 ** 3;
const SOCKET: EngineTarget = { url: 'unix:///var/run/docker.sock', source: 'default', kind: 'unix', socketPath: '/var/run/docker.sock', tls: false, local: true };
const T = { minFreeDiskGiB: 20, minMemoryGiB: 4 };

const img = (name: ImageState['name'], current = true, present = current): ImageState => ({
  name,
  ref: `deploylab/${name}:abc`,
  current,
  present,
  inputsHash: 'abc',
});

/** A ready CPU host, as seen on the development machine; tests change one thing at a time. */
function inventory(change: (inv: HostInventory) => void = () => {}): HostInventory {
  const inv: HostInventory = {
    checkedAt: '2026-01-01T00:00:00.000Z',
    dataDir: '/srv/deploylab/data',
    engine: {
      reachable: true,
      target: SOCKET,
      version: '20.10.24+dfsg1',
      apiVersion: '1.41',
      os: 'Debian GNU/Linux 12 (bookworm)',
      storageDriver: 'overlay2',
      cgroupVersion: '1',
      cgroupDriver: 'cgroupfs',
      rootDir: '/var/lib/docker',
      ncpu: 2,
      memTotalBytes: 24 * GiB,
      limits: { memory: true, swap: true, cpuQuota: true, pids: true },
      runtimes: ['io.containerd.runc.v2', 'runc'],
    },
    host: {
      cpus: 2,
      memTotalBytes: 24 * GiB,
      cgroupFs: '1',
      os: { id: 'debian', idLike: [], versionId: '12', pretty: 'Debian GNU/Linux 12 (bookworm)' },
      isRoot: true,
      hasSystemd: false,
      dockerdPath: '/usr/sbin/dockerd',
      debootstrapPath: '/usr/sbin/debootstrap',
      dockerdPid: 100,
      nvidiaContainerToolkit: null,
    },
    disks: [
      { purpose: 'data', path: '/srv/deploylab/data', measuredPath: '/srv', freeBytes: 77 * GiB, totalBytes: 100 * GiB },
      { purpose: 'engine-root', path: '/var/lib/docker', measuredPath: '/var/lib/docker', freeBytes: 77 * GiB, totalBytes: 100 * GiB },
    ],
    gpu: { state: 'absent' },
    images: { state: 'known', images: ['base', 'llama-build', 'workspace-cpu', 'toolbox', 'dind', 'app-base'].map((n) => img(n as ImageState['name'])).concat(img('workspace-gpu', false)) },
  };
  change(inv);
  return inv;
}

const item = (inv: HostInventory, id: ItemId) => evaluateHost(inv, T).items.find((i) => i.id === id)!;

/** GPU facts from a real capture (H200, under load: three processes). */
function gpuFrom(file: string, phase: 'idle' | 'load', inv?: HostInventory): GpuFacts {
  if (inv) inv.host.nvidiaContainerToolkit = '/usr/bin/nvidia-ctk';
  return {
    state: 'present',
    nvidiaSmi: '/usr/bin/nvidia-smi',
    gpus: parseQueryGpu(section(file, 'nvidia-smi --query-gpu=', phase)),
    apps: parseComputeApps(section(file, 'nvidia-smi --query-compute-apps=', phase)),
    list: parseList(section(file, 'nvidia-smi -L')),
  };
}
const H200 = 'linux-x86_64__nvidia-h200__590.48.01.txt';
const H200_MIG = 'linux-x86_64__nvidia-h200-mig__590.48.01.txt';

describe('evaluateHost', () => {
  it('a ready CPU host: every item ok, exit 0; workspace-gpu is not required without GPUs', () => {
    const r = evaluateHost(inventory(), T);
    expect(r.items.map((i) => [i.id, i.status])).toEqual([
      ['engine', 'ok'],
      ['storage-driver', 'ok'],
      ['cgroup', 'ok'],
      ['cpu', 'ok'],
      ['memory', 'ok'],
      ['disk-data', 'ok'],
      ['disk-engine', 'ok'],
      ['gpu', 'ok'],
      ['images', 'ok'],
    ]);
    expect(r).toMatchObject({ overall: 'ready', ready: true, exitCode: 0 });
    expect(item(inventory(), 'engine').message.en).toBe('Docker 20.10.24+dfsg1 (API 1.41) at unix:///var/run/docker.sock');
  });

  it('disk below the threshold fails, naming the path, the free and the required GiB', () => {
    const inv = inventory((i) => (i.disks[0]!.freeBytes = 12.34 * GiB));
    const d = item(inv, 'disk-data');
    expect(d.status).toBe('fail');
    expect(d.code).toBe('DISK_LOW');
    expect(d.message.en).toBe('/srv/deploylab/data has 12.3 GiB free, less than the required 20 GiB');
    expect(d.message.zh).toContain('/srv/deploylab/data');
    expect(evaluateHost(inv, T)).toMatchObject({ overall: 'not-ready', exitCode: 1 });
    // exactly at the threshold is enough
    expect(item(inventory((i) => (i.disks[1]!.freeBytes = 20 * GiB)), 'disk-engine').status).toBe('ok');
    expect(evaluateHost(inventory(), { ...T, minFreeDiskGiB: 1_000_000 }).items.filter((i) => i.status === 'fail').map((i) => i.id)).toEqual([
      'disk-data',
      'disk-engine',
    ]);
  });

  it('memory below host.minMemoryGiB fails', () => {
    const m = evaluateHost(inventory((i) => i.engine.reachable && (i.engine.memTotalBytes = 3 * GiB)), T).items.find((x) => x.id === 'memory')!;
    expect(m).toMatchObject({ status: 'fail', code: 'MEMORY_LOW' });
    expect(m.message.en).toContain('3 GiB of memory, less than the required 4 GiB');
  });

  it('an unreachable engine: could not check (exit 2), naming the host; cgroup falls back to /sys/fs/cgroup', () => {
    const target: EngineTarget = { url: 'tcp://127.0.0.1:1', source: 'DOCKER_HOST', kind: 'tcp', host: '127.0.0.1', port: 1, tls: false, local: true };
    const inv = inventory((i) => {
      i.engine = { reachable: false, target, error: { code: 'ENGINE_UNREACHABLE', message: { zh: '无法连接 tcp://127.0.0.1:1', en: 'cannot reach tcp://127.0.0.1:1' } } };
      i.disks[1] = { purpose: 'engine-root', path: '', error: { code: 'ENGINE_UNREACHABLE', message: { zh: 'x', en: 'x' } } };
      i.images = { state: 'error', error: { code: 'ENGINE_UNREACHABLE', message: { zh: 'x', en: 'x' } } };
      i.host.cgroupFs = '2';
    });
    const r = evaluateHost(inv, T);
    expect(r).toMatchObject({ overall: 'could-not-check', exitCode: 2 });
    expect(r.items.find((i) => i.id === 'engine')).toMatchObject({ status: 'error', code: 'ENGINE_UNREACHABLE' });
    expect(r.items.find((i) => i.id === 'storage-driver')!.status).toBe('error');
    expect(r.items.find((i) => i.id === 'cgroup')).toMatchObject({ status: 'ok', details: { version: '2', source: '/sys/fs/cgroup' } });
    expect(r.items.find((i) => i.id === 'cpu')!.details.cpus).toBe(2);
  });

  it('no dockerd at all on a local socket is a plain "not ready", fixable by prepare', () => {
    const inv = inventory((i) => {
      i.engine = { reachable: false, target: SOCKET, error: { code: 'ENGINE_UNREACHABLE', message: { zh: 'x', en: 'x' } } };
      i.host.dockerdPath = null;
      i.host.dockerdPid = null;
    });
    expect(item(inv, 'engine')).toMatchObject({ status: 'fail', code: 'ENGINE_MISSING' });
    expect(evaluateHost(inv, T).exitCode).toBe(1);
  });

  it('a remote engine: its root dir cannot be measured here (warn, not fail)', () => {
    const inv = inventory((i) => (i.disks[1] = { purpose: 'engine-root', path: '/var/lib/docker', remote: true }));
    expect(item(inv, 'disk-engine').status).toBe('warn');
    expect(evaluateHost(inv, T).exitCode).toBe(0);
  });

  it('vfs storage driver and a single CPU warn without blocking', () => {
    const inv = inventory((i) => {
      if (i.engine.reachable) {
        i.engine.storageDriver = 'vfs';
        i.engine.ncpu = 1;
      }
    });
    expect(item(inv, 'storage-driver').status).toBe('warn');
    expect(item(inv, 'cpu').status).toBe('warn');
    expect(evaluateHost(inv, T).overall).toBe('ready');
  });

  it('images: missing and outdated fail with their names; stale-only is not ready either', () => {
    const inv = inventory((i) => {
      i.images = { state: 'known', images: [img('base'), img('workspace-cpu', false, true), img('toolbox', false, false), img('dind'), img('app-base'), img('workspace-gpu', false)] };
    });
    const it1 = item(inv, 'images');
    expect(it1).toMatchObject({ status: 'fail', code: 'IMAGES_NOT_READY' });
    expect(it1.message.en).toBe('missing toolbox; outdated (inputs changed) workspace-cpu');
    expect(it1.details).toMatchObject({ missing: ['toolbox'], outdated: ['workspace-cpu'] });
  });

  it('images current only under the other base recipe: ready, and the recipe is named', () => {
    const inv = inventory((i) => {
      const stale = ['base', 'workspace-cpu', 'toolbox', 'dind', 'app-base'].map((n) => img(n as ImageState['name'], false, true));
      const fine = ['base', 'workspace-cpu', 'toolbox', 'dind', 'app-base'].map((n) => img(n as ImageState['name'], true));
      i.images = { state: 'known', images: stale, otherRecipe: { offline: true, images: fine } };
    });
    const m = item(inv, 'images');
    expect(m).toMatchObject({ status: 'ok', code: 'IMAGES_OTHER_RECIPE' });
    expect(m.message.en).toContain('bootstrapped from the Debian mirror (offline)');
    expect(m.message.en).toContain('deploylab/workspace-cpu');
  });

  it('GPU host (real H200 capture, idle): ok with model, memory and driver; workspace-gpu becomes required', () => {
    const inv = inventory((i) => (i.gpu = gpuFrom(H200, 'idle', i)));
    const g = item(inv, 'gpu');
    expect(g.status).toBe('ok');
    expect(g.message.en).toBe('0: NVIDIA H200 143771 MiB, driver 590.48.01');
    expect(requiredImages(inv)).toContain('workspace-gpu');
    expect(item(inv, 'images').message.en).toBe('missing workspace-gpu');
  });

  it('GPU under load (real capture): processes already on the GPU warn, with PIDs and memory', () => {
    const g = item(inventory((i) => (i.gpu = gpuFrom(H200, 'load', i))), 'gpu');
    expect(g).toMatchObject({ status: 'warn', code: 'GPU_BUSY' });
    expect(g.message.en).toContain('10291 /root/tools/memhog 2566 MiB; 10293 /root/tools/memhog 1542 MiB; 10309 ./gpu_burn 28234 MiB');
  });

  it('MIG: devices are reported; a pending mode change warns', () => {
    const inv = inventory((i) => (i.gpu = gpuFrom(H200_MIG, 'idle', i)));
    const g = item(inv, 'gpu');
    expect(g.status).toBe('ok');
    expect(g.message.en).toContain('NVIDIA H200 143771 MiB MIG');
    expect((g.details.migDevices as unknown[]).length).toBe(5);
    const pending = inventory((i) => {
      const gf = gpuFrom(H200_MIG, 'idle', i);
      if (gf.state === 'present') gf.gpus[0]!.migModePending = 'Disabled';
      i.gpu = gf;
    });
    expect(item(pending, 'gpu')).toMatchObject({ status: 'warn', code: 'MIG_PENDING' });
  });

  it('GPUs but no NVIDIA Container Toolkit (binary or engine runtime): warn GPU_RUNTIME_MISSING', () => {
    const g = item(inventory((i) => (i.gpu = gpuFrom(H200, 'idle'))), 'gpu');
    expect(g).toMatchObject({ status: 'warn', code: 'GPU_RUNTIME_MISSING' });
    expect(g.message.en).toBe('0: NVIDIA H200 143771 MiB, driver 590.48.01; no NVIDIA Container Toolkit: containers cannot use the GPUs');
    const viaRuntime = inventory((i) => {
      i.gpu = gpuFrom(H200, 'idle');
      if (i.engine.reachable) i.engine.runtimes.push('nvidia');
    });
    expect(item(viaRuntime, 'gpu').status).toBe('ok');
  });

  it('an engine that cannot enforce memory or pids limits: not ready; no swap limit only warns', () => {
    const noMem = inventory((i) => {
      if (i.engine.reachable) i.engine.limits = { memory: false, swap: false, cpuQuota: true, pids: false };
    });
    const c = item(noMem, 'cgroup');
    expect(c).toMatchObject({ status: 'fail', code: 'LIMITS_UNSUPPORTED' });
    expect(c.message.en).toBe('v1 (from engine); the engine cannot enforce: memory, pids (seats would run without hard limits)');
    const noSwap = inventory((i) => {
      if (i.engine.reachable) i.engine.limits.swap = false;
    });
    expect(item(noSwap, 'cgroup').status).toBe('warn');
  });

  it('a failing nvidia-smi is "could not check", not "no GPU"', () => {
    const inv = inventory((i) => {
      i.gpu = { state: 'error', nvidiaSmi: '/usr/bin/nvidia-smi', error: { code: 'NVIDIA_SMI_FAILED', message: { zh: 'x', en: 'x' } } };
    });
    expect(item(inv, 'gpu').status).toBe('error');
    expect(evaluateHost(inv, T).exitCode).toBe(2);
  });
});

describe('overallOf', () => {
  it('fail beats error beats warn', () => {
    expect(overallOf(['ok', 'warn'])).toBe('ready');
    expect(overallOf(['ok', 'error', 'warn'])).toBe('could-not-check');
    expect(overallOf(['error', 'fail'])).toBe('not-ready');
  });
});
