import { describe, expect, it } from 'vitest';
import { judgeLimitReq, nginxRate, simulateLimitReq, type LimitReqSpec } from './leaky-bucket.js';

const at = (n: number, t = 0): number[] => Array.from({ length: n }, () => t);

describe('limit_req arithmetic: worked examples', () => {
  it('rate=1r/s burst=5 nodelay, 10 simultaneous → 6 accepted, 4 rejected', () => {
    const r = simulateLimitReq({ rate: { count: 1, per: 's' }, burst: 5, nodelay: true }, at(10));
    expect([r.accepted, r.delayed, r.rejected]).toEqual([6, 0, 4]);
    expect(r.steps.map((s) => s.excess)).toEqual([0, 1000, 2000, 3000, 4000, 5000, 6000, 6000, 6000, 6000]);
  });

  it('the same without nodelay: 1 at once, 5 delayed by 1 s steps, 4 rejected', () => {
    const r = simulateLimitReq({ rate: { count: 1, per: 's' }, burst: 5 }, at(10));
    expect([r.accepted, r.delayed, r.rejected]).toEqual([1, 5, 4]);
    expect(r.steps.filter((s) => s.fate === 'delayed').map((s) => s.delayMs)).toEqual([1000, 2000, 3000, 4000, 5000]);
  });

  it('no burst: only the first of a simultaneous pair passes', () => {
    const r = simulateLimitReq({ rate: { count: 10, per: 's' }, burst: 0 }, [0, 0, 100, 150, 250]);
    expect(r.steps.map((s) => s.fate)).toEqual(['accepted', 'rejected', 'accepted', 'rejected', 'accepted']);
  });

  // The NGINX blog's "Rate Limiting with NGINX": rate=10r/s burst=20.
  it('10r/s burst=20: 22 simultaneous → 1 forwarded, 20 queued at 100 ms steps, 1 rejected', () => {
    const r = simulateLimitReq({ rate: { count: 10, per: 's' }, burst: 20 }, at(22));
    expect([r.accepted, r.delayed, r.rejected]).toEqual([1, 20, 1]);
    const delays = r.steps.filter((s) => s.fate === 'delayed').map((s) => s.delayMs);
    expect(delays[0]).toBe(100);
    expect(delays[19]).toBe(2000);
  });

  it('10r/s burst=20 nodelay: 25 simultaneous → 21 forwarded, 4 rejected', () => {
    const r = simulateLimitReq({ rate: { count: 10, per: 's' }, burst: 20, nodelay: true }, at(25));
    expect([r.accepted, r.rejected]).toEqual([21, 4]);
  });

  it('…then 20 more after 101 ms → 1 forwarded, 19 rejected; after 501 ms → 5 and 15', () => {
    const spec: LimitReqSpec = { rate: { count: 10, per: 's' }, burst: 20, nodelay: true };
    const after101 = simulateLimitReq(spec, [...at(21), ...at(20, 101)]).steps.slice(21);
    expect(after101.filter((s) => s.fate === 'accepted')).toHaveLength(1);
    const after501 = simulateLimitReq(spec, [...at(21), ...at(20, 501)]).steps.slice(21);
    expect(after501.filter((s) => s.fate === 'accepted')).toHaveLength(5);
    expect(after501.filter((s) => s.fate === 'rejected')).toHaveLength(15);
  });

  it('delay=8 burst=12 at 5r/s: first request free, 8 more without delay, 4 delayed, rest rejected', () => {
    const r = simulateLimitReq({ rate: { count: 5, per: 's' }, burst: 12, delay: 8 }, at(20));
    expect([r.accepted, r.delayed, r.rejected]).toEqual([9, 4, 7]);
    expect(r.steps.filter((s) => s.fate === 'delayed').map((s) => s.delayMs)).toEqual([200, 400, 600, 800]);
  });

  it('r/m rates use nginx’s truncated integer rate: 30r/m lets one through every 2 s', () => {
    expect(nginxRate({ count: 30, per: 'm' })).toBe(500);
    expect(nginxRate({ count: 7, per: 'm' })).toBe(116);
    const r = simulateLimitReq({ rate: { count: 30, per: 'm' }, burst: 0 }, [0, 1000, 1999, 2000, 3999, 4000]);
    expect(r.steps.map((s) => s.fate)).toEqual(['accepted', 'rejected', 'rejected', 'accepted', 'rejected', 'accepted']);
  });

  it('a key with earlier traffic starts from its stored excess', () => {
    const spec: LimitReqSpec = { rate: { count: 1, per: 's' }, burst: 5, nodelay: true };
    const r = simulateLimitReq(spec, at(10, 2000), { excess: 5000, lastMs: 0 });
    // 2 s of leak frees two slots: excess 4000, 5000 accepted, then rejected.
    expect([r.accepted, r.rejected]).toEqual([2, 8]);
  });

  it('rejects arrivals out of order and rates below resolution', () => {
    expect(() => simulateLimitReq({ rate: { count: 1, per: 's' }, burst: 0 }, [5, 4])).toThrow(RangeError);
    expect(() => simulateLimitReq({ rate: { count: 0, per: 'm' }, burst: 0 }, [0])).toThrow(RangeError);
  });
});

