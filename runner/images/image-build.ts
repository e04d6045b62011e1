import { createReadStream, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { pack as tarPack, type Pack } from 'tar-stream';
import type { Config } from '../core/config.js';
import { DeploylabError, isDeploylabError, type Bilingual } from '../core/errors.js';
import { log } from '../core/logger.js';
import { metrics } from '../core/metrics.js';
import { bootstrapBaseImage, planBootstrap, splitRef, type BootstrapPlan } from './bootstrap.js';
import { contextFiles, IMAGE_DEFS, inputsHash, SANDBOX_IMAGES_DIR, tagOf } from './inputs.js';
import { ensureLlamaBundle } from './llama-source.js';
import { ensureNpmTree } from './npm-tree.js';
import {
  IMAGE_NAMES,
  type BuildImages,
  type ImageBuildProgress,
  type ImageBuildResult,
  type ImageName,
  type ImageState,
  type InspectImages,
} from './types.js';

const ilog = log.child({ module: 'images' });

export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(join(SANDBOX_IMAGES_DIR, '..', 'package.json'), 'utf8')) as { version: string }
).version;

/** A dockerode client for the configured engine (empty: DOCKER_HOST or the local socket). */
export function dockerFor(config: Config): Docker {
  const host = config.docker.host;
  if (!host) return new Docker();
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const u = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: 'http' });
}

export async function requireEngine(docker: Docker): Promise<void> {
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, rej) => setTimeout(() => rej(new Error('no answer within 10 s')), 10_000).unref()),
    ]);
  } catch (cause) {
    metrics.engineErrors.inc({ operation: 'ping' });
    throw new DeploylabError({
      code: 'ENGINE_UNREACHABLE',
      fault: 'infrastructure',
      message: {
        zh: `无法连接 Docker 引擎：${(cause as Error).message}`,
        en: `cannot reach the Docker engine: ${(cause as Error).message}`,
      },
      hint: { zh: '运行 npx deploylab host prepare 安装并启动引擎', en: 'run npx deploylab host prepare to install and start the engine' },
      cause,
    });
  }
}

async function imageInfo(docker: Docker, ref: string): Promise<Docker.ImageInspectInfo | undefined> {
  try {
    return await docker.getImage(ref).inspect();
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return undefined;
    metrics.engineErrors.inc({ operation: 'image_inspect' });
    throw e;
  }
}

export interface ImagePlan {
  name: ImageName;
  dir: string;
  hash: string;
  ref: string;
  repo: string;
  buildArgs: Record<string, string>;
}

interface Plans {
  offline: boolean;
  bootstrap: BootstrapPlan | undefined;
  images: Record<ImageName, ImagePlan>;
}

/** Refs and input hashes of every image, in dependency order; touches the engine only to inspect. */
async function planAll(docker: Docker, config: Config, offline: boolean): Promise<Plans> {
  const { prefix } = config.images;
  const bootstrap = offline ? planBootstrap(prefix, config.images.debianMirror) : undefined;
  // The identity of an external base: its image ID where it is here, else only its name.
  const externalId = async (ref: string): Promise<string> => (await imageInfo(docker, ref))?.Id ?? `absent:${ref}`;
  const images = {} as Record<ImageName, ImagePlan>;
  for (const name of IMAGE_NAMES) {
    const def = IMAGE_DEFS[name];
    const dir = join(SANDBOX_IMAGES_DIR, name);
    const buildArgs: Record<string, string> = {};
    const extra: Record<string, string> = {};
    for (const dep of def.deps) buildArgs[def.depArgs[dep]!] = images[dep].ref;
    if (name === 'base') {
      buildArgs.BASE = bootstrap ? bootstrap.ref : config.images.base;
      extra.baseIdentity = bootstrap ? `bootstrap:${bootstrap.hash}` : await externalId(config.images.base);
    }
    if (def.llamaBundle) extra.llamaCppNpmVersion = config.images.llamaCppNpmVersion;
    if (name === 'workspace-gpu') {
      buildArgs.CUDA_BASE = config.images.cudaBase;
      extra.baseIdentity = await externalId(config.images.cudaBase);
    }
    const hash = inputsHash({ name, dir, buildArgs, extra });
    const repo = `${prefix}/${name}`;
    images[name] = { name, dir, hash, ref: `${repo}:${tagOf(hash)}`, repo, buildArgs };
  }
  return { offline, bootstrap, images };
}

function labelsFor(name: string, hash: string): Record<string, string> {
  return {
    'deploylab.component': 'image',
    'deploylab.image': name,
    'deploylab.inputs': hash,
    'deploylab.version': PACKAGE_VERSION,
  };
}

/** Build context as a tar stream: the image's folder plus extra files (e.g. the llama.cpp bundle). */
function contextTar(dir: string, extras: Array<{ name: string; path: string }>): Pack {
  const p = tarPack();
  const mtime = new Date(0); // fixed, so the context bytes depend on content only
  const add = (name: string, path: string): Promise<void> =>
    new Promise((res, rej) => {
      const st = statSync(path);
      const entry = p.entry({ name, size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644, mtime }, (err) =>
        err ? rej(err) : res(),
      );
      createReadStream(path).on('error', rej).pipe(entry);
    });
  void (async () => {
    for (const f of contextFiles(dir)) await add(f, join(dir, f));
    for (const x of extras) await add(x.name, x.path);
    p.finalize();
  })().catch((e: unknown) => p.destroy(e as Error));
  return p;
}

