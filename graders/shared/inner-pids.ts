/**
 * From the seat daemon's own PID namespace to the host's: which host process is the one the
 * docker-in-seat daemon names by PID (the container and recovery probes act on host PIDs).
 */
import { readdir, readFile } from 'node:fs/promises';

/** Status line values of a host process: parent, and its PIDs from the host's namespace inwards. */
export async function procStatus(pid: number): Promise<{ ppid: number; nspid: number[] } | null> {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8');
    return {
      ppid: Number(/^PPid:\s+(\d+)/m.exec(text)?.[1] ?? 0),
      nspid: (/^NSpid:\s+(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/).map(Number),
    };
  } catch {
    return null;
  }
}

/**
 * Host PIDs of processes the seat's daemon names by PID (its own PID namespace): the host process
 * whose second NSpid is that PID and which descends from one of the sidecar's own processes
 * (other seats' daemons number their processes alike). One pass over the host's /proc.
 */
export async function hostPidsOfInner(dindHostPids: readonly number[], pidsInDind: readonly number[]): Promise<Map<number, number>> {
  const roots = new Set(dindHostPids);
  const wanted = new Set(pidsInDind);
  const info = new Map<number, { ppid: number; nspid: number[] }>();
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = await procStatus(Number(e));
    if (st) info.set(Number(e), st);
  }
  const out = new Map<number, number>();
  for (const [pid, st] of info) {
    if (st.nspid.length < 2 || !wanted.has(st.nspid[1]!)) continue;
    let cur = st.ppid;
    for (let hops = 0; hops < 64 && cur > 1; hops++) {
      if (roots.has(cur)) {
        out.set(st.nspid[1]!, pid);
        break;
      }
      cur = info.get(cur)?.ppid ?? 0;
    }
  }
  return out;
}
