import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { SeatRef } from './driver.js';

const run = promisify(execFile);

/**
 * Docker gives an `internal` bridge an address on the host, and nothing stops a container from
 * connecting to host services through it (seen: a listener on 0.0.0.0 answered a seat). So each
 * seat bridge gets a name we choose and one INPUT rule: nothing the seat starts reaches the host;
 * replies to connections the host opened (graders' probes) still pass.
 */
export const BRIDGE_PREFIX = 'dlseat';

export function bridgeName(ref: SeatRef): string {
  // Linux interface names are at most 15 characters.
  return BRIDGE_PREFIX + createHash('sha256').update(`${ref.session}/${ref.seat}`).digest('hex').slice(0, 9);
}

function ruleArgs(bridge: string): string[] {
  return ['INPUT', '-i', bridge, '-m', 'conntrack', '!', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'DROP'];
}

async function iptables(args: string[]): Promise<string> {
  const { stdout } = await run('iptables', ['-w', '5', ...args], { timeout: 15_000 });
  return stdout;
}

export async function closeHostToSeat(bridge: string): Promise<void> {
  const args = ruleArgs(bridge);
  try {
    await iptables(['-C', ...args]);
  } catch {
    await iptables(['-I', ...args]);
  }
}

/** Remove the rule of one bridge, or of every seat bridge whose interface is gone when none is named. */
export async function removeHostRules(bridge?: string): Promise<string[]> {
  const listed = await iptables(['-S', 'INPUT']);
  const removed: string[] = [];
  for (const line of listed.split('\n')) {
    const m = new RegExp(`-i (${BRIDGE_PREFIX}[0-9a-f]{9}) `).exec(line);
    if (!m) continue;
    const name = m[1]!;
    if (bridge ? name !== bridge : await interfaceExists(name)) continue;
    await iptables(['-D', ...ruleArgs(name)]).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

async function interfaceExists(name: string): Promise<boolean> {
  try {
    const { access } = await import('node:fs/promises');
    await access(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}
