import { describe, expect, it } from 'vitest';
import { CONTAINER_LOG_CONFIG, SEAT_SHM_BYTES, hostConfigBase } from './docker-seat-objects.js';
import { SEAT_CAPABILITIES, parseSeatPlan } from './driver.js';

describe('docker seat containers: the host config every container of a seat shares', () => {
  const plan = parseSeatPlan({ session: 's1', seat: 'a', task: 't', workspace: { image: 'img' }, resources: { cpus: 1.5, memoryMiB: 512, pids: 128 } });

  it('applies the plan limits with no swap and no added privilege', () => {
    const hc = hostConfigBase(plan, 'dl-s1-net');
    expect(hc).toMatchObject({
      NetworkMode: 'dl-s1-net',
      NanoCpus: 1_500_000_000,
      Memory: 512 * 1024 * 1024,
      MemorySwap: 512 * 1024 * 1024,
      PidsLimit: 128,
      CapDrop: ['ALL'],
      CapAdd: SEAT_CAPABILITIES,
      Privileged: false,
      Init: true,
      RestartPolicy: { Name: 'no' },
      ShmSize: SEAT_SHM_BYTES,
    });
  });

  it('bounds the logs with a copy of the shared log config', () => {
    const hc = hostConfigBase(plan, 'container:abc');
    expect(hc.LogConfig).toEqual(CONTAINER_LOG_CONFIG);
    expect(hc.LogConfig?.Config).not.toBe(CONTAINER_LOG_CONFIG.Config);
  });
});
