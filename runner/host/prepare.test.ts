import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../core/config.js';
import { DeploylabError } from '../core/errors.js';
import type { ImageState } from '../images/types.js';
import { engineTarget } from './engine.js';
import { effectiveConfig, missingTestPackages, planPrepare, readKernelLimits, SEAT_KERNEL_LIMITS, type PrepareFacts } from './prepare.js';
import type { EngineTarget, HostFacts } from './types.js';

const SOCKET: EngineTarget = { url: 'unix:///var/run/docker.sock', source: 'default', kind: 'unix', socketPath: '/var/run/docker.sock', tls: false, local: true };
const down = (target: EngineTarget = SOCKET): PrepareFacts['engine'] => ({
  reachable: false,
  target,
  error: { code: 'ENGINE_UNREACHABLE', message: { zh: `无法连接 ${target.url}`, en: `cannot reach the container engine at ${target.url}` } },
});
const up: PrepareFacts['engine'] = {
  reachable: true,
  target: SOCKET,
  version: '20.10.24',
  apiVersion: '1.41',
  os: 'Debian',
  storageDriver: 'overlay2',
  cgroupVersion: '1',
  cgroupDriver: 'cgroupfs',
  rootDir: '/var/lib/docker',
  ncpu: 2,
  memTotalBytes: 1,
  limits: { memory: true, swap: true, cpuQuota: true, pids: true },
  runtimes: ['runc'],
};
const freshDebian: HostFacts = {
  cpus: 2,
  memTotalBytes: 1,
  cgroupFs: '1',
  os: { id: 'debian', idLike: [], versionId: '12', pretty: 'Debian GNU/Linux 12 (bookworm)' },
  isRoot: true,
  hasSystemd: false,
  dockerdPath: null,
  debootstrapPath: null,
  dockerdPid: null,
  nvidiaContainerToolkit: null,
};
const img = (name: ImageState['name'], current: boolean): ImageState => ({ name, ref: `deploylab/${name}:h`, current, present: current, inputsHash: 'h' });
const allCurrent = ['base', 'llama-build', 'workspace-cpu', 'toolbox', 'dind', 'app-base'].map((n) => img(n as ImageState['name'], true)).concat(img('workspace-gpu', false));
const facts = (over: Partial<Omit<PrepareFacts, 'host'>> & { host?: Partial<HostFacts> } = {}): PrepareFacts => ({
  engine: over.engine ?? up,
  host: { ...freshDebian, dockerdPath: '/usr/sbin/dockerd', debootstrapPath: '/usr/sbin/debootstrap', dockerdPid: 1, ...over.host },
  gpu: over.gpu ?? { state: 'absent' },
  images: over.images === undefined ? allCurrent : over.images,
});
const OFFLINE = { offline: true, images: true };

function thrown(f: () => unknown): DeploylabError {
  try {
    f();
  } catch (e) {
    if (e instanceof DeploylabError) return e;
    throw e;
  }
  throw new Error('expected a DeploylabError');
}

