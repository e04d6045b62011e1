/** Which of a Docker daemon's containers a check means: by name (or seat role), image, labels, compose service. */
import type Docker from 'dockerode';

/** A container selector: the `container` kind's `match`, the `http` signature key's `innerContainer`. */
export interface ContainerMatch {
  name?: string;
  image?: string;
  labels?: Record<string, string>;
  composeService?: string;
}

/** The container's name as people write it (the engine reports it with a leading slash). */
export function containerName(c: Docker.ContainerInspectInfo): string {
  return c.Name.replace(/^\//, '');
}

export function matchesContainer(c: Docker.ContainerInspectInfo, m: ContainerMatch, role?: string): boolean {
  if (m.name !== undefined && !new RegExp(m.name).test(role ?? containerName(c))) return false;
  if (m.image !== undefined && !new RegExp(m.image).test(c.Config.Image)) return false;
  const labels = c.Config.Labels ?? {};
  for (const [k, v] of Object.entries(m.labels ?? {})) if (labels[k] !== v) return false;
  if (m.composeService !== undefined && labels['com.docker.compose.service'] !== m.composeService) return false;
  return true;
}
