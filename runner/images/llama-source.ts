import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { DeploylabError } from '../core/errors.js';

const run = promisify(execFile);

/** Where the llama.cpp git bundle sits inside the node-llama-cpp npm package. */
export const BUNDLE_IN_PACKAGE = 'package/llama/gitRelease.bundle';

function unavailable(version: string, dir: string, cause: unknown): DeploylabError {
  return new DeploylabError({
    code: 'LLAMA_SOURCE_UNAVAILABLE',
    fault: 'infrastructure',
    message: {
      zh: `无法获取 node-llama-cpp@${version}（其中包含 llama.cpp 源码）：${(cause as Error).message ?? cause}`,
      en: `cannot obtain node-llama-cpp@${version} (it carries the llama.cpp source): ${(cause as Error).message ?? cause}`,
    },
    hint: {
      zh: `确认 npm 仓库可访问，或把 \`npm pack node-llama-cpp@${version}\` 得到的 .tgz 文件放到 ${dir}`,
      en: `check that the npm registry is reachable, or place the .tgz from \`npm pack node-llama-cpp@${version}\` in ${dir}`,
    },
    cause,
  });
}

/**
 * The llama.cpp source as a git bundle, taken out of the npm package node-llama-cpp@version.
 * Both the package and the extracted bundle are cached under the data dir, so this reaches the
 * registry once per version.
 */
export async function ensureLlamaBundle(dataDir: string, version: string, onLine?: (line: string) => void): Promise<string> {
  if (!/^[0-9A-Za-z.+-]+$/.test(version)) {
    throw new DeploylabError({
      code: 'CONFIG_INVALID',
      fault: 'config',
      message: { zh: `images.llamaCppNpmVersion 不是版本号：${version}`, en: `images.llamaCppNpmVersion is not a version: ${version}` },
    });
  }
  const dir = resolve(dataDir, 'cache', 'llama-cpp', version);
  const bundle = join(dir, 'gitRelease.bundle');
  if (existsSync(bundle)) return bundle;
  mkdirSync(dir, { recursive: true });

  const expected = `node-llama-cpp-${version}.tgz`;
  let tgz = join(dir, expected);
  if (!existsSync(tgz)) {
    onLine?.(`npm pack node-llama-cpp@${version}`);
    try {
      const { stdout } = await run('npm', ['pack', `node-llama-cpp@${version}`, '--pack-destination', dir, '--silent'], {
        maxBuffer: 1 << 20,
        timeout: 600_000,
      });
      const name = stdout.trim().split('\n').pop() ?? expected;
      tgz = join(dir, name);
    } catch (cause) {
      throw unavailable(version, dir, cause);
    }
    if (!existsSync(tgz)) {
      const found = readdirSync(dir).find((f) => f.endsWith('.tgz'));
      if (!found) throw unavailable(version, dir, new Error('npm pack wrote no .tgz'));
      tgz = join(dir, found);
    }
  }

  onLine?.(`extract ${BUNDLE_IN_PACKAGE}`);
  const tmp = `${bundle}.part`;
  let found = false;
  const ex = tarExtract();
  ex.on('entry', (header, stream, next) => {
    if (header.name === BUNDLE_IN_PACKAGE) {
      found = true;
      pipeline(stream, createWriteStream(tmp)).then(() => next(), next);
    } else {
      stream.on('end', () => next());
      stream.resume();
    }
  });
  try {
    await pipeline(createReadStream(tgz), createGunzip(), ex);
  } catch (cause) {
    rmSync(tmp, { force: true });
    throw unavailable(version, dir, cause);
  }
  if (!found) throw unavailable(version, dir, new Error(`${BUNDLE_IN_PACKAGE} is not in ${tgz}`));
  renameSync(tmp, bundle);
  return bundle;
}
