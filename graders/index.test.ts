import { describe, expect, it } from 'vitest';
import { ProbeParamsSchema, PROBE_KINDS } from '../runner/tasks/probe-params.js';
import { tempSeat } from './__helpers__/temp-seat.js';
import { gradeCheck, PROBES } from './index.js';

describe('probe registry', () => {
  it('each registered probe validates exactly the task schema’s parameters for its kind', () => {
    for (const [kind, probe] of Object.entries(PROBES)) {
      expect(probe!.kind).toBe(kind);
      expect(PROBE_KINDS).toContain(kind);
      const member = ProbeParamsSchema.options.find((o) => o.shape.kind.value === kind);
      expect(probe!.params, kind).toBe(member);
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
      const registered = PROBES['nvidia-smi'];
      delete PROBES['nvidia-smi'];
      try {
        const missing = await gradeCheck(seat, gpuCheck);
        expect(missing.status).toBe('error');
        expect(missing.error?.code).toBe('PROBE_KIND_UNAVAILABLE');
      } finally {
        PROBES['nvidia-smi'] = registered;
      }
    } finally {
      await seat.cleanup();
    }
  });
});
