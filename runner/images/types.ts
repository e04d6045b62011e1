import type { Config } from '../core/config.js';

/**
 * The sandbox images this project builds (sandbox-images/<name>/), in dependency order.
 * `llama-build` holds the llama.cpp tools and tiny models compiled once; workspace-cpu and toolbox
 * copy them out of it. It is never run as a sandbox. `dind` is the docker-in-seat sidecar (dockerd);
 * `app-base` is preloaded into that sidecar's daemon for candidates to build FROM.
 */
export const IMAGE_NAMES = ['base', 'llama-build', 'workspace-cpu', 'toolbox', 'dind', 'app-base', 'workspace-gpu'] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];

export interface ImageState {
  name: ImageName;
  /** `<prefix>/<name>:<inputs-hash>` — the tag the current inputs would produce. */
  ref: string;
  /** An image with this exact ref exists in the engine. */
  current: boolean;
  /** Some image of this name exists, maybe built from older inputs. */
  present: boolean;
  /** Full SHA-256 of the inputs (also the image label deploylab.inputs). */
  inputsHash: string;
  /** Size of the current image, when there is one. */
  sizeBytes?: number;
}

export interface ImageBuildResult {
  name: ImageName;
  ref: string;
  outcome: 'built' | 'cached' | 'skipped';
  seconds: number;
  /** Why it was skipped (e.g. the CUDA base cannot be had without a registry). */
  reason?: { zh: string; en: string };
  sizeBytes?: number;
}

export interface ImageBuildProgress {
  name: ImageName;
  phase: string;
  line?: string;
}

export interface BuildImagesOptions {
  config: Config;
  offline: boolean;
  /** Build only these (and what they depend on); all by default. */
  names?: ImageName[];
  onProgress?: (p: ImageBuildProgress) => void;
}

/** Implemented in image-build.ts. */
export type BuildImages = (opts: BuildImagesOptions) => Promise<ImageBuildResult[]>;
export type InspectImages = (config: Config) => Promise<ImageState[]>;
