import type { SeatPlan, SeatRef } from './driver.js';

/** Every object a driver creates carries these, so it can be found, reconciled and swept. */
export const LABEL = {
  session: 'deploylab.session',
  seat: 'deploylab.seat',
  task: 'deploylab.task',
  version: 'deploylab.version',
  /** workspace | dind | a service name | frozen-marker */
  role: 'deploylab.role',
  component: 'deploylab.component',
} as const;

export const COMPONENT_SEAT = 'seat';

export function seatLabels(plan: SeatPlan, role: string): Record<string, string> {
  return {
    ...plan.labels,
    [LABEL.session]: plan.session,
    [LABEL.seat]: plan.seat,
    [LABEL.task]: plan.task,
    [LABEL.version]: plan.version,
    [LABEL.component]: COMPONENT_SEAT,
    [LABEL.role]: role,
  };
}

/**
 * Labels of an object shared by every seat of a session (the session network): no seat label, so
 * destroying one seat never touches it, while a session or global sweep finds it.
 */
export function sessionLabels(plan: SeatPlan, role: string): Record<string, string> {
  const { [LABEL.seat]: _seat, ...rest } = seatLabels(plan, role);
  return rest;
}

/** Docker-style label filters (`key=value`) for a seat, or a session, or all seats. */
export function labelFilters(ref: Partial<SeatRef>): string[] {
  const out = [`${LABEL.component}=${COMPONENT_SEAT}`];
  if (ref.session) out.push(`${LABEL.session}=${ref.session}`);
  if (ref.seat) out.push(`${LABEL.seat}=${ref.seat}`);
  return out;
}

/** The session's network, shared by all its seats (inter-container traffic disabled on it). */
export function sessionNetworkName(session: string): string {
  return `dl-${session}-net`;
}

/** Object names: short, unique per seat, recognisable in `docker ps`. */
export function seatObjectName(ref: SeatRef, role: string): string {
  return `dl-${ref.session}-${ref.seat}-${role}`;
}

/** `90s`, `15m`, `2h`, `7d` or a plain number of seconds → milliseconds. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit]!;
  return n * factor;
}
