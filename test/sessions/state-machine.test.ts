import { describe, expect, it } from 'vitest';
import {
  SEAT_EVENTS,
  SEAT_STATES,
  SESSION_EVENTS,
  SESSION_STATES,
  endsAt,
  extendClock,
  remainingMs,
  seatStep,
  sessionStep,
  startClock,
  stopClock,
} from '../../runner/sessions/state-machine.js';

/** Every legal move, written out independently of the table in the code. */
const SESSION_LEGAL = new Set([
  'planned provision provisioning',
  'provisioning provision provisioning',
  'provisioning provisioned ready',
  'ready start running',
  'ready extend ready',
  'ready freeze frozen',
  'running start running',
  'running pause paused',
  'running extend running',
  'running freeze frozen',
  'running clock-jump running',
  'paused resume running',
  'paused extend paused',
  'paused freeze frozen',
  'frozen grade grading',
  'grading grade grading',
  'grading graded graded',
  'graded grade grading',
  'graded archive archived',
  'archived archive archived',
  'archived reset reset',
  'reset reset reset',
  ...SESSION_STATES.map((s) => `${s} force-reset reset`),
]);

const SEAT_LEGAL = new Set([
  'pending provision provisioning',
  'pending fail failed',
  'provisioning provision provisioning',
  'provisioning provisioned ready',
  'provisioning fail failed',
  'ready start running',
  'ready extend ready',
  'ready freeze frozen',
  'ready fail failed',
  'running pause paused',
  'running extend running',
  'running freeze frozen',
  'running clock-jump running',
  'running disk-release running',
  'paused resume running',
  'paused extend paused',
  'paused freeze frozen',
  'frozen extend frozen',
  'frozen resume running',
  'frozen grade grading',
  'grading grade grading',
  'grading graded graded',
  'graded grade grading',
  'failed provision provisioning',
  ...SEAT_STATES.map((s) => `${s} remove removed`),
  // The disk watch records its stops and releases without moving the seat (a running seat is paused first).
  ...['ready', 'paused', 'frozen', 'grading', 'graded'].flatMap((s) => [`${s} disk-halt ${s}`, `${s} disk-release ${s}`]),
]);

describe('session state machine', () => {
  it('allows exactly the legal moves, over every state × event', () => {
    let legal = 0;
    for (const s of SESSION_STATES) {
      for (const e of SESSION_EVENTS) {
        const step = sessionStep(s, e);
        const want = [...SESSION_LEGAL].find((l) => l.startsWith(`${s} ${e} `));
        if (want) {
          legal++;
          expect(step, `${s} --${e}->`).toEqual({ ok: true, to: want.split(' ')[2] });
        } else {
          expect(step.ok, `${s} --${e}-> must be refused`).toBe(false);
        }
      }
    }
    expect(legal).toBe(SESSION_LEGAL.size);
  });

  it('walks the whole exam', () => {
    let s: (typeof SESSION_STATES)[number] = 'planned';
    for (const e of ['provision', 'provisioned', 'start', 'pause', 'resume', 'freeze', 'grade', 'graded', 'archive', 'reset'] as const) {
      const step = sessionStep(s, e);
      if (!step.ok) throw new Error(step.reason);
      s = step.to;
    }
    expect(s).toBe('reset');
  });

  it('refuses the shortcuts that would lose work', () => {
    expect(sessionStep('running', 'grade').ok).toBe(false);
    expect(sessionStep('graded', 'reset').ok).toBe(false);
    expect(sessionStep('frozen', 'start').ok).toBe(false);
    expect(sessionStep('reset', 'provision').ok).toBe(false);
  });
});

describe('seat state machine', () => {
  it('allows exactly the legal moves, over every state × event', () => {
    let legal = 0;
    for (const s of SEAT_STATES) {
      for (const e of SEAT_EVENTS) {
        const step = seatStep(s, e);
        const want = [...SEAT_LEGAL].find((l) => l.startsWith(`${s} ${e} `));
        if (want) {
          legal++;
          expect(step, `${s} --${e}->`).toEqual({ ok: true, to: want.split(' ')[2] });
        } else {
          expect(step.ok, `${s} --${e}-> must be refused`).toBe(false);
        }
      }
    }
    expect(legal).toBe(SEAT_LEGAL.size);
  });
});

describe('seat clock', () => {
  it('counts only running time, extends, and ends', () => {
    let c = { allowedMs: 60_000, usedMs: 0, runningSince: null as number | null };
    expect(remainingMs(c, 1_000)).toBe(60_000);
    expect(endsAt(c)).toBeNull();
    c = startClock(c, 1_000);
    expect(startClock(c, 5_000)).toBe(c);
    expect(remainingMs(c, 11_000)).toBe(50_000);
    c = stopClock(c, 11_000);
    expect(remainingMs(c, 99_000)).toBe(50_000);
    c = extendClock(startClock(c, 100_000), 30_000);
    expect(endsAt(c)).toBe(180_000);
    expect(remainingMs(c, 180_000)).toBe(0);
    expect(remainingMs(c, 181_000)).toBeLessThan(0);
  });
});
