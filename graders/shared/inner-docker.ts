/** The seat's own Docker daemon (the docker-in-seat sidecar), as the harness reaches it. */
import Docker from 'dockerode';
import { DeploylabError } from '../../runner/core/errors.js';
import type { Deadline, SeatHandle } from '../probe.js';

/** Port of the docker-in-seat sidecar's daemon on the seat network (runner/sandbox/docker-driver.ts). */
export const DIND_PORT = 2375;
export const DIND_ROLE = 'dind';

function dindDown(cause: unknown): DeploylabError {
  return new DeploylabError({
    code: 'PROBE_INNER_DAEMON_UNREACHABLE',
    fault: 'infrastructure',
    message: { zh: '无法连接考位内的 Docker 守护进程（dind 边车）', en: "the seat's own Docker daemon (dind sidecar) is unreachable" },
    hint: { zh: '检查考位是否以 docker-in-seat 方式创建、dind 容器是否运行', en: 'check the seat was provisioned docker-in-seat and its dind container runs' },
    cause,
  });
}

/** dockerode for the seat's own daemon; throws (infrastructure) when it does not answer. */
export async function innerDocker(seat: SeatHandle, deadline: Deadline): Promise<Docker> {
  let ep;
  try {
    ep = await seat.endpoint(DIND_PORT, { container: DIND_ROLE });
  } catch (e) {
    throw dindDown(e);
  }
  const docker = new Docker({ host: ep.host, port: ep.port, protocol: 'http', timeout: Math.max(1_000, Math.min(15_000, deadline.remainingMs())) });
  try {
    await docker.ping();
  } catch (e) {
    throw dindDown(e);
  }
  return docker;
}
