import { describe, expect, it } from 'vitest';
import { DEFAULT_SUBNET_PREFIX, sandboxesPerSessionFor } from './docker-network.js';

describe('docker session network capacity', () => {
  it('leaves out the network, broadcast and gateway addresses and those kept for in-room services', () => {
    expect(sandboxesPerSessionFor(DEFAULT_SUBNET_PREFIX)).toBe(1024 - 3 - 8);
    expect(sandboxesPerSessionFor(27)).toBe(32 - 3 - 8);
  });
});
