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

/** The worse of the bytes' level and the files' (when the files could be counted). */
export function seatLevel(s: { bytes: number; files: number | null }, p: DiskPolicy): DiskLevel {
  const b = diskLevel(s.bytes, quotaBytes(p), p.warnPercent);
  const f = s.files === null ? 'ok' : diskLevel(s.files, p.seatQuotaFiles, p.warnPercent);
  return DISK_LEVELS[Math.max(DISK_LEVELS.indexOf(b), DISK_LEVELS.indexOf(f))]!;
}

/** The stored reading of one seat (the state table `seat_disk`, updated in place). */
export interface SeatDiskRow {
  session_id: string;
  seat_id: string;
  bytes: number;
  quota_bytes: number;
  /** Names in its layers and volumes; null where they could not be counted. */
  files: number | null;
  quota_files: number;
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
  files: number | null;
}

/** The host's free space: bytes and inodes, each null where it cannot be measured. */
export interface HostFree {
  bytes: number | null;
  files: number | null;
}

export interface DiskJudgement {
  seat: string;
  bytes: number;
  files: number | null;
  level: DiskLevel;
  /** Set when this step stops the seat's processes. */
  halt: 'quota' | 'host-reserve' | null;
  /** The level is new since the last reading (warn the candidate and the examiner once). */
  levelChanged: boolean;
}

/**
 * One step of the watch. A seat is stopped when it reaches its quota of bytes or of files
 * (outside the grace after a release), or when the host is below its reserve of either and the
 * seat grew in that since the last reading.
 */
