/**
 * An image's Node packages: a folder of its context holding a package.json and its lockfile,
 * installed here with `npm ci` and handed to the build as one tar. Image builds reach no package
 * registry themselves: the host's npm is already set up for this network, a build container is not.
 * The install is cached under the data dir by a hash of the two files, so it runs once per lockfile.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DeploylabError } from '../core/errors.js';

const run = promisify(execFile);

/** The two files that pin a tree; both must be in the folder. */
const PIN_FILES = ['package.json', 'package-lock.json'] as const;

function unavailable(dir: string, cause: unknown): DeploylabError {
  const why = (cause as Error).message ?? String(cause);
  return new DeploylabError({
    code: 'NPM_PACKAGES_UNAVAILABLE',
    fault: 'infrastructure',
    message: { zh: `无法安装镜像所需的 npm 包（${dir}）：${why}`, en: `cannot install the npm packages an image needs (${dir}): ${why}` },
    hint: { zh: '确认本机 npm 能访问 npm 仓库（npm ping）', en: 'check that npm on this host reaches the npm registry (npm ping)' },
    cause,
  });
}

/** Hash of the pin files: the cache key, and what the image's inputs hash already covers. */
export function npmTreeKey(srcDir: string): string {
  const h = createHash('sha256');
  for (const f of PIN_FILES) {
    h.update(`${f}\0`);
    h.update(readFileSync(join(srcDir, f)));
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * The tar (package.json, package-lock.json, node_modules) of `srcDir`'s pinned tree, installed
 * without dev dependencies and without install scripts. Returns the tar's path.
 */
export async function ensureNpmTree(dataDir: string, srcDir: string, onLine?: (line: string) => void): Promise<string> {
  for (const f of PIN_FILES) {
    if (!existsSync(join(srcDir, f))) throw unavailable(srcDir, new Error(`${f} is missing`));
  }
  const dir = resolve(dataDir, 'cache', 'npm-tree', npmTreeKey(srcDir));
  const tar = join(dir, 'tree.tar');
  if (existsSync(tar)) return tar;
  const work = `${dir}.part`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    for (const f of PIN_FILES) copyFileSync(join(srcDir, f), join(work, f));
    onLine?.(`npm ci (${srcDir})`);
    await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: work,
      maxBuffer: 8 << 20,
      timeout: 900_000,
    });
    mkdirSync(join(work, 'node_modules'), { recursive: true }); // a tree without dependencies has none
    await run('tar', ['-cf', 'tree.tar', ...PIN_FILES, 'node_modules'], { cwd: work, maxBuffer: 1 << 20, timeout: 300_000 });
    mkdirSync(dir, { recursive: true });
    renameSync(join(work, 'tree.tar'), tar);
  } catch (cause) {
    throw unavailable(srcDir, cause);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return tar;
}
