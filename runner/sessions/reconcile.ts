import { log } from '../core/logger.js';
import { seatSandboxes, type RoomContext } from './room-context.js';

const slog = log.child({ module: 'sessions' });

export interface Reconciled {
  refrozen: string[];
  thawed: string[];
  orphans: string[];
  missing: string[];
}

/**
 * Bring the engine in line with the store after a restart: seats the store says are closed to
 * the candidate get their freeze marker (a crash may have come between storing and acting), seats
 * the store does not know are removed, seats the engine lost are reported.
 */
export async function reconcile(ctx: RoomContext, id: string): Promise<Reconciled> {
  const engine = new Map((await ctx.driver.list({ session: id })).map((s) => [s.ref.seat, s]));
  const out: Reconciled = { refrozen: [], thawed: [], orphans: [], missing: [] };
  const known = new Set<string>();
  for (const s of ctx.ledger.seats(id)) {
    for (const b of seatSandboxes(ctx, id, s.seat_id)) {
      const name = b.ref.seat;
      known.add(name);
      const e = engine.get(name);
      if (['ready', 'running', 'paused', 'frozen', 'grading', 'graded'].includes(s.state) && (!e || e.state === 'missing')) {
        out.missing.push(name);
        continue;
      }
      if (!e) continue;
      if (['paused', 'frozen', 'grading', 'graded'].includes(s.state) && e.state !== 'frozen') {
        await ctx.driver.freeze(b.ref);
        out.refrozen.push(name);
      } else if (s.state === 'running' && e.state === 'frozen') {
        await ctx.driver.thaw(b.ref);
        out.thawed.push(name);
      }
    }
  }
  for (const seat of engine.keys()) {
    if (!known.has(seat)) {
      await ctx.driver.destroy({ session: id, seat });
      out.orphans.push(seat);
    }
  }
  // What a grading run that crashed left in the toolbox; the seats themselves stay.
  await ctx.driver.toolbox?.sweep({ session: id }).catch(() => []);
  if (out.missing.length + out.orphans.length + out.refrozen.length + out.thawed.length > 0) slog.warn({ session: id, ...out }, 'reconciled with the engine');
  return out;
}