describe('planPrepare', () => {
  it('a ready host: nothing to do', () => {
    expect(planPrepare(facts(), OFFLINE)).toEqual([]);
  });

  it('a fresh Debian host as root, no systemd: install docker.io and debootstrap, start dockerd, build the CPU images', () => {
    const steps = planPrepare({ engine: down(), host: freshDebian, gpu: { state: 'absent' }, images: null }, OFFLINE);
    expect(steps).toEqual([
      { kind: 'install-packages', packages: ['docker.io', 'debootstrap'] },
      { kind: 'start-engine', via: 'dockerd', socketPath: '/var/run/docker.sock' },
      { kind: 'build-images', names: ['base', 'workspace-cpu', 'toolbox', 'dind', 'app-base'], offline: true },
    ]);
  });

  it('online builds do not need debootstrap; --no-images needs neither it nor builds', () => {
    const f = { engine: down(), host: freshDebian, gpu: { state: 'absent' as const }, images: null };
    expect(planPrepare(f, { offline: false, images: true })[0]).toEqual({ kind: 'install-packages', packages: ['docker.io'] });
    expect(planPrepare(f, { offline: true, images: false })).toEqual([
      { kind: 'install-packages', packages: ['docker.io'] },
      { kind: 'start-engine', via: 'dockerd', socketPath: '/var/run/docker.sock' },
    ]);
  });

  it('installed but stopped: start it, through systemd where there is one', () => {
    expect(planPrepare(facts({ engine: down(), host: { dockerdPid: null } }), OFFLINE)).toEqual([
      { kind: 'start-engine', via: 'dockerd', socketPath: '/var/run/docker.sock' },
    ]);
    expect(planPrepare(facts({ engine: down(), host: { dockerdPid: null, hasSystemd: true } }), OFFLINE)[0]).toMatchObject({ via: 'systemd' });
  });

  it('a dockerd already running but not answering yet: wait for it, do not start a second one', () => {
    expect(planPrepare(facts({ engine: down(), host: { dockerdPid: 4242 } }), OFFLINE)).toEqual([{ kind: 'wait-engine', pid: 4242 }]);
  });

  it('builds only what is not current; GPUs add workspace-gpu', () => {
    const images = allCurrent.map((i) => (i.name === 'toolbox' ? { ...i, current: false } : i));
    expect(planPrepare(facts({ images }), OFFLINE)).toEqual([{ kind: 'build-images', names: ['toolbox'], offline: true }]);
    const gpu = { state: 'present' as const, nvidiaSmi: '/usr/bin/nvidia-smi', gpus: [{} as never], apps: [], list: [] };
    expect(planPrepare(facts({ gpu }), { offline: false, images: true })).toEqual([
      { kind: 'build-images', names: ['workspace-gpu'], offline: false },
    ]);
  });

  it('offline build on a host without debootstrap installs it (the engine being fine)', () => {
    const images = allCurrent.map((i) => ({ ...i, current: false }));
    expect(planPrepare(facts({ images, host: { debootstrapPath: null } }), OFFLINE)[0]).toEqual({
      kind: 'install-packages',
      packages: ['debootstrap'],
    });
  });

  it('no engine and not root: ENGINE_MISSING_NOT_ROOT with the exact commands', () => {
    const e = thrown(() => planPrepare({ engine: down(), host: { ...freshDebian, isRoot: false }, gpu: { state: 'absent' }, images: null }, OFFLINE));
    expect(e.code).toBe('ENGINE_MISSING_NOT_ROOT');
    expect(e.fault).toBe('infrastructure');
    expect(e.hint!.en).toContain('sudo npx deploylab host prepare');
    expect(e.hint!.en).toContain('apt-get install -y docker.io debootstrap');
  });

  it('no engine and not Debian: ENGINE_MISSING_NOT_DEBIAN naming the OS', () => {
    const host = { ...freshDebian, os: { id: 'rocky', idLike: ['rhel', 'centos', 'fedora'], versionId: '9', pretty: 'Rocky Linux 9.3' } };
    const e = thrown(() => planPrepare({ engine: down(), host, gpu: { state: 'absent' }, images: null }, OFFLINE));
    expect(e.code).toBe('ENGINE_MISSING_NOT_DEBIAN');
    expect(e.message).toContain('Rocky Linux 9.3');
    // Ubuntu counts as Debian-based
    const ubuntu = { ...freshDebian, os: { id: 'ubuntu', idLike: ['debian'], versionId: '22.04', pretty: 'Ubuntu 22.04' } };
    expect(planPrepare({ engine: down(), host: ubuntu, gpu: { state: 'absent' }, images: null }, OFFLINE)[0]!.kind).toBe('install-packages');
  });

  it('installed, stopped, not root: ENGINE_NOT_RUNNING_NOT_ROOT', () => {
    expect(thrown(() => planPrepare(facts({ engine: down(), host: { dockerdPid: null, isRoot: false } }), OFFLINE)).code).toBe(
      'ENGINE_NOT_RUNNING_NOT_ROOT',
    );
  });

  it('an unreachable tcp:// engine is never started here: ENGINE_UNREACHABLE naming the host', () => {
    const target = engineTarget(ConfigSchema.parse({}), { DOCKER_HOST: 'tcp://10.9.8.7:2375' });
    const e = thrown(() => planPrepare(facts({ engine: down(target) }), OFFLINE));
    expect(e.code).toBe('ENGINE_UNREACHABLE');
    expect(e.message).toContain('tcp://10.9.8.7:2375');
  });
});

