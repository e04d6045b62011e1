import { loadConfig, type Config } from '../../runner/core/config.js';
import { isDeploylabError } from '../../runner/core/errors.js';
import { inspectImages } from '../../runner/images/image-build.js';
import type { ImageName, ImageState } from '../../runner/images/types.js';

let states: Promise<ImageState[][]> | undefined;

/** States under the configured mode and the other one: images may have been built either way. */
async function allStates(): Promise<ImageState[][]> {
  const config = loadConfig();
  const modes = [config.images.offline, !config.images.offline];
  const out: ImageState[][] = [];
  for (const offline of modes) {
    const c: Config = { ...config, images: { ...config.images, offline } };
    try {
      out.push(await inspectImages(c));
    } catch (e) {
      // No Debian mirror in the apt sources only rules out the offline mode.
      if (!(isDeploylabError(e) && e.code === 'DEBIAN_MIRROR_UNKNOWN')) throw e;
    }
  }
  return out;
}

/**
 * The ref of a sandbox image built from the current inputs, for integration tests. Fails with what
 * to run when it is missing or out of date, never builds it itself (a build takes minutes).
 */
export async function requireImage(name: ImageName): Promise<string> {
  states ??= allStates();
  const found = (await states).map((s) => s.find((x) => x.name === name)!);
  const current = found.find((s) => s.current);
  if (current) return current.ref;
  const stale = found.some((s) => s.present);
  throw new Error(
    `sandbox image ${name} is ${stale ? 'out of date' : 'missing'} (wanted ${found[0]?.ref}): ` +
      'run `npx deploylab images build --offline` (or without --offline where a registry is reachable) first',
  );
}
