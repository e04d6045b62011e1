import { describe, expect, it } from 'vitest';
import { AttemptLimiter } from './rate-limit.js';

describe('AttemptLimiter', () => {
  it('allows max attempts per window, then says how long to wait, then resets', () => {
    let t = 1000;
    const l = new AttemptLimiter({ max: 3, windowMs: 60_000, maxKeys: 10, now: () => t });
    expect([l.hit('a'), l.hit('a'), l.hit('a')]).toEqual([0, 0, 0]);
    t += 10_000;
    expect(l.hit('a')).toBe(50_000);
    expect(l.hit('b')).toBe(0); // other keys are independent
    t += 50_000;
    expect(l.hit('a')).toBe(0);
  });

  it('pending says whether the window is used up without counting', () => {
    let t = 0;
    const l = new AttemptLimiter({ max: 2, windowMs: 1000, maxKeys: 10, now: () => t });
    expect(l.pending('a')).toBe(0);
    l.hit('a');
    expect(l.pending('a')).toBe(0);
    l.hit('a');
    t = 300;
    expect([l.pending('a'), l.pending('a')]).toEqual([700, 700]);
    t = 1000;
    expect(l.pending('a')).toBe(0);
  });

  it('stays bounded under many keys', () => {
    const l = new AttemptLimiter({ max: 1, windowMs: 60_000, maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) l.hit(`10.0.${i >> 8}.${i & 255}`);
    expect(l.size).toBe(100);
  });
});
