import { DeploylabError } from '../core/errors.js';
import type { SeatDiskUsage } from '../sandbox/driver.js';
import { diskStep, inodeReserveCheck, readDiskRows, reserveCheck, writeDiskRow, type DiskStepResult, type HostFree, type SeatDiskRow } from './disk-watch.js';
import { clockOf } from './ledger-store.js';
import { seatSandboxes, type RoomContext } from './room-context.js';
import { stopClock } from './state-machine.js';

/** Seats are opened only while the host keeps its reserve after each filled its quota. */
export async function checkDiskReserve(ctx: RoomContext, seats: number): Promise<void> {
  if (seats === 0) return;
  const free = await ctx.hostFree();
  if (free.files !== null) {
    const f = inodeReserveCheck(free.files, seats, ctx.disk);
    if (!f.ok) {
      throw new DeploylabError({
        code: 'HOST_DISK_RESERVE',
        fault: 'infrastructure',
        message: {
          zh: `主机可用 inode ${f.freeFiles} 个，不足以开设 ${seats} 个考位（每个 ${ctx.disk.seatQuotaFiles} 个文件）并保留 ${ctx.disk.reserveFiles} 个：需要 ${f.requiredFiles} 个`,
          en: `the host has ${f.freeFiles} free inodes, not enough for ${seats} seat(s) at ${ctx.disk.seatQuotaFiles} files each plus the reserve of ${ctx.disk.reserveFiles}: ${f.requiredFiles} needed`,
        },
        hint: { zh: '清理小文件，或调低配置 disk.seatQuotaFiles / disk.reserveFiles，或分批开设考位', en: 'remove small files, or lower config disk.seatQuotaFiles / disk.reserveFiles, or open fewer seats at a time' },
        details: { freeFiles: f.freeFiles, requiredFiles: f.requiredFiles, seats },
      });
    }
  }
  if (free.bytes === null) return;
  const c = reserveCheck(free.bytes, seats, ctx.disk);
  if (c.ok) return;
  const gib = (b: number): string => (b / 1024 ** 3).toFixed(1);
  throw new DeploylabError({
    code: 'HOST_DISK_RESERVE',
    fault: 'infrastructure',
    message: {
      zh: `主机可用磁盘 ${gib(c.freeBytes)} GiB，不足以开设 ${seats} 个考位（每个配额 ${ctx.disk.seatQuotaMiB} MiB）并保留 ${ctx.disk.reserveGiB} GiB：需要 ${gib(c.requiredBytes)} GiB`,
      en: `the host has ${gib(c.freeBytes)} GiB free, not enough for ${seats} seat(s) at ${ctx.disk.seatQuotaMiB} MiB each plus the ${ctx.disk.reserveGiB} GiB reserve: ${gib(c.requiredBytes)} GiB needed`,
    },
    hint: { zh: '清理磁盘，或调低配置 disk.seatQuotaMiB / disk.reserveGiB，或分批开设考位', en: 'free disk space, or lower config disk.seatQuotaMiB / disk.reserveGiB, or open fewer seats at a time' },
    details: { freeBytes: c.freeBytes, requiredBytes: c.requiredBytes, seats },
  });
}

/** The engine's reading and the host's free space, taken before the session's lock is held. */
export interface DiskSample {
  free: HostFree;
  sampled: SeatDiskUsage[];
}

export async function sampleDisk(ctx: RoomContext, id: string): Promise<DiskSample> {
  const [free, sampled] = await Promise.all([ctx.hostFree(), ctx.driver.diskUsage({ session: id, filesUpTo: ctx.disk.seatQuotaFiles })]);
  return { free, sampled };
}

/** One step of the disk watch over the room (see disk-watch.ts); the caller holds the session. */
export async function diskCheck(ctx: RoomContext, id: string, sample: DiskSample): Promise<DiskStepResult> {
  return diskStep(
    ctx.ledger.db,
    ctx.driver,
    id,
    sample.sampled,
    ctx.disk,
    {
      seats: () => ctx.ledger.seats(id).map((s) => ({ seat: s.seat_id, state: s.state, refs: seatSandboxes(ctx, id, s.seat_id).map((b) => b.ref) })),
      pauseRunning: async (seat, reason) => {
        ctx.ledger.moveSeat(id, seat, 'pause', { clock: stopClock(clockOf(ctx.ledger.seat(id, seat)), ctx.now()) }, { reason });
        await Promise.all(seatSandboxes(ctx, id, seat).map((b) => ctx.driver.freeze(b.ref)));
      },
      record: (seat, event, data) => ctx.ledger.moveSeat(id, seat, event, {}, data),
      say: ctx.progress,
    },
    sample.free,
    ctx.now(),
  );
}

/** The disk watch's latest reading per seat. */
export const diskReadings = (ctx: RoomContext, id: string): Map<string, SeatDiskRow> => readDiskRows(ctx.ledger.db, id);

/** Whether the disk watch stopped the seat's processes. */
export const diskHalted = (ctx: RoomContext, id: string, seatId: string): boolean => diskReadings(ctx, id).get(seatId)?.halted === 1;

/** The seat's processes run again after the disk watch stopped them; recorded in the ledger. */
export async function releaseHalted(ctx: RoomContext, id: string, seatId: string): Promise<SeatDiskRow> {
  for (const b of seatSandboxes(ctx, id, seatId)) await ctx.driver.release(b.ref);
  const row = { ...diskReadings(ctx, id).get(seatId)!, halted: 0, halted_reason: null, released_at: ctx.now() };
  writeDiskRow(ctx.ledger.db, row);
  ctx.ledger.moveSeat(id, seatId, 'disk-release', {}, { bytes: row.bytes, quotaBytes: row.quota_bytes });
  ctx.progress({ zh: `考位 ${seatId} 的进程已恢复运行`, en: `seat ${seatId}: its processes run again` });
  return row;
}
