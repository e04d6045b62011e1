import { mkdtempSync, rmSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultDiskPolicy, diskLevel, hostFree, hostFreeBytes, inodeReserveCheck, judgeDisk, reserveCheck, seatLevel, type HostFree, type SeatDiskRow } from './disk-watch.js';

const MiB = 1024 * 1024;
const policy = { ...defaultDiskPolicy(), seatQuotaMiB: 100, seatQuotaFiles: 1000, warnPercent: 90, reserveGiB: 1, reserveFiles: 5000, graceSeconds: 60 };
const free = (bytes: number | null, files: number | null = null): HostFree => ({ bytes, files });

const row = (seat: string, bytes: number, extra: Partial<SeatDiskRow> = {}): SeatDiskRow => ({
  session_id: 's', seat_id: seat, bytes, quota_bytes: 100 * MiB, files: 10, quota_files: 1000, level: diskLevel(bytes, 100 * MiB, 90), halted: 0, halted_reason: null, released_at: null, sampled_at: 0, ...extra,
});

describe('disk watch policy', () => {
  it('defaults come from the config schema', () => {
    expect(defaultDiskPolicy()).toEqual({ seatQuotaMiB: 2048, seatQuotaFiles: 200_000, warnPercent: 90, sampleSeconds: 15, reserveGiB: 10, reserveFiles: 500_000, graceSeconds: 120 });
  });

  it('levels: under the warn share ok, from it warn, at the quota over', () => {
    expect(diskLevel(89 * MiB, 100 * MiB, 90)).toBe('ok');
    expect(diskLevel(90 * MiB, 100 * MiB, 90)).toBe('warn');
    expect(diskLevel(100 * MiB - 1, 100 * MiB, 90)).toBe('warn');
    expect(diskLevel(100 * MiB, 100 * MiB, 90)).toBe('over');
  });

  it('halts a seat at its quota once, says when its level changes, and leaves the others', () => {
    const prev = new Map([['a', row('a', 50 * MiB)], ['b', row('b', 95 * MiB)]]);
    const j = judgeDisk([{ seat: 'a', bytes: 120 * MiB, files: 10 }, { seat: 'b', bytes: 96 * MiB, files: 10 }, { seat: 'c', bytes: 1 * MiB, files: null }], prev, policy, free(100 * 1024 * MiB), 1_000);
    expect(j).toEqual([
      { seat: 'a', bytes: 120 * MiB, files: 10, level: 'over', halt: 'quota', levelChanged: true },
      { seat: 'b', bytes: 96 * MiB, files: 10, level: 'warn', halt: null, levelChanged: false },
      { seat: 'c', bytes: 1 * MiB, files: null, level: 'ok', halt: null, levelChanged: true },
    ]);
    // Already halted: not halted again.
    const again = judgeDisk([{ seat: 'a', bytes: 130 * MiB, files: 10 }], new Map([['a', row('a', 120 * MiB, { halted: 1, halted_reason: 'quota' })]]), policy, free(null), 2_000);
    expect(again[0]!.halt).toBeNull();
  });

  it('after a release the seat has its grace, then is stopped again while still over', () => {
    const released = new Map([['a', row('a', 120 * MiB, { released_at: 10_000 })]]);
    expect(judgeDisk([{ seat: 'a', bytes: 121 * MiB, files: 10 }], released, policy, free(null), 10_000 + 59_000)[0]!.halt).toBeNull();
    expect(judgeDisk([{ seat: 'a', bytes: 121 * MiB, files: 10 }], released, policy, free(null), 10_000 + 60_000)[0]!.halt).toBe('quota');
  });

  it('below the host reserve, every seat that grew is stopped, and only those', () => {
    const prev = new Map([['grows', row('grows', 10 * MiB)], ['still', row('still', 10 * MiB)]]);
    const samples = [{ seat: 'grows', bytes: 11 * MiB, files: 10 }, { seat: 'still', bytes: 10 * MiB, files: 10 }, { seat: 'new', bytes: 5 * MiB, files: 10 }];
    const short = judgeDisk(samples, prev, policy, free(1024 * MiB - 1), 0);
    expect(short.map((x) => [x.seat, x.halt])).toEqual([['grows', 'host-reserve'], ['still', null], ['new', null]]);
    const enough = judgeDisk(samples, prev, policy, free(1024 * MiB), 0);
    expect(enough.every((x) => x.halt === null)).toBe(true);
  });

  it('files: a seat at its quota of files is over however few bytes it holds; an uncounted seat is judged on bytes', () => {
    expect(seatLevel({ bytes: 1, files: 899 }, policy)).toBe('ok');
    expect(seatLevel({ bytes: 1, files: 900 }, policy)).toBe('warn');
    expect(seatLevel({ bytes: 1, files: 1000 }, policy)).toBe('over');
    expect(seatLevel({ bytes: 95 * MiB, files: 1 }, policy)).toBe('warn');
    expect(seatLevel({ bytes: 1, files: null }, policy)).toBe('ok');
    const j = judgeDisk([{ seat: 'a', bytes: 1024, files: 1000 }], new Map([['a', row('a', 1024)]]), policy, free(null), 0);
    expect(j[0]).toMatchObject({ level: 'over', halt: 'quota' });
  });

  it('below the host inode reserve, the seats that made files are stopped, not those that only wrote bytes', () => {
    const prev = new Map([['files', row('files', 10 * MiB, { files: 100 })], ['bytes', row('bytes', 10 * MiB, { files: 100 })]]);
    const samples = [{ seat: 'files', bytes: 10 * MiB, files: 150 }, { seat: 'bytes', bytes: 20 * MiB, files: 100 }];
    expect(judgeDisk(samples, prev, policy, free(100 * 1024 * MiB, 4999), 0).map((x) => [x.seat, x.halt])).toEqual([['files', 'host-reserve'], ['bytes', null]]);
    expect(judgeDisk(samples, prev, policy, free(100 * 1024 * MiB, 5000), 0).every((x) => x.halt === null)).toBe(true);
    expect(inodeReserveCheck(5000 + 3 * 1000, 3, policy)).toEqual({ ok: true, freeFiles: 8000, requiredFiles: 8000 });
    expect(inodeReserveCheck(7999, 3, policy).ok).toBe(false);
  });

  it('opening seats leaves the reserve even if each fills its quota', () => {
    expect(reserveCheck(1024 * MiB + 300 * MiB, 3, policy)).toEqual({ ok: true, freeBytes: 1324 * MiB, requiredBytes: 1324 * MiB });
    expect(reserveCheck(1024 * MiB + 300 * MiB - 1, 3, policy).ok).toBe(false);
  });

  it('host free space is the lower of the filesystems that can be measured', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dl-disk-'));
    try {
      const s = await statfs(dir);
      const free = await hostFreeBytes([dir, join(dir, 'not-here')]);
      expect(free).not.toBeNull();
      // Another writer may take or free a little between the two readings.
      expect(Math.abs(free! - s.bavail * s.bsize)).toBeLessThan(256 * MiB);
      expect(await hostFreeBytes([join(dir, 'not-here')])).toBeNull();
      const both = await hostFree([dir]);
      if (s.files > 0) expect(Math.abs(both.files! - s.ffree)).toBeLessThan(100_000);
      else expect(both.files).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
