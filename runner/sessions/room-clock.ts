import { log } from '../core/logger.js';
import { clockOf, type SeatRow } from './ledger-store.js';
import { seatSandboxes, type RoomContext } from './room-context.js';
import { diskHalted, releaseHalted } from './room-disk.js';
import { extendClock, remainingMs, shiftClock, startClock, stopClock, type SeatStateName, type SessionState } from './state-machine.js';

/*
 * The room's clock: start, pause, resume, extend, end and the tick that freezes seats whose time
 * is up. Every change is a transition stored before the sandboxes are frozen or thawed. The caller
 * (the SessionService facade) holds the session for each operation.
 */

function targetSeats(ctx: RoomContext, id: string, seatId: string | undefined, states: SeatStateName[]): SeatRow[] {
  if (seatId) {
    const s = ctx.ledger.seat(id, seatId);
    return states.includes(s.state) ? [s] : [];
  }
  return ctx.ledger.seats(id).filter((s) => states.includes(s.state));
}

async function freezeBoxes(ctx: RoomContext, id: string, seatId: string): Promise<void> {
  for (const b of seatSandboxes(ctx, id, seatId)) await ctx.driver.freeze(b.ref);
}

async function thawBoxes(ctx: RoomContext, id: string, seatId: string): Promise<void> {
  // A seat the disk watch stopped gets its processes back with its access.
  if (diskHalted(ctx, id, seatId)) await releaseHalted(ctx, id, seatId);
  for (const b of seatSandboxes(ctx, id, seatId)) await ctx.driver.thaw(b.ref);
}

async function freezeSeat(ctx: RoomContext, id: string, s: SeatRow, reason: string): Promise<void> {
  ctx.ledger.moveSeat(id, s.seat_id, 'freeze', { clock: stopClock(clockOf(s), ctx.now()) }, { reason });
  await freezeBoxes(ctx, id, s.seat_id);
  ctx.progress({ zh: `考位 ${s.seat_id} 已冻结（${reason}）`, en: `seat ${s.seat_id} frozen (${reason})` });
}

/** Start the clock of the room (every ready seat) or of one seat that was ready later. */
export function start(ctx: RoomContext, id: string, seatId?: string): SeatRow[] {
  ctx.ledger.moveSession(id, 'start');
  const now = ctx.now();
  return targetSeats(ctx, id, seatId, ['ready']).map((s) => ctx.ledger.moveSeat(id, s.seat_id, 'start', { clock: startClock(clockOf(s), now) }));
}

/** Pause: the clock stops and candidate access closes until resumed. */
export async function pause(ctx: RoomContext, id: string, seatId?: string): Promise<SeatRow[]> {
  if (!seatId) ctx.ledger.moveSession(id, 'pause');
  const now = ctx.now();
  const out: SeatRow[] = [];
  for (const s of targetSeats(ctx, id, seatId, ['running'])) {
    out.push(ctx.ledger.moveSeat(id, s.seat_id, 'pause', { clock: stopClock(clockOf(s), now) }));
    await freezeBoxes(ctx, id, s.seat_id);
  }
  return out;
}

export async function resume(ctx: RoomContext, id: string, seatId?: string): Promise<SeatRow[]> {
  if (!seatId) ctx.ledger.moveSession(id, 'resume');
  const now = ctx.now();
  const out: SeatRow[] = [];
  for (const s of targetSeats(ctx, id, seatId, ['paused'])) {
    out.push(ctx.ledger.moveSeat(id, s.seat_id, 'resume', { clock: startClock(clockOf(s), now) }));
    await thawBoxes(ctx, id, s.seat_id);
  }
  return out;
}

/** More time for the room or one seat. A seat frozen by its clock gets access back while the room still runs. */
export async function extend(ctx: RoomContext, id: string, ms: number, seatId?: string): Promise<SeatRow[]> {
  const room = ctx.ledger.session(id);
  if (!seatId) ctx.ledger.moveSession(id, 'extend', { ms });
  const out: SeatRow[] = [];
  for (const s of targetSeats(ctx, id, seatId, ['ready', 'running', 'paused', 'frozen'])) {
    let row = ctx.ledger.moveSeat(id, s.seat_id, 'extend', { clock: extendClock(clockOf(s), ms) }, { ms });
    if (row.state === 'frozen' && room.state === 'running' && remainingMs(clockOf(row), ctx.now()) > 0) {
      row = ctx.ledger.moveSeat(id, s.seat_id, 'resume', { clock: startClock(clockOf(row), ctx.now()) });
      await thawBoxes(ctx, id, s.seat_id);
    }
    out.push(row);
  }
  return out;
}

/** A running or paused room with no seat left working is frozen; its state either way. */
function freezeRoomIfDone(ctx: RoomContext, id: string, reason: string): SessionState {
  const room = ctx.ledger.session(id);
  const working = ctx.ledger.seats(id).some((s) => ['running', 'paused', 'ready'].includes(s.state));
  if ((room.state === 'running' || room.state === 'paused') && !working) return ctx.ledger.moveSession(id, 'freeze', { reason });
  return room.state;
}

/**
 * End now: the whole room, or one seat (a candidate who hands in early). Ended seats are frozen:
 * candidate access closed, services keep running. When the last working seat ends, the room is
 * frozen too. An ended seat with time left gets access back through `extend`.
 */
export async function end(ctx: RoomContext, id: string, seatId?: string): Promise<SeatRow[]> {
  if (!seatId) ctx.ledger.moveSession(id, 'freeze', { reason: 'ended by examiner' });
  const ended: SeatRow[] = [];
  for (const s of targetSeats(ctx, id, seatId, ['ready', 'running', 'paused'])) {
    await freezeSeat(ctx, id, s, seatId ? 'seat ended by examiner' : 'end');
    ended.push(ctx.ledger.seat(id, s.seat_id));
  }
  if (seatId) freezeRoomIfDone(ctx, id, 'every seat ended');
  return ended;
}

function clockJumped(ctx: RoomContext, id: string, jumpMs: number): void {
  const running = targetSeats(ctx, id, undefined, ['running']);
  log.warn({ session: id, jumpMs, seats: running.length }, 'the wall clock jumped; running seat clocks moved with it');
  ctx.progress({
    zh: `主机时钟跳变 ${(jumpMs / 1000).toFixed(1)} 秒：${running.length} 个计时中考位的剩余时间已保持不变`,
    en: `the host's wall clock jumped by ${(jumpMs / 1000).toFixed(1)} s: the remaining time of ${running.length} running seat(s) was kept`,
  });
  if (ctx.ledger.session(id).state === 'running') ctx.ledger.moveSession(id, 'clock-jump', { jumpMs, seats: running.length });
  for (const s of running) ctx.ledger.moveSeat(id, s.seat_id, 'clock-jump', { clock: shiftClock(clockOf(s), jumpMs) }, { jumpMs });
}

/**
 * One clock step: seats whose time is up are frozen; when no seat is left working the room is
 * frozen. `wallJumpMs`, a jump of the host's wall clock seen since the last step, first moves
 * every running clock with it (and is recorded), so no candidate loses or gains that time.
 */
export async function tick(ctx: RoomContext, id: string, wallJumpMs = 0): Promise<SessionState> {
  if (wallJumpMs !== 0) clockJumped(ctx, id, wallJumpMs);
  const now = ctx.now();
  for (const s of targetSeats(ctx, id, undefined, ['running'])) {
    if (remainingMs(clockOf(s), now) <= 0) await freezeSeat(ctx, id, s, 'time up');
  }
  return freezeRoomIfDone(ctx, id, 'all seats out of time');
}