interface BuildEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

export async function dockerBuild(
  docker: Docker,
  plan: ImagePlan,
  extras: Array<{ name: string; path: string }>,
  labels: Record<string, string>,
  onLine: (l: string) => void,
): Promise<void> {
  const tail: string[] = [];
  let failure: string | undefined;
  const take = (text: string): void => {
    // Build output carries terminal colour codes; keep the text only.
    // eslint-disable-next-line no-control-regex
    for (const l of text.replace(/\x1b\[[0-9;]*m/g, '').split('\n')) {
      if (!l.trim()) continue;
      tail.push(l);
      if (tail.length > 40) tail.shift();
      onLine(l);
    }
  };
  try {
    // tar-stream packs are streamx streams; docker-modem only needs .pipe().
    const context = contextTar(plan.dir, extras) as unknown as NodeJS.ReadableStream;
    const stream = await docker.buildImage(context, {
      t: plan.ref,
      buildargs: plan.buildArgs,
      labels,
      rm: true,
      forcerm: true,
      // Build steps need only the package mirror: the host network spares them the engine's
      // bridge (one less thing to break a long build) and our Dockerfiles are trusted.
      networkmode: 'host',
    });
    await new Promise<void>((res, rej) => {
      docker.modem.followProgress(
        stream,
        (err: Error | null) => (err ? rej(err) : res()),
        (ev: BuildEvent) => {
          if (ev.stream) take(ev.stream);
          else if (ev.status) take(ev.status);
          if (ev.error) {
            failure = ev.errorDetail?.message ?? ev.error;
            take(ev.error);
          }
        },
      );
    });
  } catch (cause) {
    failure ??= (cause as Error).message;
  }
  if (failure !== undefined) {
    metrics.engineErrors.inc({ operation: 'image_build' });
    throw new DeploylabError({
      code: 'IMAGE_BUILD_FAILED',
      fault: 'infrastructure',
      // The step's last lines travel in details.lastLines (printed by the CLI, kept in --json).
      message: {
        zh: `镜像 ${plan.name} 构建失败：${failure}`,
        en: `building image ${plan.name} failed: ${failure}`,
      },
      hint: {
        zh: '查看上面的构建输出；加 --log-level debug 可看到完整输出',
        en: 'see the build output above; --log-level debug shows all of it',
      },
      details: { image: plan.name, ref: plan.ref, lastLines: tail },
    });
  }
}

/** Images this request needs, dependencies first. */
export function withDependencies(names: readonly ImageName[]): ImageName[] {
  const want = new Set<ImageName>();
  const visit = (n: ImageName): void => {
    if (want.has(n)) return;
    want.add(n);
    for (const d of IMAGE_DEFS[n].deps) visit(d);
  };
  names.forEach(visit);
  return IMAGE_NAMES.filter((n) => want.has(n));
}

async function tagLatest(docker: Docker, plan: ImagePlan): Promise<void> {
  await docker.getImage(plan.ref).tag({ repo: plan.repo, tag: 'latest' });
}

/** Is the CUDA base here or can it be pulled? If not, why not (bilingual). */
async function gpuBaseUnavailable(docker: Docker, config: Config, offline: boolean): Promise<Bilingual | undefined> {
  const cuda = config.images.cudaBase;
  if (await imageInfo(docker, cuda)) return undefined;
  if (offline) {
    return {
      zh: `离线模式：CUDA 基础镜像 ${cuda} 不在本机，且 vLLM 需要 PyPI；GPU 工作区请在有镜像仓库的考点构建`,
      en: `offline: the CUDA base ${cuda} is not on this host and vLLM needs PyPI; build the GPU workspace at a centre with a registry`,
    };
  }
  try {
    const stream = await docker.pull(cuda);
    await new Promise<void>((res, rej) => docker.modem.followProgress(stream, (err: Error | null) => (err ? rej(err) : res())));
    return undefined;
  } catch (e) {
    return {
      zh: `无法拉取 CUDA 基础镜像 ${cuda}：${(e as Error).message}`,
      en: `cannot pull the CUDA base ${cuda}: ${(e as Error).message}`,
    };
  }
}

async function ensureOnlineBase(docker: Docker, config: Config): Promise<void> {
  const base = config.images.base;
  if (await imageInfo(docker, base)) return;
  try {
    const stream = await docker.pull(base);
    await new Promise<void>((res, rej) => docker.modem.followProgress(stream, (err: Error | null) => (err ? rej(err) : res())));
  } catch (cause) {
    throw new DeploylabError({
      code: 'BASE_IMAGE_UNAVAILABLE',
      fault: 'infrastructure',
      message: { zh: `无法拉取基础镜像 ${base}：${(cause as Error).message}`, en: `cannot pull the base image ${base}: ${(cause as Error).message}` },
      hint: {
        zh: '没有镜像仓库时用 --offline（从 Debian 镜像站自举基础镜像）',
        en: 'without a registry, use --offline (bootstraps the base from the Debian mirror)',
      },
      cause,
    });
  }
}

export const buildImages: BuildImages = async (opts) => {
  const { config, offline } = opts;
  const docker = dockerFor(config);
  await requireEngine(docker);
  const progress = (p: ImageBuildProgress): void => {
    ilog.debug({ image: p.name, phase: p.phase, line: p.line }, 'image build');
    opts.onProgress?.(p);
  };
  const requested = opts.names && opts.names.length > 0 ? opts.names : [...IMAGE_NAMES];
  const order = withDependencies(requested);
  const needsBase = order.some((n) => n !== 'workspace-gpu');
  if (!offline && needsBase) await ensureOnlineBase(docker, config);
  const plans = await planAll(docker, config, offline);
  const results: ImageBuildResult[] = [];
  const failed = new Set<ImageName>();

  for (const name of order) {
    const plan = plans.images[name];
    const started = performance.now();
    const seconds = (): number => Math.round((performance.now() - started) / 10) / 100;
    const onLine = (line: string): void => progress({ name, phase: 'build', line });

    if (IMAGE_DEFS[name].deps.some((d) => failed.has(d))) {
      failed.add(name);
      results.push({ name, ref: plan.ref, outcome: 'skipped', seconds: 0, reason: { zh: '它所依赖的镜像未能构建', en: 'an image it is built from is missing' } });
      continue;
    }
    const existing = await imageInfo(docker, plan.ref);
    if (existing) {
      await tagLatest(docker, plan);
      progress({ name, phase: 'cached' });
      metrics.imageBuildSeconds.observe({ image: name, cached: 'true' }, seconds());
      results.push({ name, ref: plan.ref, outcome: 'cached', seconds: seconds(), sizeBytes: existing.Size });
      continue;
    }
    if (name === 'workspace-gpu') {
      const why = await gpuBaseUnavailable(docker, config, offline);
      if (why) {
        failed.add(name);
        progress({ name, phase: 'skipped', line: why.en });
        results.push({ name, ref: plan.ref, outcome: 'skipped', seconds: seconds(), reason: why });
        continue;
      }
    }
    if (name === 'base' && plans.bootstrap && !(await imageInfo(docker, plans.bootstrap.ref))) {
      progress({ name, phase: 'bootstrap', line: `debootstrap ${plans.bootstrap.mirror}` });
      await bootstrapBaseImage(docker, plans.bootstrap, {
        dataDir: config.dataDir,
        labels: labelsFor('debian-bootstrap', plans.bootstrap.hash),
        onLine: (line) => progress({ name, phase: 'bootstrap', line }),
      });
    }
    const extras: Array<{ name: string; path: string }> = [];
    if (IMAGE_DEFS[name].llamaBundle) {
      progress({ name, phase: 'source' });
      const bundle = await ensureLlamaBundle(config.dataDir, config.images.llamaCppNpmVersion, (line) =>
        progress({ name, phase: 'source', line }),
      );
      extras.push({ name: 'gitRelease.bundle', path: bundle });
    }
    const npmTree = IMAGE_DEFS[name].npmTree;
    if (npmTree) {
      progress({ name, phase: 'source' });
      const tar = await ensureNpmTree(config.dataDir, join(plan.dir, npmTree), (line) => progress({ name, phase: 'source', line }));
      extras.push({ name: `${npmTree}.tar`, path: tar });
    }
    progress({ name, phase: 'build', line: `→ ${plan.ref}` });
    const labels = { ...labelsFor(name, plan.hash), 'deploylab.role': IMAGE_DEFS[name].role };
    try {
      await dockerBuild(docker, plan, extras, labels, onLine);
    } catch (e) {
      if (isDeploylabError(e)) ilog.error({ image: name, code: e.code }, 'image build failed');
      throw e;
    }
    await tagLatest(docker, plan);
    const info = await imageInfo(docker, plan.ref);
    metrics.imageBuildSeconds.observe({ image: name, cached: 'false' }, seconds());
    progress({ name, phase: 'done' });
    results.push({ name, ref: plan.ref, outcome: 'built', seconds: seconds(), sizeBytes: info?.Size });
  }
  return results;
};

/** Which images are present and which match the current inputs (config.images.offline decides the base). */
export const inspectImages: InspectImages = async (config) => {
  const docker = dockerFor(config);
  await requireEngine(docker);
  const plans = await planAll(docker, config, config.images.offline);
  const states: ImageState[] = [];
  for (const name of IMAGE_NAMES) {
    const plan = plans.images[name];
    const current = await imageInfo(docker, plan.ref);
    const any = current
      ? [current]
      : await docker.listImages({ filters: JSON.stringify({ label: [`deploylab.image=${name}`] }) } as object);
    states.push({
      name,
      ref: plan.ref,
      current: Boolean(current),
      present: any.length > 0,
      inputsHash: plan.hash,
      ...(current ? { sizeBytes: current.Size } : {}),
    });
  }
  return states;
};

export { splitRef };
