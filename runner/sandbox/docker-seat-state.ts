import type Docker from 'dockerode';
import { mapLimit } from '../core/concurrency.js';
import type { DiskUsageFilter, SeatDiskUsage, SeatProcess, SeatRef, SeatStatus, SweepFilter } from './driver.js';
import { countEntries } from './entry-count.js';
import { statusCodeOf } from './docker-replies.js';
import { LABEL, labelFilters, seatObjectName } from './labels.js';

/** One container of a seat as the engine lists it. */
export interface SeatContainer {
  id: string;
  role: string;
  state: string;
  created: number;
  labels: Record<string, string>;
}

/** The containers carrying the labels (one seat, a session, or all). */
export async function seatContainers(docker: Docker, ref: Partial<SeatRef>): Promise<SeatContainer[]> {
  const list = await docker.listContainers({ all: true, filters: { label: labelFilters(ref) } });
  return list.map((c) => ({
    id: c.Id,
    role: c.Labels[LABEL.role] ?? '?',
    state: c.State,
    created: c.Created * 1000,
    labels: c.Labels,
  }));
}

/** Whether the seat's frozen marker volume exists. */
export async function isFrozen(docker: Docker, ref: SeatRef): Promise<boolean> {
  try {
    await docker.getVolume(seatObjectName(ref, 'frozen')).inspect();
    return true;
  } catch (e) {
    if (statusCodeOf(e) === 404) return false;
    throw e;
  }
}

/** The frozen marker: a labelled volume, so it survives a runner restart and is swept with the seat. */
export async function markFrozen(docker: Docker, ref: SeatRef, task: string): Promise<void> {
  if (await isFrozen(docker, ref)) return;
  await docker.createVolume({
    Name: seatObjectName(ref, 'frozen'),
    Labels: {
      [LABEL.session]: ref.session,
      [LABEL.seat]: ref.seat,
      [LABEL.task]: task,
      [LABEL.component]: 'seat',
      [LABEL.role]: 'frozen-marker',
    },
  });
}

export async function clearFrozen(docker: Docker, ref: SeatRef): Promise<void> {
  try {
    await docker.getVolume(seatObjectName(ref, 'frozen')).remove();
  } catch (e) {
    if (statusCodeOf(e) !== 404) throw e;
  }
}

/** The seat's status from its listed containers, each inspected once. */
export async function seatStatusOf(docker: Docker, ref: SeatRef, found: SeatContainer[], frozen: boolean): Promise<SeatStatus> {
  const inspected = await Promise.all(
    found.map(async (c) => {
      // Removed between the listing and now (a destroy or re-provision running elsewhere): gone.
      const info = await docker
        .getContainer(c.id)
        .inspect()
        .catch((e: unknown) => {
          if ((e as { statusCode?: number }).statusCode === 404) return null;
          throw e;
        });
      if (!info) return null;
      return {
        role: c.role,
        id: c.id,
        running: info.State.Running,
        exitCode: info.State.Running ? null : info.State.ExitCode,
        oomKilled: info.State.OOMKilled,
      };
    }),
  );
  const containers = inspected.filter((c): c is NonNullable<typeof c> => c !== null);
  const allUp = containers.every((c) => c.running) && containers.some((c) => c.role === 'workspace');
  return {
    ref,
    state: !allUp ? 'degraded' : frozen ? 'frozen' : 'running',
    task: found[0]?.labels[LABEL.task] ?? '',
    containers,
    createdAt: new Date(Math.min(...found.map((c) => c.created))).toISOString(),
  };
}

/** Every seat (of the session) that has containers, by session and seat. */
export async function listSeats(docker: Docker, filter: SweepFilter): Promise<SeatStatus[]> {
  const found = await seatContainers(docker, { session: filter.session });
  const bySeat = new Map<string, SeatContainer[]>();
  for (const c of found) {
    const key = `${c.labels[LABEL.session]}/${c.labels[LABEL.seat]}`;
    bySeat.set(key, [...(bySeat.get(key) ?? []), c]);
  }
  const now = Date.now();
  const out: SeatStatus[] = [];
  for (const [key, cs] of bySeat) {
    if (filter.olderThanMs !== undefined && now - Math.min(...cs.map((c) => c.created)) < filter.olderThanMs) continue;
    const [session, seat] = key.split('/') as [string, string];
    const ref = { session, seat };
    out.push(await seatStatusOf(docker, ref, cs, await isFrozen(docker, ref)));
  }
  return out.sort((a, b) => `${a.ref.session}/${a.ref.seat}`.localeCompare(`${b.ref.session}/${b.ref.seat}`));
}

