import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../core/config.js';
import { DeploylabError, type Bilingual } from '../core/errors.js';
import type { BuildImages, ImageBuildResult, ImageName, ImageState, InspectImages } from '../images/types.js';
import { DEFAULT_SOCKET, engineTarget, probeEngine } from './engine.js';
import { requiredImages } from './evaluate.js';
import { gatherGpu, gatherHostFacts } from './inventory.js';
import type { EngineFacts, GpuFacts, HostFacts } from './types.js';

type Env = Record<string, string | undefined>;

export interface PrepareOptions {
  /** Build images without a registry (bootstrap the base from the Debian mirror). */
  offline: boolean;
  /** false with --no-images: only make the engine ready. */
  images: boolean;
  /** --test-tools: also install the host packages the project's own test suite drives. */
  testTools?: boolean;
}

/**
 * Debian packages the test suite runs on the host (real nginx and Prometheus for probe tests,
 * Chromium and CJK fonts for the browser tests), each with a file that shows it is installed.
 * Exam hosts do not need them: the graders run these tools inside the toolbox image.
 */
export const TEST_TOOL_PACKAGES: readonly { package: string; path: string }[] = [
  { package: 'nginx-light', path: '/usr/sbin/nginx' },
  { package: 'prometheus', path: '/usr/bin/prometheus' },
  { package: 'wrk', path: '/usr/bin/wrk' },
  { package: 'chromium', path: '/usr/bin/chromium' },
  { package: 'fonts-noto-cjk', path: '/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc' },
];

export function missingTestPackages(exists: (path: string) => boolean = existsSync): string[] {
  return TEST_TOOL_PACKAGES.filter((t) => !exists(t.path)).map((t) => t.package);
}

export interface PrepareFacts {
  engine: EngineFacts;
  host: HostFacts;
  gpu: GpuFacts;
  /** null while the engine is down: not known yet. */
  images: ImageState[] | null;
  /** Test-tool packages not installed (only looked at with --test-tools). */
  testToolsMissing?: string[];
  /** The per-uid kernel limits of SEAT_KERNEL_LIMITS as this host has them; absent: not read. */
  kernelLimits?: Record<string, number | null>;
}

/**
 * Every seat runs its candidate as uid 1000, and inotify's limits are per uid across the whole
 * host: at the kernel's default of 128 instances, one seat's file watchers (an editor, a dev
 * server) use up every other seat's. Raised to room size; each seat's pids limit still bounds
 * what one seat can hold, and a seat set on exhausting them is not stopped by this.
 */
export const SEAT_KERNEL_LIMITS: Readonly<Record<string, number>> = {
  'fs/inotify/max_user_instances': 8192,
  'fs/inotify/max_user_watches': 524288,
};

export function readKernelLimits(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const key of Object.keys(SEAT_KERNEL_LIMITS)) {
    try {
      out[key] = Number(read(`/proc/sys/${key}`).trim());
    } catch {
      out[key] = null;
    }
  }
  return out;
}

export type PrepareStep =
  | { kind: 'install-packages'; packages: string[] }
  | { kind: 'start-engine'; via: 'systemd' | 'dockerd'; socketPath: string }
  | { kind: 'wait-engine'; pid: number }
  | { kind: 'build-images'; names: ImageName[]; offline: boolean }
  | { kind: 'raise-kernel-limits'; set: Record<string, number> };

const isDebian = (h: HostFacts): boolean => h.os.id === 'debian' || h.os.idLike.includes('debian');

