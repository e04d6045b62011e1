import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImageName } from './types.js';

/** sandbox-images/ at the repository root. */
export const SANDBOX_IMAGES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../sandbox-images');

/** Bump when the way images are built changes without any Dockerfile changing. */
export const RECIPE_VERSION = '1';

export interface ImageDef {
  name: ImageName;
  /** Images of this project it is built FROM (their refs are passed as build args). */
  deps: ImageName[];
  /** Build-arg name for each dependency. */
  depArgs: Partial<Record<ImageName, string>>;
  /** Needs the llama.cpp git bundle in its context. */
  llamaBundle: boolean;
  /**
   * A folder of its context with a package.json and lockfile: installed on the host (npm-tree.ts)
   * and added to the context as `<folder>.tar`.
   */
  npmTree?: string;
  /** Shown to candidates? The toolbox is the graders' own. */
  role: 'base' | 'build' | 'workspace' | 'toolbox' | 'sidecar';
}

/** In dependency order: every image comes after the ones it is built FROM. */
export const IMAGE_DEFS: Record<ImageName, ImageDef> = {
  base: { name: 'base', deps: [], depArgs: {}, llamaBundle: false, role: 'base' },
  'llama-build': {
    name: 'llama-build',
    deps: ['base'],
    depArgs: { base: 'BASE' },
    llamaBundle: true,
    role: 'build',
  },
  'workspace-cpu': {
    name: 'workspace-cpu',
    deps: ['base', 'llama-build'],
    depArgs: { base: 'BASE', 'llama-build': 'LLAMA_BUILD' },
    llamaBundle: false,
    npmTree: 'candidate-node',
    role: 'workspace',
  },
  toolbox: {
    name: 'toolbox',
    deps: ['base', 'llama-build'],
    depArgs: { base: 'BASE', 'llama-build': 'LLAMA_BUILD' },
    llamaBundle: false,
    npmTree: 'grader-node',
    role: 'toolbox',
  },
  dind: { name: 'dind', deps: ['base'], depArgs: { base: 'BASE' }, llamaBundle: false, role: 'sidecar' },
  // Candidates build FROM it inside the docker-in-seat daemon.
  'app-base': { name: 'app-base', deps: ['base'], depArgs: { base: 'BASE' }, llamaBundle: false, role: 'workspace' },
  'workspace-gpu': { name: 'workspace-gpu', deps: [], depArgs: {}, llamaBundle: false, role: 'workspace' },
};

/** Files of an image's context directory, relative paths sorted (stable across hosts). */
export function contextFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'build' && entry.name !== '__pycache__' && entry.name !== 'node_modules') walk(p);
      } else if (entry.isFile()) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

export interface HashInputs {
  name: string;
  /** Context directory (holding the Dockerfile). */
  dir: string;
  /** Build args as passed to the build, including the refs of the images it is built FROM. */
  buildArgs: Record<string, string>;
  /** Anything else the result depends on, e.g. the llama.cpp npm version or the base's identity. */
  extra: Record<string, string>;
}

/**
 * SHA-256 over everything that decides an image's content. Values are length-prefixed so no two
 * different input sets can serialise the same way.
 */
export function inputsHash(inputs: HashInputs): string {
  const h = createHash('sha256');
  const put = (s: string | Buffer): void => {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    h.update(`${b.length}:`);
    h.update(b);
  };
  put(`deploylab-image-recipe/${RECIPE_VERSION}`);
  put(inputs.name);
  for (const file of contextFiles(inputs.dir)) {
    const path = join(inputs.dir, file);
    put(file);
    put(String(statSync(path).mode & 0o111 ? 'x' : '-'));
    put(readFileSync(path));
  }
  for (const [section, map] of [['args', inputs.buildArgs], ['extra', inputs.extra]] as const) {
    const entries = Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    put(`${section}:${entries.length}`);
    for (const [k, v] of entries) {
      put(k);
      put(v);
    }
  }
  return h.digest('hex');
}

/** The tag part of a ref: short enough to read, long enough not to collide (64 bits). */
export function tagOf(hash: string): string {
  return hash.slice(0, 16);
}
