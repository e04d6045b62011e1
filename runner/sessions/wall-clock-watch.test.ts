import { describe, expect, it } from 'vitest';
import { WallClockWatch } from './wall-clock-watch.js';

function fakeClocks(): { wall: number; mono: number; sources: { wall: () => number; monotonic: () => number } } {
  const c = { wall: 1_765_000_000_000, mono: 5_000, sources: { wall: () => c.wall, monotonic: () => c.mono } };
  return c;
}

describe('WallClockWatch', () => {
  it('time passing on both clocks is no jump, nor is scheduling noise within the tolerance', () => {
    const c = fakeClocks();
    const w = new WallClockWatch(c.sources);
    c.wall += 1_000;
    c.mono += 1_000;
    expect(w.check()).toBe(0);
    c.wall += 2_900; // a tick that came 1.9 s late on the wall clock only
    c.mono += 1_000;
    expect(w.check()).toBe(0);
  });

  it('the wall clock set forwards or back is reported once, by how much', () => {
    const c = fakeClocks();
    const w = new WallClockWatch(c.sources);
    c.wall += 3_600_000 + 1_000;
    c.mono += 1_000;
    expect(w.check()).toBe(3_600_000);
    c.wall += 1_000;
    c.mono += 1_000;
    expect(w.check()).toBe(0);
    c.wall -= 600_000 - 1_000;
    c.mono += 1_000;
    expect(w.check()).toBe(-600_000);
  });
});