export function judgeDisk(
  samples: readonly DiskSample[],
  previous: ReadonlyMap<string, SeatDiskRow>,
  policy: DiskPolicy,
  free: HostFree,
  now: number,
): DiskJudgement[] {
  const shortBytes = free.bytes !== null && free.bytes < reserveBytes(policy);
  const shortFiles = free.files !== null && free.files < policy.reserveFiles;
  return samples.map((s) => {
    const prev = previous.get(s.seat);
    const level = seatLevel(s, policy);
    const inGrace = prev?.released_at != null && now - prev.released_at < policy.graceSeconds * 1000;
    const already = prev?.halted === 1;
    const grew = prev !== undefined && ((shortBytes && s.bytes > prev.bytes) || (shortFiles && s.files !== null && s.files > (prev.files ?? 0)));
    let halt: DiskJudgement['halt'] = null;
    if (!already && !inGrace) {
      if (level === 'over') halt = 'quota';
      else if (grew) halt = 'host-reserve';
    }
    return { seat: s.seat, bytes: s.bytes, files: s.files, level, halt, levelChanged: prev?.level !== level };
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

/** The same for inodes. */
export function inodeReserveCheck(freeFiles: number, seats: number, policy: DiskPolicy): { ok: boolean; freeFiles: number; requiredFiles: number } {
  const requiredFiles = policy.reserveFiles + seats * policy.seatQuotaFiles;
  return { ok: freeFiles >= requiredFiles, freeFiles, requiredFiles };
}

export function readDiskRows(db: DB, session: string): Map<string, SeatDiskRow> {
  const rows = db.prepare('SELECT * FROM seat_disk WHERE session_id = ?').all(session) as SeatDiskRow[];
  return new Map(rows.map((r) => [r.seat_id, r]));
}

export function writeDiskRow(db: DB, row: SeatDiskRow): void {
  db.prepare(
    `INSERT INTO seat_disk (session_id, seat_id, bytes, quota_bytes, files, quota_files, level, halted, halted_reason, released_at, sampled_at)
     VALUES (@session_id, @seat_id, @bytes, @quota_bytes, @files, @quota_files, @level, @halted, @halted_reason, @released_at, @sampled_at)
     ON CONFLICT (session_id, seat_id) DO UPDATE SET bytes = @bytes, quota_bytes = @quota_bytes, files = @files, quota_files = @quota_files, level = @level,
       halted = @halted, halted_reason = @halted_reason, released_at = @released_at, sampled_at = @sampled_at`,
  ).run(row);
}

export const formatMiB = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

/**
 * Free bytes and inodes where seats and the store live: the lower of the data dir's and the
 * engine's (when local) filesystems. A filesystem without an inode table (ffree 0 and files 0,
 * e.g. btrfs reports none) gives no inode figure.
 */
export async function hostFree(paths: readonly string[]): Promise<HostFree> {
  let bytes: number | null = null;
  let files: number | null = null;
  for (const p of paths) {
    try {
      const s = await statfs(p);
      const free = s.bavail * s.bsize;
      bytes = bytes === null ? free : Math.min(bytes, free);
      if (s.files > 0) files = files === null ? s.ffree : Math.min(files, s.ffree);
    } catch {
      // A remote engine's directory is not here: the data dir is what we can measure.
    }
  }
  return { bytes, files };
}

/** Free bytes alone (see hostFree). */
export async function hostFreeBytes(paths: readonly string[]): Promise<number | null> {
  return (await hostFree(paths)).bytes;
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
  halted: { seat: string; reason: 'quota' | 'host-reserve'; bytes: number; files: number | null }[];
  hostFreeBytes: number | null;
  hostFreeFiles: number | null;
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
  free: HostFree,
  now: number,
): Promise<DiskStepResult> {
  const usage = new Map(sampled.map((u) => [u.ref.seat, u]));
  const seats = host.seats().filter((s) => !['pending', 'removed', 'failed'].includes(s.state));
  const samples = seats.map((s) => {
    const parts = s.refs.map((r) => usage.get(r.seat));
    // A sandbox whose files could not be counted leaves the seat's count unknown, not low.
    const files = parts.some((u) => u !== undefined && u.files === null) ? null : parts.reduce((n, u) => n + (u?.files ?? 0), 0);
    return { seat: s.seat, bytes: parts.reduce((n, u) => n + (u?.bytes ?? 0), 0), files };
  });
  const previous = readDiskRows(db, session);
  const quota = quotaBytes(policy);
  const quotaFiles = policy.seatQuotaFiles;
  const out: DiskStepResult = { sampled: samples.length, halted: [], hostFreeBytes: free.bytes, hostFreeFiles: free.files };
  const filesNote = (files: number | null): { zh: string; en: string } =>
    files === null ? { zh: '', en: '' } : { zh: `，文件 ${files} 个（配额 ${quotaFiles}）`, en: `, ${files} files (quota ${quotaFiles})` };
  for (const j of judgeDisk(samples, previous, policy, free, now)) {
    const prev = previous.get(j.seat);
    const seat = seats.find((s) => s.seat === j.seat)!;
    const row: SeatDiskRow = {
      session_id: session, seat_id: j.seat, bytes: j.bytes, quota_bytes: quota, files: j.files, quota_files: quotaFiles, level: j.level,
      halted: prev?.halted ?? 0, halted_reason: prev?.halted_reason ?? null, released_at: prev?.released_at ?? null, sampled_at: now,
    };
    if (j.levelChanged && j.level !== 'ok') {
      dlog.warn({ session, seat: j.seat, bytes: j.bytes, quota, files: j.files, quotaFiles, level: j.level }, 'seat disk near or at its quota');
      const n = filesNote(j.files);
      host.say({
        zh: `考位 ${j.seat} 磁盘用量 ${formatMiB(j.bytes)}，配额 ${formatMiB(quota)}${n.zh}`,
        en: `seat ${j.seat} uses ${formatMiB(j.bytes)} of its ${formatMiB(quota)} disk quota${n.en}`,
      });
    }
    if (j.halt) {
      if (seat.state === 'running') await host.pauseRunning(j.seat, `disk ${j.halt}`);
      for (const ref of seat.refs) await driver.halt(ref);
      row.halted = 1;
      row.halted_reason = j.halt;
      host.record(j.seat, 'disk-halt', { reason: j.halt, bytes: j.bytes, quotaBytes: quota, files: j.files, quotaFiles, hostFreeBytes: free.bytes, hostFreeFiles: free.files });
      out.halted.push({ seat: j.seat, reason: j.halt, bytes: j.bytes, files: j.files });
      dlog.warn({ session, seat: j.seat, bytes: j.bytes, quota, files: j.files, quotaFiles, reason: j.halt, hostFreeBytes: free.bytes, hostFreeFiles: free.files }, 'seat halted by the disk watch');
      host.say(
        j.halt === 'quota'
          ? { zh: `考位 ${j.seat} 已达磁盘配额（容量或文件数），其进程已全部暂停`, en: `seat ${j.seat} reached its disk quota (bytes or files): every process of it is stopped` }
          : { zh: `主机可用空间或 inode 低于保留量，仍在写入的考位 ${j.seat} 已暂停`, en: `the host is below its disk or inode reserve: seat ${j.seat}, still writing, is stopped` },
      );
    }
    writeDiskRow(db, row);
  }
  return out;
}
