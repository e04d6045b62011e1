import { DeploylabError } from '../core/errors.js';

/**
 * The exam room as a pure transition function: (state, event) → next state, or a refusal. No I/O
 * here; the session service stores each transition before it acts on it, so a restart knows what
 * was under way.
 */

export const SESSION_STATES = ['planned', 'provisioning', 'ready', 'running', 'paused', 'frozen', 'grading', 'graded', 'archived', 'reset'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

export const SESSION_EVENTS = ['provision', 'provisioned', 'start', 'pause', 'resume', 'extend', 'freeze', 'grade', 'graded', 'archive', 'reset', 'force-reset', 'clock-jump'] as const;
export type SessionEvent = (typeof SESSION_EVENTS)[number];

/** Legal moves. A state repeated as its own target means "resume after a restart" or "no change". */
const SESSION_TABLE: Record<SessionState, Partial<Record<SessionEvent, SessionState>>> = {
  planned: { provision: 'provisioning', 'force-reset': 'reset' },
  provisioning: { provision: 'provisioning', provisioned: 'ready', 'force-reset': 'reset' },
  ready: { start: 'running', extend: 'ready', freeze: 'frozen', 'force-reset': 'reset' },
  running: { pause: 'paused', extend: 'running', start: 'running', freeze: 'frozen', 'force-reset': 'reset', 'clock-jump': 'running' },
  paused: { resume: 'running', extend: 'paused', freeze: 'frozen', 'force-reset': 'reset' },
  frozen: { grade: 'grading', 'force-reset': 'reset' },
  grading: { grade: 'grading', graded: 'graded', 'force-reset': 'reset' },
  // Re-grading (after an `error` outcome) is a new run appended to the ledger.
  graded: { grade: 'grading', archive: 'archived', 'force-reset': 'reset' },
  archived: { archive: 'archived', reset: 'reset', 'force-reset': 'reset' },
  // Reset again re-verifies the host.
  reset: { reset: 'reset', 'force-reset': 'reset' },
};

export const SEAT_STATES = ['pending', 'provisioning', 'ready', 'running', 'paused', 'frozen', 'grading', 'graded', 'failed', 'removed'] as const;
export type SeatStateName = (typeof SEAT_STATES)[number];

export const SEAT_EVENTS = ['provision', 'provisioned', 'fail', 'start', 'pause', 'resume', 'extend', 'freeze', 'grade', 'graded', 'remove', 'clock-jump', 'disk-halt', 'disk-release'] as const;
export type SeatEvent = (typeof SEAT_EVENTS)[number];

// The disk watch stopping a seat's processes (and an examiner releasing them) is recorded on the
// seat without changing its state; a running seat is paused first, so its clock stops, and is
// released as it resumes.
const disk = (s: SeatStateName): Partial<Record<SeatEvent, SeatStateName>> => ({ 'disk-halt': s, 'disk-release': s });

const SEAT_TABLE: Record<SeatStateName, Partial<Record<SeatEvent, SeatStateName>>> = {
  pending: { provision: 'provisioning', fail: 'failed', remove: 'removed' },
  provisioning: { provision: 'provisioning', provisioned: 'ready', fail: 'failed', remove: 'removed' },
  ready: { start: 'running', extend: 'ready', freeze: 'frozen', fail: 'failed', remove: 'removed', ...disk('ready') },
  // The host's wall clock jumped: the running clock is shifted by the jump, the state stays.
  running: { pause: 'paused', extend: 'running', freeze: 'frozen', remove: 'removed', 'clock-jump': 'running', 'disk-release': 'running' },
  paused: { resume: 'running', extend: 'paused', freeze: 'frozen', remove: 'removed', ...disk('paused') },
  // A frozen seat may be given time back (examiner's decision, e.g. after an outage).
  frozen: { extend: 'frozen', resume: 'running', grade: 'grading', remove: 'removed', ...disk('frozen') },
  grading: { grade: 'grading', graded: 'graded', remove: 'removed', ...disk('grading') },
  graded: { grade: 'grading', remove: 'removed', ...disk('graded') },
  failed: { provision: 'provisioning', remove: 'removed' },
  removed: { remove: 'removed' },
};

export type Step<S> = { ok: true; to: S } | { ok: false; reason: string };

export function sessionStep(state: SessionState, event: SessionEvent): Step<SessionState> {
  const to = SESSION_TABLE[state][event];
  return to ? { ok: true, to } : { ok: false, reason: `session: ${event} is not allowed in state ${state}` };
}

export function seatStep(state: SeatStateName, event: SeatEvent): Step<SeatStateName> {
  const to = SEAT_TABLE[state][event];
  return to ? { ok: true, to } : { ok: false, reason: `seat: ${event} is not allowed in state ${state}` };
}

const ZH_STATE: Record<string, string> = {
  planned: '已计划', provisioning: '准备中', ready: '就绪', running: '考试中', paused: '已暂停', frozen: '已冻结',
  grading: '评分中', graded: '已评分', archived: '已归档', reset: '已复位', pending: '待准备', failed: '失败', removed: '已移除',
};

export function zhState(s: string): string {
  return ZH_STATE[s] ?? s;
}

export function illegal(kind: 'session' | 'seat', id: string, state: string, event: string): DeploylabError {
  return new DeploylabError({
    code: 'SESSION_ILLEGAL_TRANSITION',
    fault: 'config',
    message: {
      zh: `${kind === 'session' ? '场次' : '考位'} ${id} 当前状态为「${zhState(state)}」，不能执行 ${event}`,
      en: `${kind} ${id} is ${state}: ${event} is not allowed`,
    },
    details: { kind, id, state, event },
  });
}

// ---------------------------------------------------------------------------------------------
// Clock (pure): time allowed, time used while running, and when the current run began.

export interface SeatClock {
  allowedMs: number;
  usedMs: number;
  /** Epoch ms when the clock last started; null while it is stopped. */
  runningSince: number | null;
}

export function remainingMs(c: SeatClock, now: number): number {
  const used = c.usedMs + (c.runningSince === null ? 0 : Math.max(0, now - c.runningSince));
  return c.allowedMs - used;
}

export function startClock(c: SeatClock, now: number): SeatClock {
  return c.runningSince === null ? { ...c, runningSince: now } : c;
}

export function stopClock(c: SeatClock, now: number): SeatClock {
  if (c.runningSince === null) return c;
  return { ...c, usedMs: c.usedMs + Math.max(0, now - c.runningSince), runningSince: null };
}

export function extendClock(c: SeatClock, ms: number): SeatClock {
  return { ...c, allowedMs: c.allowedMs + ms };
}

/**
 * The wall clock moved by `jumpMs` that did not pass: a running clock's start moves with it, so
 * the time used (wall now − start) stays what really passed. A stopped clock has nothing to move.
 */
export function shiftClock(c: SeatClock, jumpMs: number): SeatClock {
  return c.runningSince === null ? c : { ...c, runningSince: c.runningSince + jumpMs };
}

/** When a running clock reaches zero (epoch ms); null while stopped. */
export function endsAt(c: SeatClock): number | null {
  return c.runningSince === null ? null : c.runningSince + (c.allowedMs - c.usedMs);
}
