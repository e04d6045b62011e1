/** The URL a network probe sends its requests to: a check's target, as the harness reaches it. */
import type { z } from 'zod';
import { DeploylabError } from '../../runner/core/errors.js';
import type { TargetSchema } from '../params.js';
import { FETCH_BAD_PORTS, type SeatHandle } from '../probe.js';

export type Target = z.output<typeof TargetSchema>;

/**
 * The URL of a seat's service as the harness reaches it. Node's fetch refuses the WHATWG "bad
 * ports"; a task aimed at one is the task's error, not the candidate's unreachable service.
 */
export async function seatUrl(seat: SeatHandle, target: Target, path: string): Promise<string> {
  if (FETCH_BAD_PORTS.has(target.port)) {
    throw new DeploylabError({
      code: 'PROBE_PORT_BLOCKED',
      fault: 'config',
      message: {
        zh: `端口 ${target.port} 在 fetch 标准的禁用端口列表中，探针无法访问；请在题目中换一个端口`,
        en: `port ${target.port} is on the fetch standard's blocked list and cannot be probed; use another port in the task`,
      },
    });
  }
  const ep = await seat.endpoint(target.port, { container: target.container });
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  return `${target.scheme}://${host}:${ep.port}${path}`;
}
