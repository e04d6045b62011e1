import Docker from 'dockerode';
import { requireImage } from '../helpers/images.js';

/** Development seat image (debootstrap + docker import, with dockerd) used before workspace-cpu exists. */
export const DEV_SEAT_IMAGE = 'deploylab-dev/seat:dev';

async function present(ref: string): Promise<boolean> {
  try {
    await new Docker().getImage(ref).inspect();
    return true;
  } catch {
    return false;
  }
}

/**
 * The image seats run in the contract suite: the project's workspace-cpu image. Only where it
 * has not been built and a development seat image is present is that one used instead, so a fresh
 * machine (CI) always tests the real image.
 */
export async function seatImage(): Promise<string> {
  try {
    return await requireImage('workspace-cpu');
  } catch (e) {
    if (await present(DEV_SEAT_IMAGE)) {
      process.stderr.write(`\n!!! workspace-cpu not built; the contract suite runs on ${DEV_SEAT_IMAGE} !!!\n\n`);
      return DEV_SEAT_IMAGE;
    }
    throw e;
  }
}