describe('engineTarget', () => {
  const cfg = (host = '') => ConfigSchema.parse({ docker: { host } });
  it('config docker.host wins over DOCKER_HOST, which wins over the default socket', () => {
    expect(engineTarget(cfg(), {})).toMatchObject({ url: 'unix:///var/run/docker.sock', source: 'default', local: true });
    expect(engineTarget(cfg(), { DOCKER_HOST: 'tcp://127.0.0.1:1' })).toMatchObject({ url: 'tcp://127.0.0.1:1', source: 'DOCKER_HOST', kind: 'tcp', port: 1, local: true });
    expect(engineTarget(cfg('unix:///run/other.sock'), { DOCKER_HOST: 'tcp://127.0.0.1:1' })).toMatchObject({ socketPath: '/run/other.sock', source: 'config' });
    expect(engineTarget(cfg('tcp://10.0.0.5'), {})).toMatchObject({ host: '10.0.0.5', port: 2375, local: false });
    expect(engineTarget(cfg(), { DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1' })).toMatchObject({ tls: true, port: 2376 });
  });
  it('rejects what is not an engine address, as a config error', () => {
    const e = thrown(() => engineTarget(cfg('ssh://user@box'), {}));
    expect(e).toMatchObject({ code: 'ENGINE_HOST_INVALID', fault: 'config' });
    expect(e.message).toContain('config docker.host');
  });
});

describe('effectiveConfig', () => {
  it('--offline switches the image recipe to the offline base, leaving the rest', () => {
    const c = ConfigSchema.parse({});
    expect(effectiveConfig(c, { offline: true }).images.offline).toBe(true);
    expect(effectiveConfig(c, { offline: false })).toBe(c);
  });
});

describe('prepare --test-tools', () => {
  it('installs only the missing test-tool packages, and nothing without the flag', () => {
    const f = { ...facts(), testToolsMissing: ['chromium', 'fonts-noto-cjk'] };
    expect(planPrepare(f, { ...OFFLINE, testTools: true })).toEqual([{ kind: 'install-packages', packages: ['chromium', 'fonts-noto-cjk'] }]);
    expect(planPrepare(f, OFFLINE)).toEqual([]);
    expect(planPrepare({ ...facts(), testToolsMissing: [] }, { ...OFFLINE, testTools: true })).toEqual([]);
  });

  it('refuses without root, naming the packages', () => {
    const f = { ...facts({ host: { isRoot: false } }), testToolsMissing: ['prometheus'] };
    const e = thrown(() => planPrepare(f, { ...OFFLINE, testTools: true }));
    expect(e.code).toBe('TEST_TOOLS_MISSING_NOT_ROOT');
    expect(e.message).toContain('prometheus');
  });

  it('detects missing packages by their files', () => {
    expect(missingTestPackages(() => true)).toEqual([]);
    expect(missingTestPackages((p) => p !== '/usr/bin/chromium')).toEqual(['chromium']);
  });
});

describe('prepare: per-uid kernel limits every seat shares', () => {
  const inotify = 'fs/inotify/max_user_instances';
  it('raises the limits below what a room needs, as root, and never lowers one', () => {
    const f = { ...facts(), kernelLimits: { [inotify]: 128, 'fs/inotify/max_user_watches': 10_000_000 } };
    expect(planPrepare(f, OFFLINE)).toEqual([{ kind: 'raise-kernel-limits', set: { [inotify]: SEAT_KERNEL_LIMITS[inotify] } }]);
    const enough = Object.fromEntries(Object.entries(SEAT_KERNEL_LIMITS).map(([k, v]) => [k, v]));
    expect(planPrepare({ ...facts(), kernelLimits: enough }, OFFLINE)).toEqual([]);
  });

  it('without root or without a reading, leaves them as they are', () => {
    expect(planPrepare({ ...facts({ host: { isRoot: false } }), kernelLimits: { [inotify]: 128 } }, OFFLINE)).toEqual([]);
    expect(planPrepare({ ...facts(), kernelLimits: { [inotify]: null } }, OFFLINE)).toEqual([]);
  });

  it('reads them from /proc/sys, null where a file cannot be read', () => {
    expect(readKernelLimits((p) => (p.endsWith('max_user_instances') ? '128\n' : (() => { throw new Error('ENOENT'); })()))).toEqual({
      [inotify]: 128,
      'fs/inotify/max_user_watches': null,
    });
  });
});
