import { mkdtempSync, rmSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultDiskPolicy, diskLevel, hostFreeBytes, judgeDisk, reserveCheck, type SeatDiskRow } from './disk-watch.js';

const MiB = 1024 * 1024;
const policy = { ...defaultDiskPolicy(), seatQuotaMiB: 100, warnPercent: 90, reserveGiB: 1, graceSeconds: 60 };

const row = (seat: string, bytes: number, extra: Partial<SeatDiskRow> = {}): SeatDiskRow => ({
  session_id: 's', seat_id: seat, bytes, quota_bytes: 100 * MiB, level: diskLevel(bytes, 100 * MiB, 90), halted: 0, halted_reason: null, released_at: null, sampled_at: 0, ...extra,
});

describe('disk watch policy', () => {
  it('defaults come from the config schema', () => {
    expect(defaultDiskPolicy()).toEqual({ seatQuotaMiB: 2048, warnPercent: 90, sampleSeconds: 15, reserveGiB: 10, graceSeconds: 120 });
  });

  it('levels: under the warn share ok, from it warn, at the quota over', () => {
    expect(diskLevel(89 * MiB, 100 * MiB, 90)).toBe('ok');
    expect(diskLevel(90 * MiB, 100 * MiB, 90)).toBe('warn');
    expect(diskLevel(100 * MiB - 1, 100 * MiB, 90)).toBe('warn');
    expect(diskLevel(100 * MiB, 100 * MiB, 90)).toBe('over');
  });

  it('halts a seat at its quota once, says when its level changes, and leaves the others', () => {
    const prev = new Map([['a', row('a', 50 * MiB)], ['b', row('b', 95 * MiB)]]);
    const j = judgeDisk([{ seat: 'a', bytes: 120 * MiB }, { seat: 'b', bytes: 96 * MiB }, { seat: 'c', bytes: 1 * MiB }], prev, policy, 100 * 1024 * MiB, 1_000);
    expect(j).toEqual([
      { seat: 'a', bytes: 120 * MiB, level: 'over', halt: 'quota', levelChanged: true },
      { seat: 'b', bytes: 96 * MiB, level: 'warn', halt: null, levelChanged: false },
      { seat: 'c', bytes: 1 * MiB, level: 'ok', halt: null, levelChanged: true },
    ]);
    // Already halted: not halted again.
    const again = judgeDisk([{ seat: 'a', bytes: 130 * MiB }], new Map([['a', row('a', 120 * MiB, { halted: 1, halted_reason: 'quota' })]]), policy, null, 2_000);
    expect(again[0]!.halt).toBeNull();
  });

  it('after a release the seat has its grace, then is stopped again while still over', () => {
    const released = new Map([['a', row('a', 120 * MiB, { released_at: 10_000 })]]);
    expect(judgeDisk([{ seat: 'a', bytes: 121 * MiB }], released, policy, null, 10_000 + 59_000)[0]!.halt).toBeNull();
    expect(judgeDisk([{ seat: 'a', bytes: 121 * MiB }], released, policy, null, 10_000 + 60_000)[0]!.halt).toBe('quota');
  });

  it('below the host reserve, every seat that grew is stopped, and only those', () => {
    const prev = new Map([['grows', row('grows', 10 * MiB)], ['still', row('still', 10 * MiB)]]);
    const samples = [{ seat: 'grows', bytes: 11 * MiB }, { seat: 'still', bytes: 10 * MiB }, { seat: 'new', bytes: 5 * MiB }];
    const short = judgeDisk(samples, prev, policy, 1024 * MiB - 1, 0);
    expect(short.map((x) => [x.seat, x.halt])).toEqual([['grows', 'host-reserve'], ['still', null], ['new', null]]);
    const enough = judgeDisk(samples, prev, policy, 1024 * MiB, 0);
    expect(enough.every((x) => x.halt === null)).toBe(true);
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
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
