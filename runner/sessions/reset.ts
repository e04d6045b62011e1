import { DeploylabError } from '../core/errors.js';
import { sweepToolboxes } from '../grading/seat-handle.js';
import { LABEL } from '../sandbox/labels.js';
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
  let removed = (await ctx.driver.sweep({ session: id })).length;
  if (ctx.docker) removed += await sweepToolboxes(ctx.docker, id);
  return { ...(await verifyClean(ctx, id, removed)), cardsRemoved: removeSeatCards(sessionDir(ctx, id)) };
}

/** What the engine still holds for the session, as the engine itself lists it. */
export async function verifyClean(ctx: RoomContext, id: string, removed = 0): Promise<Omit<ResetReport, 'cardsRemoved'>> {
  const leftovers: { kind: string; name: string }[] = [];
  const portsHeld: string[] = [];
  const label = [`${LABEL.session}=${id}`];
  if (ctx.docker) {
    // Straight from the engine, not through the driver: anything labelled counts, whoever made it.
    for (const c of await ctx.docker.listContainers({ all: true, filters: { label } })) {
      leftovers.push({ kind: 'container', name: c.Names[0] ?? c.Id });
      for (const p of c.Ports ?? []) if (p.PublicPort) portsHeld.push(`${p.IP ?? ''}:${p.PublicPort}`);
    }
    for (const n of await ctx.docker.listNetworks({ filters: { label } })) leftovers.push({ kind: 'network', name: n.Name });
    for (const v of (await ctx.docker.listVolumes({ filters: { label } })).Volumes ?? []) leftovers.push({ kind: 'volume', name: v.Name });
  } else {
    for (const s of await ctx.driver.list({ session: id })) leftovers.push({ kind: 'seat', name: s.ref.seat });
  }
  const baseline = ctx.ledger.spec(id).gpuBaselineMiB;
  let gpu: ResetReport['gpu'] = null;
  const now = baseline ? gpuMemoryUsedMiB() : null;
  // Allow driver-level jitter (a few MiB of context on an idle GPU).
  if (baseline && now) gpu = { baselineMiB: baseline, nowMiB: now, ok: now.every((m, i) => m <= (baseline[i] ?? 0) + 64) };
  return { session: id, clean: leftovers.length === 0 && portsHeld.length === 0 && (gpu?.ok ?? true), removed, leftovers, portsHeld, gpu };
}