describe('limit_req judgement with timing noise', () => {
  const spec: LimitReqSpec = { rate: { count: 10, per: 's' }, burst: 5, nodelay: true };
  // 20 requests 20 ms apart: each adds 1000 and leaks 200, so 7 pass (excess 0..4800), then one
  // more each time the excess has leaked back to 5000 (at 200 ms and 300 ms): 9.
  const sent = Array.from({ length: 20 }, (_, i) => i * 20);

  it('the exact replay is consistent, a split far from it is not', () => {
    const exact = simulateLimitReq(spec, sent);
    const served = exact.accepted + exact.delayed;
    expect(served).toBe(9);
    expect(judgeLimitReq(spec, sent, { served, rejected: 20 - served }, 5).consistent).toBe(true);
    // No limiting at all (all 20 through) and a limiter far too strict (1 through) are both wrong.
    expect(judgeLimitReq(spec, sent, { served: 20, rejected: 0 }, 5).consistent).toBe(false);
    expect(judgeLimitReq(spec, sent, { served: 1, rejected: 19 }, 5).consistent).toBe(false);
  });

  it('jitter widens the accepted range, and counts must add up to what was sent', () => {
    const tight = judgeLimitReq(spec, sent, { served: 10, rejected: 10 }, 0);
    expect(tight.servedRange).toEqual([9, 9]);
    expect(tight.consistent).toBe(false);
    const loose = judgeLimitReq(spec, sent, { served: 10, rejected: 10 }, 5);
    expect(loose.servedRange[0]).toBeLessThan(9);
    expect(loose.servedRange[1]).toBeGreaterThan(9);
    expect(loose.consistent).toBe(true);
    expect(judgeLimitReq(spec, sent, { served: 10, rejected: 9 }, 5).consistent).toBe(false);
  });

  it('property: more time between requests never lets fewer through', () => {
    let seed = 42;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let trial = 0; trial < 2000; trial++) {
      const s: LimitReqSpec = {
        rate: { count: 1 + Math.floor(rnd() * 20), per: rnd() < 0.2 ? 'm' : 's' },
        burst: Math.floor(rnd() * 6),
        nodelay: rnd() < 0.5,
      };
      const gaps = Array.from({ length: 15 }, () => Math.floor(rnd() * 300));
      const i = Math.floor(rnd() * gaps.length);
      const wider = gaps.map((g, j) => (j === i ? g + 1 + Math.floor(rnd() * 200) : g));
      const times = (gs: number[]): number[] => gs.reduce<number[]>((acc, g) => [...acc, (acc[acc.length - 1] ?? 0) + g], []);
      const a = simulateLimitReq(s, times(gaps));
      const b = simulateLimitReq(s, times(wider));
      expect(b.accepted + b.delayed).toBeGreaterThanOrEqual(a.accepted + a.delayed);
    }
  });
});
