import { describe, expect, it } from 'vitest';
import { formatCidr, overlaps, parseCidr, pickFreeSubnet } from './subnet-pool.js';

describe('seat subnet pool', () => {
  it('parses and normalises CIDRs, rejecting nonsense', () => {
    expect(formatCidr(parseCidr('10.213.5.77/24')!)).toBe('10.213.5.0/24');
    expect(parseCidr('10.213.0.0/33')).toBeNull();
    expect(parseCidr('300.1.1.1/8')).toBeNull();
    expect(parseCidr('fd00::/64')).toBeNull();
  });

  it('detects overlap both ways and adjacency as no overlap', () => {
    expect(overlaps(parseCidr('10.0.0.0/8')!, parseCidr('10.213.0.64/26')!)).toBe(true);
    expect(overlaps(parseCidr('10.213.0.64/26')!, parseCidr('10.0.0.0/8')!)).toBe(true);
    expect(overlaps(parseCidr('10.213.0.0/26')!, parseCidr('10.213.0.64/26')!)).toBe(false);
  });

  it('hands out the first free subnet, skipping used and overlapping ones', () => {
    expect(pickFreeSubnet('10.213.0.0/16', 26, [])).toBe('10.213.0.0/26');
    expect(pickFreeSubnet('10.213.0.0/16', 26, ['10.213.0.0/26', '10.213.0.64/26'])).toBe('10.213.0.128/26');
    // A foreign network covering the first /24 of the pool.
    expect(pickFreeSubnet('10.213.0.0/16', 26, ['10.213.0.0/24', '172.17.0.0/16'])).toBe('10.213.1.0/26');
  });

  it('holds 64 session networks (/22) in a /16 and says when it is full', () => {
    const used: string[] = [];
    for (let i = 0; i < 64; i++) {
      const s = pickFreeSubnet('10.213.0.0/16', 22, used);
      expect(s).not.toBeNull();
      used.push(s!);
    }
    expect(new Set(used).size).toBe(64);
    expect(pickFreeSubnet('10.213.0.0/16', 22, used)).toBeNull();
  });
});
