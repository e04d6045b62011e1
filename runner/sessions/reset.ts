import { DeploylabError } from '../core/errors.js';
import { gpuMemoryUsedMiB } from './planning.js';
import { sessionDir, type RoomContext } from './room-context.js';
import { removeSeatCards } from './seat-cards.js';

export interface ResetReport {
  session: string;
  clean: boolean;
  removed: number;
  /** Seat-card files deleted: the only place the access codes were written in clear. */
  cardsRemoved: number;
  leftovers: { kind: string; name: string }[];
  portsHeld: string[];
  gpu: { baselineMiB: number[]; nowMiB: number[]; ok: boolean } | null;
}

/**
 * Remove everything labelled for the session and prove it: nothing labelled left, no host ports
 * held, GPU memory back to its baseline. The caller holds the session.
 */
export async function resetSession(ctx: RoomContext, id: string, opts: { force?: boolean } = {}): Promise<ResetReport> {
  const { ledger } = ctx;
  const state = ledger.session(id).state;
  if (state !== 'archived' && state !== 'reset' && !opts.force) {
    throw new DeploylabError({
      code: 'SESSION_NOT_ARCHIVED',
      fault: 'config',
      message: { zh: `场次 ${id} 尚未归档（当前：${state}），复位会丢失证据`, en: `session ${id} is not archived (it is ${state}); a reset would lose its evidence` },
      hint: { zh: '先运行 deploylab session archive，或加 --force', en: 'run deploylab session archive first, or pass --force' },
    });
  }
  ledger.moveSession(id, state === 'archived' || state === 'reset' ? 'reset' : 'force-reset');
  for (const s of ledger.seats(id)) if (s.state !== 'removed') ledger.moveSeat(id, s.seat_id, 'remove');
  ledger.revokeSeatLogins(id);
  const removed = (await ctx.driver.sweep({ session: id })).length;
  return { ...(await verifyClean(ctx, id, removed)), cardsRemoved: removeSeatCards(sessionDir(ctx, id)) };
}

/** What the engine still holds for the session, as the engine itself lists it (anything labelled counts, whoever made it). */
export async function verifyClean(ctx: RoomContext, id: string, removed = 0): Promise<Omit<ResetReport, 'cardsRemoved'>> {
  const held = await ctx.driver.leftovers({ session: id });
  const leftovers = held.map(({ kind, name }) => ({ kind, name }));
  const portsHeld = held.flatMap((l) => l.hostPorts ?? []);
  const baseline = ctx.ledger.spec(id).gpuBaselineMiB;
  let gpu: ResetReport['gpu'] = null;
  const now = baseline ? gpuMemoryUsedMiB() : null;
  // Allow driver-level jitter (a few MiB of context on an idle GPU).
  if (baseline && now) gpu = { baselineMiB: baseline, nowMiB: now, ok: now.every((m, i) => m <= (baseline[i] ?? 0) + 64) };
  return { session: id, clean: leftovers.length === 0 && portsHeld.length === 0 && (gpu?.ok ?? true), removed, leftovers, portsHeld, gpu };
}