/** The processes of the given containers, with host PIDs. */
export async function containerProcesses(docker: Docker, containers: SeatContainer[]): Promise<SeatProcess[]> {
  const out: SeatProcess[] = [];
  for (const c of containers) {
    // `docker top` runs ps on the host for the container's cgroup: host PIDs, nothing runs inside.
    const top = (await docker.getContainer(c.id).top({ ps_args: '-o pid,ppid,uid,user,args' })) as {
      Titles: string[];
      Processes: string[][];
    };
    const col = (name: string): number => top.Titles.findIndex((t) => t.trim().toUpperCase() === name);
    const [pid, ppid, uid, user, cmd] = [col('PID'), col('PPID'), col('UID'), col('USER'), col('COMMAND')];
    for (const row of top.Processes) {
      out.push({
        hostPid: Number(row[pid]),
        ppid: Number(row[ppid]),
        user: row[user] ?? '',
        ...(uid >= 0 && /^\d+$/.test(row[uid] ?? '') ? { uid: Number(row[uid]) } : {}),
        command: row[cmd] ?? '',
        role: c.role,
        pidNamespace: 'host',
      });
    }
  }
  return out;
}

/** Per container id: its writable layer's directory on the host (fixed for the container's life). */
const upperDirs = new Map<string, string | null>();

async function upperDirOf(docker: Docker, id: string): Promise<string | null> {
  if (!upperDirs.has(id)) {
    const info = await docker.getContainer(id).inspect().catch(() => null);
    const dir = (info?.GraphDriver?.Data as Record<string, string> | undefined)?.UpperDir ?? null;
    if (!info) return null; // gone: asked again if it shows up once more
    upperDirs.set(id, dir);
  }
  return upperDirs.get(id) ?? null;
}

/**
 * From the engine's own accounting (`/system/df`: each container's writable layer, each volume's
 * size, the nested daemon's images and containers included in its data volume), one call for every
 * seat; the seat cannot shape what is counted.
 */
export async function seatDiskUsage(docker: Docker, filter: DiskUsageFilter): Promise<SeatDiskUsage[]> {
  const df = (await docker.df()) as {
    Containers?: { Id?: string; Labels?: Record<string, string>; SizeRw?: number }[];
    Volumes?: { Labels?: Record<string, string> | null; Mountpoint?: string; UsageData?: { Size?: number } | null }[];
  };
  const seats = new Map<string, SeatDiskUsage>();
  const counting: (() => Promise<void>)[] = [];
  const limit = filter.filesUpTo ?? 0;
  const add = (labels: Record<string, string> | null | undefined, kind: 'container' | 'volume', bytes: number, dir: () => Promise<string | null>): void => {
    if (!labels || labels[LABEL.component] !== 'seat') return;
    const session = labels[LABEL.session];
    const seat = labels[LABEL.seat];
    if (!session || !seat || (filter.session && session !== filter.session)) return;
    const key = `${session}/${seat}`;
    let u = seats.get(key);
    if (!u) seats.set(key, (u = { ref: { session, seat }, bytes: 0, files: null, parts: [] }));
    const b = Math.max(0, bytes);
    u.bytes += b;
    const part: SeatDiskUsage['parts'][number] = { kind, role: labels[LABEL.role] ?? '?', bytes: b, files: null };
    u.parts.push(part);
    if (limit > 0) {
      counting.push(async () => {
        const d = await dir();
        part.files = d ? await countEntries(d, limit) : null;
      });
    }
  };
  for (const c of df.Containers ?? []) add(c.Labels, 'container', c.SizeRw ?? 0, async () => (c.Id ? upperDirOf(docker, c.Id) : null));
  for (const v of df.Volumes ?? []) add(v.Labels, 'volume', v.UsageData?.Size ?? 0, async () => v.Mountpoint ?? null);
  // A few walks at once: each is disk-bound, and the clock's tick waits for none of them.
  await mapLimit(counting, 4, (count) => count());
  // Containers gone since: their layers' directories are not asked for again.
  const live = new Set((df.Containers ?? []).map((c) => c.Id));
  for (const id of upperDirs.keys()) if (!live.has(id)) upperDirs.delete(id);
  // One part that cannot be counted makes the seat's figure unknown, never a low one.
  if (limit > 0) for (const u of seats.values()) u.files = u.parts.some((p) => p.files === null) ? null : u.parts.reduce((n, p) => n + p.files!, 0);
  return [...seats.values()];
}
