import { describe, expect, it } from 'vitest';
import { tempSeat } from './__helpers__/temp-seat.js';
import { gradeCheck, PROBE_KINDS, PROBES, ProbeParamsSchema, type ProbeParams } from './index.js';

describe('probe registry', () => {
  it('each kind’s probe validates exactly the task schema’s parameters for its kind', () => {
    expect(ProbeParamsSchema.options).toHaveLength(PROBE_KINDS.length);
    for (const def of PROBE_KINDS) {
      expect(def.probe.kind).toBe(def.kind);
      const member = ProbeParamsSchema.options.find((o) => o.shape.kind.value === def.kind);
      expect(def.params, def.kind).toBe(member);
      expect(PROBES[def.kind].kind).toBe(def.kind);
      expect(PROBES[def.kind].params, def.kind).toBe(member);
    }
  });

  it('grades a parsed check, and a kind without a probe is an error, not a fail', async () => {
    const seat = await tempSeat();
    try {
      const file = await gradeCheck(seat, ProbeParamsSchema.parse({ kind: 'file', path: '/etc/hostname', expect: { exists: false } }));
      expect(file.status).toBe('pass');
      const gpuCheck = ProbeParamsSchema.parse({ kind: 'nvidia-smi' });
      // Without nvidia-smi on the host: error, never a fail; on a GPU host the temp seat holds no GPU memory.
      const gpu = await gradeCheck(seat, gpuCheck);
      if (gpu.status === 'error') expect(gpu.error?.code).toBe('PROBE_NO_GPU');
      else expect(gpu.status).toBe('fail');
      // Every kind of the task schema has its probe; parameters that did not come through it may name another.
      const missing = await gradeCheck(seat, { ...gpuCheck, kind: 'nvidia-smi-next' } as unknown as ProbeParams);
      expect(missing.status).toBe('error');
      expect(missing.error?.code).toBe('PROBE_KIND_UNAVAILABLE');
    } finally {
      await seat.cleanup();
    }
  });
});