function installBlocked(h: HostFacts, what: 'ENGINE' | 'DEBOOTSTRAP' | 'TEST_TOOLS', packages: string[]): DeploylabError | null {
  const cmd = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${packages.join(' ')}`;
  if (!isDebian(h)) {
    return new DeploylabError({
      code: `${what}_MISSING_NOT_DEBIAN` as const,
      fault: 'infrastructure',
      message: {
        zh: `缺少 ${packages.join('、')}，且本机不是 Debian 系（${h.os.pretty || '未知系统'}），无法自动安装`,
        en: `${packages.join(', ')} missing, and this host is not Debian-based (${h.os.pretty || 'unknown OS'}): cannot install automatically`,
      },
      hint: {
        zh: `按该系统的文档安装 ${packages.join('、')}${packages.includes('docker.io') ? '（Docker Engine）并启动它' : ''}，然后重新运行 deploylab host prepare`,
        en: `install ${packages.join(', ')}${packages.includes('docker.io') ? ' (Docker Engine) and start it' : ''} as that OS documents, then run deploylab host prepare again`,
      },
      details: { packages, os: h.os },
    });
  }
  if (!h.isRoot) {
    return new DeploylabError({
      code: `${what}_MISSING_NOT_ROOT` as const,
      fault: 'infrastructure',
      message: {
        zh: `缺少 ${packages.join('、')}，安装需要 root 权限`,
        en: `${packages.join(', ')} missing, and installing needs root`,
      },
      hint: {
        zh: `以 root 运行：sudo npx deploylab host prepare；或自己执行：sudo sh -c '${cmd}'`,
        en: `run as root: sudo npx deploylab host prepare; or do it yourself: sudo sh -c '${cmd}'`,
      },
      details: { packages },
    });
  }
  return null;
}

/**
 * Pure: what prepare would do on a host in this state. Throws when the host needs something
 * prepare must not or cannot do (a remote engine, no root, not Debian), saying what to do instead.
 */
export function planPrepare(f: PrepareFacts, opts: PrepareOptions): PrepareStep[] {
  const steps: PrepareStep[] = [];
  const h = f.host;
  const packages: string[] = [];
  const target = f.engine.target;

  if (!f.engine.reachable) {
    // A remote (tcp) engine is somebody else's machine: report it, never try to start one here.
    if (target.kind === 'tcp') {
      const e = f.engine.error;
      throw new DeploylabError({ code: 'ENGINE_UNREACHABLE', fault: 'infrastructure', message: e.message, ...(e.hint ? { hint: e.hint } : {}), details: { target } });
    }
    const socketPath = target.socketPath ?? DEFAULT_SOCKET;
    if (h.dockerdPid !== null) {
      // Already running (maybe still starting): wait for it rather than start a second one.
      steps.push({ kind: 'wait-engine', pid: h.dockerdPid });
    } else {
      if (!h.dockerdPath) packages.push('docker.io');
      if (!h.isRoot && h.dockerdPath) {
        throw new DeploylabError({
          code: 'ENGINE_NOT_RUNNING_NOT_ROOT',
          fault: 'infrastructure',
          message: { zh: 'Docker 引擎已安装但未运行，启动它需要 root 权限', en: 'the Docker engine is installed but not running, and starting it needs root' },
          hint: h.hasSystemd
            ? { zh: '运行 sudo systemctl start docker，或 sudo npx deploylab host prepare', en: 'run sudo systemctl start docker, or sudo npx deploylab host prepare' }
            : { zh: '运行 sudo npx deploylab host prepare（会在后台启动 dockerd）', en: 'run sudo npx deploylab host prepare (it starts dockerd in the background)' },
        });
      }
      steps.push({ kind: 'start-engine', via: h.hasSystemd ? 'systemd' : 'dockerd', socketPath });
    }
  }

  let build: ImageName[] = [];
  if (opts.images) {
    const required = requiredImages(f);
    build = f.images === null ? required : required.filter((n) => !f.images!.some((i) => i.name === n && i.current));
    // The offline base is bootstrapped on the host from the Debian mirror: that needs debootstrap.
    if (build.length > 0 && opts.offline && !h.debootstrapPath) packages.push('debootstrap');
  }

  if (opts.testTools) packages.push(...(f.testToolsMissing ?? []));

  if (packages.length > 0) {
    const what = packages.includes('docker.io') ? 'ENGINE' : packages.includes('debootstrap') ? 'DEBOOTSTRAP' : 'TEST_TOOLS';
    const blocked = installBlocked(h, what, packages);
    if (blocked) throw blocked;
    steps.unshift({ kind: 'install-packages', packages });
  }
  if (build.length > 0) steps.push({ kind: 'build-images', names: build, offline: opts.offline });
  // Only raised, never lowered; without root it stays as it is (the seats still run).
  const low = Object.entries(SEAT_KERNEL_LIMITS).filter(([k, want]) => {
    const have = f.kernelLimits?.[k];
    return have !== undefined && have !== null && have < want;
  });
  if (low.length > 0 && h.isRoot) steps.push({ kind: 'raise-kernel-limits', set: Object.fromEntries(low) });
  return steps;
}

export interface PrepareDeps {
  inspectImages: InspectImages;
  buildImages: BuildImages;
  env?: Env;
  /** Progress for people (stderr). */
  progress?: (m: Bilingual) => void;
  /** How long to wait for the engine's socket after starting it. */
  engineWaitMs?: number;
}

export interface PrepareResult {
  steps: PrepareStep[];
  builds: ImageBuildResult[];
  seconds: number;
}

function runLogged(cmd: string, args: string[], env: Env): Promise<void> {
  return new Promise((res, rej) => {
    // Child output goes to our stderr: stdout carries only the final report.
    const p = spawn(cmd, args, { stdio: ['ignore', 2, 2], env: { ...process.env, ...env } });
    p.on('error', rej);
    p.on('exit', (code, signal) =>
      code === 0
        ? res()
        : rej(
            new DeploylabError({
              code: 'HOST_COMMAND_FAILED',
              fault: 'infrastructure',
              message: {
                zh: `${cmd} ${args.join(' ')} 失败（退出码 ${code ?? signal}）`,
                en: `${cmd} ${args.join(' ')} failed (exit ${code ?? signal})`,
              },
              hint: { zh: '看上面的输出；检查软件源与网络', en: 'see the output above; check the package mirror and the network' },
            }),
          ),
    );
  });
}

async function waitForEngine(config: Config, env: Env, ms: number, alive?: () => boolean): Promise<EngineFacts> {
  const target = engineTarget(config, env);
  const until = Date.now() + ms;
  let last: EngineFacts;
  do {
    last = await probeEngine(target, 2_000);
    if (last.reachable) return last;
    if (alive && !alive()) break;
    await new Promise((r) => setTimeout(r, 500));
  } while (Date.now() < until);
  return last;
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface StartDockerdOptions {
  config: Config;
  env?: Env;
  /** The socket it must serve; a non-default one is passed as -H. */
  socketPath: string;
  waitMs: number;
  /** More dockerd flags (e.g. a separate --data-root); none in normal use. */
  extraArgs?: string[];
}

/**
 * Start dockerd in the background (no systemd), its log under the data dir, and wait (bounded)
 * until it answers. Returns its PID so whoever started it can stop it.
 */
export async function startDockerd(o: StartDockerdOptions): Promise<{ engine: EngineFacts; pid: number; logPath: string }> {
  const env = o.env ?? process.env;
  const logDir = join(resolve(o.config.dataDir), 'logs');
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, 'dockerd.log');
  const fd = openSync(logPath, 'a');
  const args = [...(o.socketPath === DEFAULT_SOCKET ? [] : ['-H', `unix://${o.socketPath}`]), ...(o.extraArgs ?? [])];
  const dockerd = gatherHostFacts(env).dockerdPath ?? 'dockerd';
  // Detached in its own session: it must outlive this command.
  const child = spawn(dockerd, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: number | string | null = null;
  child.on('exit', (code, signal) => (exited = code ?? signal ?? 'exit'));
  child.on('error', (e) => (exited = e.message));
  child.unref();
  const engine = await waitForEngine(o.config, env, o.waitMs, () => exited === null);
  if (!engine.reachable) {
    const secs = Math.round(o.waitMs / 1000);
    throw new DeploylabError({
      code: 'ENGINE_START_FAILED',
      fault: 'infrastructure',
      message:
        exited !== null
          ? { zh: `dockerd 在就绪前退出了（${exited}）`, en: `dockerd exited (${exited}) before it was ready` }
          : { zh: `dockerd（PID ${child.pid}）启动后 ${secs} 秒内未就绪`, en: `dockerd (PID ${child.pid}) did not become ready within ${secs} s` },
      hint: { zh: `查看日志 ${logPath}`, en: `read its log ${logPath}` },
      details: { logPath, logTail: tail(logPath), pid: child.pid },
    });
  }
  return { engine, pid: child.pid!, logPath };
}

async function inspectOrNull(config: Config, engine: EngineFacts, inspect: InspectImages): Promise<ImageState[] | null> {
  return engine.reachable ? inspect(config) : null;
}

/** --offline means the offline base, whose inputs (and so image tags) differ from the registry one. */
export function effectiveConfig(config: Config, opts: Pick<PrepareOptions, 'offline'>): Config {
  return opts.offline && !config.images.offline ? { ...config, images: { ...config.images, offline: true } } : config;
}

/**
 * Make this host ready: install and start the engine when it is missing (Debian, root), then
 * build missing images. Idempotent: on a ready host it only looks and returns.
 */
export async function prepareHost(given: Config, opts: PrepareOptions, deps: PrepareDeps): Promise<PrepareResult> {
  const t0 = Date.now();
  const config = effectiveConfig(given, opts);
  const env = deps.env ?? process.env;
  const say = deps.progress ?? (() => {});
  const waitMs = deps.engineWaitMs ?? 60_000;
  const target = engineTarget(config, env);
  let engine = await probeEngine(target);
  const gpu = await gatherGpu(env);
  const facts = (): PrepareFacts => ({
    engine,
    host: gatherHostFacts(env),
    gpu,
    images: null,
    ...(opts.testTools ? { testToolsMissing: missingTestPackages() } : {}),
    kernelLimits: readKernelLimits(),
  });
  let f = facts();
  f.images = opts.images ? await inspectOrNull(config, engine, deps.inspectImages) : [];
  const steps = planPrepare(f, opts);
  const done: PrepareStep[] = [];
  const builds: ImageBuildResult[] = [];
  const waitRunning = async (pid: number): Promise<void> => {
    say({ zh: `dockerd（PID ${pid}）已在运行，等待它就绪`, en: `dockerd (PID ${pid}) is already running: waiting for it` });
    engine = await waitForEngine(config, env, waitMs);
    if (!engine.reachable) {
      throw new DeploylabError({
        code: 'ENGINE_UNREACHABLE',
        fault: 'infrastructure',
        message: engine.error.message,
        ...(engine.error.hint ? { hint: engine.error.hint } : {}),
        details: { dockerdPid: pid, waitedMs: waitMs },
      });
    }
  };
  if (steps.length === 0) say({ zh: '无需改动：引擎与镜像均已就绪', en: 'nothing to do: engine and images are ready' });

  for (const step of steps) {
    if (step.kind === 'install-packages') {
      say({ zh: `安装软件包：${step.packages.join(' ')}`, en: `installing packages: ${step.packages.join(' ')}` });
      const aptEnv = { DEBIAN_FRONTEND: 'noninteractive' };
      // Wait for another apt run's lock instead of failing at once.
      const lock = ['-o', 'DPkg::Lock::Timeout=300'];
      await runLogged('apt-get', [...lock, 'update'], aptEnv);
      await runLogged('apt-get', [...lock, 'install', '-y', ...step.packages], aptEnv);
    } else if (step.kind === 'start-engine') {
      // The package's own scripts may have started it already: never start a second dockerd.
      const pid = gatherHostFacts(env).dockerdPid;
      if (pid !== null) {
        await waitRunning(pid);
      } else if (step.via === 'systemd') {
        say({ zh: '启动 Docker 引擎（systemd）', en: 'starting the Docker engine (systemd)' });
        await runLogged('systemctl', ['start', 'docker'], {});
        engine = await waitForEngine(config, env, waitMs);
        if (!engine.reachable) {
          throw new DeploylabError({
            code: 'ENGINE_START_FAILED',
            fault: 'infrastructure',
            message: { zh: 'systemctl start docker 后引擎仍不可达', en: 'the engine is still unreachable after systemctl start docker' },
            hint: { zh: '查看 journalctl -u docker', en: 'read journalctl -u docker' },
          });
        }
      } else {
        say({ zh: '启动 dockerd（无 systemd，后台运行）', en: 'starting dockerd (no systemd: in the background)' });
        engine = (await startDockerd({ config, env, socketPath: step.socketPath, waitMs })).engine;
      }
      say({ zh: `引擎就绪：Docker ${engine.reachable ? engine.version : '?'}`, en: `engine ready: Docker ${engine.reachable ? engine.version : '?'}` });
    } else if (step.kind === 'wait-engine') {
      await waitRunning(step.pid);
    } else if (step.kind === 'raise-kernel-limits') {
      for (const [key, value] of Object.entries(step.set)) {
        say({ zh: `调高内核限制 ${key.replaceAll('/', '.')} = ${value}`, en: `raising the kernel limit ${key.replaceAll('/', '.')} to ${value}` });
        // A read-only /proc/sys (prepare inside a container) leaves the limit as it is: say so, go on.
        try {
          writeFileSync(`/proc/sys/${key}`, `${value}\n`);
        } catch (e) {
          say({ zh: `  未能写入：${(e as Error).message}`, en: `  not written: ${(e as Error).message}` });
        }
      }
    } else {
      // The engine may have just come up: look again so only what is missing gets built.
      let names = step.names;
      if (f.images === null) {
        f = facts();
        f.images = await deps.inspectImages(config);
        const again = planPrepare(f, opts).find((s) => s.kind === 'build-images');
        names = again && again.kind === 'build-images' ? again.names : [];
      }
      if (names.length === 0) continue;
      say({ zh: `构建镜像：${names.join(', ')}${step.offline ? '（离线）' : ''}`, en: `building images: ${names.join(', ')}${step.offline ? ' (offline)' : ''}` });
      const results = await deps.buildImages({
        config,
        offline: step.offline,
        names,
        onProgress: (p) => say({ zh: `  [${p.name}] ${p.phase}${p.line ? `: ${p.line}` : ''}`, en: `  [${p.name}] ${p.phase}${p.line ? `: ${p.line}` : ''}` }),
      });
      builds.push(...results);
      for (const r of results) {
        say({
          zh: `  ${r.name}: ${r.outcome}${r.reason ? `（${r.reason.zh}）` : ''} ${r.seconds.toFixed(1)} 秒`,
          en: `  ${r.name}: ${r.outcome}${r.reason ? ` (${r.reason.en})` : ''} ${r.seconds.toFixed(1)} s`,
        });
      }
    }
    done.push(step);
  }
  return { steps: done, builds, seconds: (Date.now() - t0) / 1000 };
}
