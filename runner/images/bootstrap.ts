import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type Docker from 'dockerode';
import { DeploylabError } from '../core/errors.js';
import { debianSourcesFor, readHostAptSources, renderSourcesList, type AptSource } from './apt-sources.js';
import { RECIPE_VERSION, tagOf } from './inputs.js';

export const DEBIAN_SUITE = 'bookworm';

export interface BootstrapPlan {
  ref: string;
  hash: string;
  sources: AptSource[];
  mirror: string;
}

export function planBootstrap(prefix: string, debianMirror: string, hostSources = readHostAptSources()): BootstrapPlan {
  const sources = debianSourcesFor(hostSources, DEBIAN_SUITE, debianMirror);
  const mirror = sources[0]!.uri;
  const hash = createHash('sha256')
    .update(`deploylab-debootstrap/${RECIPE_VERSION}\nminbase ${DEBIAN_SUITE}\n${renderSourcesList(sources)}`)
    .digest('hex');
  return { ref: `${prefix}/debian-bootstrap:${tagOf(hash)}`, hash, sources, mirror };
}

/** Run a command, handing each output line on; resolves with the last lines for error reports. */
function runLines(cmd: string, args: string[], onLine: (l: string) => void): Promise<{ code: number; tail: string[] }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const feed = (buf: Buffer): void => {
      for (const l of buf.toString('utf8').split('\n')) {
        if (!l.trim()) continue;
        tail.push(l);
        if (tail.length > 30) tail.shift();
        onLine(l);
      }
    };
    child.stdout.on('data', feed);
    child.stderr.on('data', feed);
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? 1, tail }));
  });
}

/**
 * A Debian root filesystem straight from the mirror (debootstrap, minbase), imported as an image:
 * the base of everything where no registry can be reached. Its apt sources are the host's Debian
 * ones, so `apt-get install` in later Dockerfiles reaches the same mirror.
 */
export async function bootstrapBaseImage(
  docker: Docker,
  plan: BootstrapPlan,
  opts: { dataDir: string; labels: Record<string, string>; onLine: (l: string) => void },
): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new DeploylabError({
      code: 'BOOTSTRAP_NEEDS_ROOT',
      fault: 'infrastructure',
      message: { zh: '离线构建基础镜像（debootstrap）需要 root 权限', en: 'bootstrapping the base image offline (debootstrap) needs root' },
      hint: { zh: '以 root 身份运行 deploylab images build --offline', en: 'run deploylab images build --offline as root' },
    });
  }
  const rootfs = resolve(opts.dataDir, 'cache', 'bootstrap', tagOf(plan.hash), 'rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  mkdirSync(rootfs, { recursive: true });
  try {
    let res: { code: number; tail: string[] };
    try {
      res = await runLines('debootstrap', ['--variant=minbase', '--components=main', DEBIAN_SUITE, rootfs, plan.mirror], opts.onLine);
    } catch (cause) {
      throw new DeploylabError({
        code: 'BOOTSTRAP_UNAVAILABLE',
        fault: 'infrastructure',
        message: { zh: '找不到 debootstrap 命令', en: 'debootstrap is not installed' },
        hint: { zh: 'apt-get install -y debootstrap', en: 'apt-get install -y debootstrap' },
        cause,
      });
    }
    if (res.code !== 0) {
      throw new DeploylabError({
        code: 'BOOTSTRAP_FAILED',
        fault: 'infrastructure',
        message: {
          zh: `debootstrap 从 ${plan.mirror} 构建根文件系统失败（退出码 ${res.code}）`,
          en: `debootstrap from ${plan.mirror} failed (exit ${res.code})`,
        },
        hint: { zh: '检查 Debian 镜像是否可访问，或设置 images.debianMirror', en: 'check that the Debian mirror is reachable, or set images.debianMirror' },
        details: { lastLines: res.tail },
      });
    }
    // Apt in the image uses the same sources as the host; no downloaded packages or lists kept.
    writeFileSync(join(rootfs, 'etc/apt/sources.list'), renderSourcesList(plan.sources));
    for (const dir of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      const p = join(rootfs, dir);
      if (!existsSync(p)) continue;
      for (const f of readdirSync(p)) if (f !== 'partial' && f !== 'lock') rmSync(join(p, f), { recursive: true, force: true });
    }

    opts.onLine(`docker import ${plan.ref}`);
    // GNU tar, not a JS tar library: a root filesystem has device nodes, hard links and
    // ownerships that must survive exactly.
    const tar = spawn('tar', ['--numeric-owner', '-C', rootfs, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tarErr = '';
    tar.stderr.on('data', (b: Buffer) => (tarErr += b.toString()));
    const [repo, tag] = splitRef(plan.ref);
    const changes = [
      ...Object.entries(opts.labels).map(([k, v]) => `LABEL ${k}=${v}`),
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'CMD ["bash"]',
    ];
    const stream = await docker.importImage(tar.stdout, { repo, tag, changes } as object);
    await new Promise<void>((res2, rej) => {
      docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => {
        const bad = out?.find((o) => o.error);
        if (err || bad) rej(err ?? new Error(bad!.error));
        else res2();
      });
    });
    const tarCode = await new Promise<number>((r) => (tar.exitCode !== null ? r(tar.exitCode) : tar.on('close', (c) => r(c ?? 1))));
    if (tarCode !== 0) throw new Error(`tar of the root filesystem failed: ${tarErr.trim()}`);
  } finally {
    rmSync(resolve(rootfs, '..'), { recursive: true, force: true });
  }
}

export function splitRef(ref: string): [string, string] {
  const i = ref.lastIndexOf(':');
  return i > ref.lastIndexOf('/') ? [ref.slice(0, i), ref.slice(i + 1)] : [ref, 'latest'];
}
