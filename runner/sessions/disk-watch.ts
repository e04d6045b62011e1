import { statfs } from 'node:fs/promises';
import { ConfigSchema, type Config } from '../core/config.js';
import type { Bilingual } from '../core/errors.js';
import { log } from '../core/logger.js';
import type { SandboxDriver, SeatDiskUsage, SeatRef } from '../sandbox/driver.js';
import type { DB } from '../store/db.js';
import type { SeatStateName } from './state-machine.js';

const dlog = log.child({ module: 'disk-watch' });

/**
 * The seats' disk, watched by the runner where the engine gives no real quota (overlay2 `size`
 * needs XFS with project quotas, which `host check` reports): each seat's bytes (writable layers
 * of its containers, its volumes, the nested daemon's data) are sampled, the candidate and the
 * examiner are warned near the quota, and a seat at its quota has every process of its sandboxes
 * stopped (frozen by the engine, nothing killed or lost) until an examiner releases it. The host
 * keeps a reserve for the store and the evidence: seats are not opened into it, and while it is
 * short every seat that is still growing is stopped.
 *
 * This file is the policy (pure) and its store rows; session-service.ts does the engine's part.
 */

export type DiskPolicy = Config['disk'];
export const defaultDiskPolicy = (): DiskPolicy => ConfigSchema.shape.disk.parse(undefined);

export const DISK_LEVELS = ['ok', 'warn', 'over'] as const;
export type DiskLevel = (typeof DISK_LEVELS)[number];

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const quotaBytes = (p: DiskPolicy): number => p.seatQuotaMiB * MiB;
export const reserveBytes = (p: DiskPolicy): number => p.reserveGiB * GiB;

export function diskLevel(bytes: number, quota: number, warnPercent: number): DiskLevel {
  if (bytes >= quota) return 'over';
  return bytes >= (quota * warnPercent) / 100 ? 'warn' : 'ok';
}

/** The stored reading of one seat (the state table `seat_disk`, updated in place). */
export interface SeatDiskRow {
  session_id: string;
  seat_id: string;
  bytes: number;
  quota_bytes: number;
  level: DiskLevel;
  /** 1 while its processes are stopped by the watch. */
  halted: number;
  /** 'quota' | 'host-reserve' while halted. */
  halted_reason: string | null;
  /** Epoch ms of the last examiner release (the grace runs from here). */
  released_at: number | null;
  sampled_at: number;
}

export interface DiskSample {
  seat: string;
  bytes: number;
}

export interface DiskJudgement {
  seat: string;
  bytes: number;
  level: DiskLevel;
  /** Set when this step stops the seat's processes. */
  halt: 'quota' | 'host-reserve' | null;
  /** The level is new since the last reading (warn the candidate and the examiner once). */
  levelChanged: boolean;
}

/**
 * One step of the watch. A seat is stopped when it reaches its quota (outside the grace after a
 * release), or when the host is below its reserve and the seat grew since the last reading.
 */
export function judgeDisk(
  samples: readonly DiskSample[],
  previous: ReadonlyMap<string, SeatDiskRow>,
  policy: DiskPolicy,
  hostFreeBytes: number | null,
  now: number,
): DiskJudgement[] {
  const quota = quotaBytes(policy);
  const short = hostFreeBytes !== null && hostFreeBytes < reserveBytes(policy);
  return samples.map((s) => {
    const prev = previous.get(s.seat);
    const level = diskLevel(s.bytes, quota, policy.warnPercent);
    const inGrace = prev?.released_at != null && now - prev.released_at < policy.graceSeconds * 1000;
    const already = prev?.halted === 1;
    let halt: DiskJudgement['halt'] = null;
    if (!already && !inGrace) {
      if (level === 'over') halt = 'quota';
      else if (short && prev !== undefined && s.bytes > prev.bytes) halt = 'host-reserve';
    }
    return { seat: s.seat, bytes: s.bytes, level, halt, levelChanged: prev?.level !== level };
  });
}

export interface ReserveCheck {
  ok: boolean;
  freeBytes: number;
  requiredBytes: number;
}

/** Opening `seats` more seats must leave the reserve free even if each fills its quota. */
export function reserveCheck(freeBytes: number, seats: number, policy: DiskPolicy): ReserveCheck {
  const requiredBytes = reserveBytes(policy) + seats * quotaBytes(policy);
  return { ok: freeBytes >= requiredBytes, freeBytes, requiredBytes };
}

export function readDiskRows(db: DB, session: string): Map<string, SeatDiskRow> {
  const rows = db.prepare('SELECT * FROM seat_disk WHERE session_id = ?').all(session) as SeatDiskRow[];
  return new Map(rows.map((r) => [r.seat_id, r]));
}

