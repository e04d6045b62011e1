import { buildImages, inspectImages } from '../images/image-build.js';
import type { BuildImages, InspectImages } from '../images/types.js';

export interface ImageOps {
  inspectImages: InspectImages;
  buildImages: BuildImages;
}

/** The images module (runner/images/image-build.ts); a seam so plans can be tested without builds. */
export async function imageOps(): Promise<ImageOps> {
  return { inspectImages, buildImages };
}
