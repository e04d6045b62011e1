import { setTimeout as sleep } from 'node:timers/promises';
import { mapLimit } from '../core/concurrency.js';
import { ERROR_CODES } from '../core/error-codes.js';
import { asDeploylabError, type DeploylabError } from '../core/errors.js';
import { log } from '../core/logger.js';
import { metrics } from '../core/metrics.js';
import { applySetup } from '../grading/task-runner.js';
import { planForSeatTask } from './paper.js';
import { examinedPaper, seatSandboxes, type RoomContext } from './room-context.js';
import { checkDiskReserve } from './room-disk.js';

const slog = log.child({ module: 'sessions' });

/** Transient: the engine or the network hiccuped; a retry may succeed. Config/candidate faults are not retried. */
export function transient(e: DeploylabError): boolean {
  // The thrower's own fault counts too: a code thrown with another fault in places is retried only as infrastructure.
  return e.fault === 'infrastructure' && ERROR_CODES[e.code].retryable;
}

export interface Provisioned {
  ready: string[];
  failed: { seat: string; error: string }[];
}

/**
 * Provision every seat not yet ready, `concurrency` at a time, retrying transient engine errors.
 * Resumable: a seat found in `provisioning` (a crash mid-way) is destroyed and provisioned again.
 * The caller holds the session.
 */
export async function provisionSeats(ctx: RoomContext, id: string, opts: { concurrency?: number; retries?: number; backoffMs?: number } = {}): Promise<Provisioned> {
  const { ledger, driver } = ctx;
  const todo = ledger.seats(id).filter((s) => ['pending', 'provisioning', 'failed'].includes(s.state));
  await checkDiskReserve(ctx, todo.length);
  ledger.moveSession(id, 'provision');
  const spec = ledger.spec(id);
  const paper = examinedPaper(ctx, id);
  const total = ledger.seats(id).length;
  let done = total - todo.length;
  const retries = opts.retries ?? 2;
  const backoffMs = opts.backoffMs ?? 1000;
  const images = { workspaceCpu: spec.workspaceImage, ...(spec.dockerInSeat ? { dockerInSeat: spec.dockerInSeat } : {}) };
  await mapLimit(todo, opts.concurrency ?? 3, async (seat) => {
    const boxes = seatSandboxes(ctx, id, seat.seat_id);
    const destroyAll = (): Promise<unknown> => Promise.all(boxes.map((b) => driver.destroy(b.ref).catch(() => undefined)));
    for (let attempt = 0; ; attempt++) {
      ledger.moveSeat(id, seat.seat_id, 'provision', { error: null }, { attempt });
      const t0 = Date.now();
      try {
        await destroyAll();
        for (const [i, t] of paper.tasks.entries()) {
          const ref = boxes[i]!.ref;
          await driver.provision(planForSeatTask(t, ref, seat.seat_id, images));
          await applySetup(driver, ref, t);
        }
        const seconds = (Date.now() - t0) / 1000;
        ledger.moveSeat(id, seat.seat_id, 'provisioned', {}, { seconds });
        metrics.seatProvisionSeconds.observe({ result: 'ok' }, seconds);
        done++;
        ctx.progress({ zh: `[${done}/${total}] 考位 ${seat.seat_id} 就绪（${seconds.toFixed(1)} 秒）`, en: `[${done}/${total}] seat ${seat.seat_id} ready (${seconds.toFixed(1)} s)` });
        return;
      } catch (e) {
        const err = asDeploylabError(e);
        if (transient(err) && attempt < retries) {
          slog.warn({ seat: seat.seat_id, attempt, code: err.code }, 'seat provisioning failed, retrying');
          ctx.progress({ zh: `考位 ${seat.seat_id} 准备失败（${err.code}），第 ${attempt + 1} 次重试`, en: `seat ${seat.seat_id} failed (${err.code}), retry ${attempt + 1}` });
          await sleep(backoffMs * 2 ** attempt);
          continue;
        }
        metrics.seatProvisionSeconds.observe({ result: 'failed' }, (Date.now() - t0) / 1000);
        ledger.moveSeat(id, seat.seat_id, 'fail', { error: `${err.code}: ${err.message}` });
        await destroyAll();
        ctx.progress({ zh: `考位 ${seat.seat_id} 准备失败：${err.code}`, en: `seat ${seat.seat_id} failed: ${err.code}` });
        return;
      }
    }
  });
  const seats = ledger.seats(id);
  const failed = seats.filter((s) => s.state === 'failed').map((s) => ({ seat: s.seat_id, error: s.last_error ?? '' }));
  if (failed.length === 0) ledger.moveSession(id, 'provisioned');
  return { ready: seats.filter((s) => s.state === 'ready').map((s) => s.seat_id), failed };
}
