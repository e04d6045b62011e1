import { describe, expect, it } from 'vitest';
import { DeploylabError } from '../core/errors.js';
import { loadExamPaper } from './paper.js';
import { checkCapacity, roomDemand } from './capacity.js';

const junior = loadExamPaper('junior-v1').tasks;

describe('room capacity', () => {
  it('counts one sandbox per candidate and task, and each task’s memory limit (three times for a seat daemon’s task)', () => {
    const d = roomDemand(10, junior);
    expect(d.sandboxes).toBe(10 * junior.length);
    const perSeat = junior.reduce((s, t) => s + t.task.needs.memoryMiB * (t.task.needs.profile === 'docker-in-seat' ? 3 : 1), 0);
    expect(d.memoryCeilingMiB).toBe(10 * perSeat);
    expect(junior.some((t) => t.task.needs.profile === 'docker-in-seat')).toBe(true);
  });

  it('refuses a roster the session network cannot hold, naming the figures and how many candidates fit', () => {
    const max = 2 ** 10 - 3 - 8; // a /22, as the Docker driver has it
    const fits = Math.floor(max / junior.length);
    expect(() => checkCapacity(roomDemand(fits, junior), { sandboxesPerSession: max, hostMemoryMiB: 1e9 })).not.toThrow();
    let err: unknown;
    try {
      checkCapacity(roomDemand(fits + 1, junior), { sandboxesPerSession: max, hostMemoryMiB: 1e9 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DeploylabError);
    const e = err as DeploylabError;
    expect(e.code).toBe('SESSION_CAPACITY');
    expect(e.details).toMatchObject({ sandboxes: (fits + 1) * junior.length, sandboxesPerSession: max, candidatesPerSession: fits });
    expect(e.hint?.zh).toContain(`最多 ${fits} 名考生`);
  });

  it('a backend without a per-session bound takes any roster; memory limits past the host only warn', () => {
    expect(checkCapacity(roomDemand(10_000, junior), { sandboxesPerSession: null, hostMemoryMiB: 1e12 })).toEqual([]);
    const w = checkCapacity(roomDemand(3, junior), { sandboxesPerSession: 1000, hostMemoryMiB: 1024 });
    expect(w).toHaveLength(1);
    expect(w[0]!.zh).toContain('超过本机内存 1.0 GiB');
  });
});