export function writeDiskRow(db: DB, row: SeatDiskRow): void {
  db.prepare(
    `INSERT INTO seat_disk (session_id, seat_id, bytes, quota_bytes, level, halted, halted_reason, released_at, sampled_at)
     VALUES (@session_id, @seat_id, @bytes, @quota_bytes, @level, @halted, @halted_reason, @released_at, @sampled_at)
     ON CONFLICT (session_id, seat_id) DO UPDATE SET bytes = @bytes, quota_bytes = @quota_bytes, level = @level,
       halted = @halted, halted_reason = @halted_reason, released_at = @released_at, sampled_at = @sampled_at`,
  ).run(row);
}

export const formatMiB = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

/** Free bytes where seats and the store live: the lower of the data dir's and the engine's (when local) filesystems. */
export async function hostFreeBytes(paths: readonly string[]): Promise<number | null> {
  let low: number | null = null;
  for (const p of paths) {
    try {
      const s = await statfs(p);
      const free = s.bavail * s.bsize;
      low = low === null ? free : Math.min(low, free);
    } catch {
      // A remote engine's directory is not here: the data dir is what we can measure.
    }
  }
  return low;
}

/** What the watch needs of the session service: the seats, and the moves it may make on them. */
export interface DiskWatchHost {
  seats(): { seat: string; state: SeatStateName; refs: SeatRef[] }[];
  /** Pause a running seat (its clock stops, candidate access closes) before halting it. */
  pauseRunning(seat: string, reason: string): Promise<void>;
  record(seat: string, event: 'disk-halt', data: Record<string, unknown>): void;
  say(line: Bilingual): void;
}

export interface DiskStepResult {
  sampled: number;
  halted: { seat: string; reason: 'quota' | 'host-reserve'; bytes: number }[];
  hostFreeBytes: number | null;
}

/**
 * One step of the watch over a session: judge the engine's reading (`sampled`, taken before the
 * room's lock: on a big room it takes a while), store it, and halt what must stop.
 */
export async function diskStep(
  db: DB,
  driver: SandboxDriver,
  session: string,
  sampled: readonly SeatDiskUsage[],
  policy: DiskPolicy,
  host: DiskWatchHost,
  free: number | null,
  now: number,
): Promise<DiskStepResult> {
  const usage = new Map(sampled.map((u) => [u.ref.seat, u.bytes]));
  const seats = host.seats().filter((s) => !['pending', 'removed', 'failed'].includes(s.state));
  const samples = seats.map((s) => ({ seat: s.seat, bytes: s.refs.reduce((n, r) => n + (usage.get(r.seat) ?? 0), 0) }));
  const previous = readDiskRows(db, session);
  const quota = quotaBytes(policy);
  const out: DiskStepResult = { sampled: samples.length, halted: [], hostFreeBytes: free };
  for (const j of judgeDisk(samples, previous, policy, free, now)) {
    const prev = previous.get(j.seat);
    const seat = seats.find((s) => s.seat === j.seat)!;
    const row: SeatDiskRow = {
      session_id: session, seat_id: j.seat, bytes: j.bytes, quota_bytes: quota, level: j.level,
      halted: prev?.halted ?? 0, halted_reason: prev?.halted_reason ?? null, released_at: prev?.released_at ?? null, sampled_at: now,
    };
    if (j.levelChanged && j.level !== 'ok') {
      dlog.warn({ session, seat: j.seat, bytes: j.bytes, quota, level: j.level }, 'seat disk near or at its quota');
      host.say({
        zh: `考位 ${j.seat} 磁盘用量 ${formatMiB(j.bytes)}，配额 ${formatMiB(quota)}`,
        en: `seat ${j.seat} uses ${formatMiB(j.bytes)} of its ${formatMiB(quota)} disk quota`,
      });
    }
    if (j.halt) {
      if (seat.state === 'running') await host.pauseRunning(j.seat, `disk ${j.halt}`);
      for (const ref of seat.refs) await driver.halt(ref);
      row.halted = 1;
      row.halted_reason = j.halt;
      host.record(j.seat, 'disk-halt', { reason: j.halt, bytes: j.bytes, quotaBytes: quota, hostFreeBytes: free });
      out.halted.push({ seat: j.seat, reason: j.halt, bytes: j.bytes });
      dlog.warn({ session, seat: j.seat, bytes: j.bytes, quota, reason: j.halt, hostFreeBytes: free }, 'seat halted by the disk watch');
      host.say(
        j.halt === 'quota'
          ? { zh: `考位 ${j.seat} 已达磁盘配额，其进程已全部暂停`, en: `seat ${j.seat} reached its disk quota: every process of it is stopped` }
          : { zh: `主机可用空间低于保留量，仍在写入的考位 ${j.seat} 已暂停`, en: `the host is below its disk reserve: seat ${j.seat}, still writing, is stopped` },
      );
    }
    writeDiskRow(db, row);
  }
  return out;
}
