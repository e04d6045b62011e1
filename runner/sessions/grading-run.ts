import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { mapLimit } from '../core/concurrency.js';
import { asDeploylabError } from '../core/errors.js';
import { log } from '../core/logger.js';
import { sha256File } from '../core/files.js';
import { seatHandleFor } from '../grading/seat-handle.js';
import { gradeSeat, type CheckGrade } from '../grading/task-runner.js';
import type { RunStatus } from './ledger-store.js';
import { taskDrift } from './pinned-tasks.js';
import { reconcile } from './reconcile.js';
import { examinedPaper, seatSandboxes, sessionDir, type RoomContext } from './room-context.js';

const slog = log.child({ module: 'sessions' });

export interface Graded {
  graded: string[];
  errors: { seat: string; error: string }[];
}

/**
 * Grade every frozen seat against the tasks the session pinned at open; each seat gets a new
 * grading run in the ledger (with the content hash of every task it graded), every check's outcome
 * and evidence file appended as it finishes. Seats run one at a time on a host without spare cores
 * (fewer than 4), so latency probes of different seats never overlap; within a seat the grading
 * module keeps latency probes alone. The caller holds the session.
 */
export async function gradeRoom(ctx: RoomContext, id: string, opts: { concurrency?: number; reason?: string } = {}): Promise<Graded> {
  const { ledger } = ctx;
  const regrade = ledger.session(id).state === 'graded';
  const spec = ledger.spec(id);
  // Before the room moves: an altered pinned copy stops grading with the room as it was.
  const paper = examinedPaper(ctx, id);
  ledger.moveSession(id, 'grade', { regrade });
  await reconcile(ctx, id);
  const drift = taskDrift(spec);
  if (drift.length > 0) {
    const ids = drift.map((d) => d.taskId).join(', ');
    slog.warn({ session: id, drift }, 'tasks changed on disk since the session opened; grading the pinned copy');
    ctx.progress({ zh: `试题在开场后被修改：${ids}；按开场时固定的副本评分`, en: `task(s) changed on disk since the session opened: ${ids}; grading the copy pinned at open` });
  }
  const taskHashes = spec.pinned?.hashes ?? null;
  const seatConcurrency = opts.concurrency ?? (availableParallelism() < 4 ? 1 : Math.floor(availableParallelism() / 2));
  const todo = ledger.seats(id).filter((s) => s.state === 'frozen' || s.state === 'grading' || (regrade && s.state === 'graded'));
  const errors: Graded['errors'] = [];
  const graded: string[] = [];
  let n = 0;
  await mapLimit(todo, seatConcurrency, async (s) => {
    const resumed = s.state === 'grading';
    ledger.moveSeat(id, s.seat_id, 'grade');
    const runId = ledger.startRun(id, s.seat_id, opts.reason ?? (resumed ? 'resumed after interruption' : regrade ? 'regrade' : 'end of exam'), taskHashes);
    const evDir = join(sessionDir(ctx, id), 'evidence', s.seat_id, `run-${runId}`);
    mkdirSync(evDir, { recursive: true });
    const boxes = seatSandboxes(ctx, id, s.seat_id);
    let status: RunStatus = 'complete';
    try {
      for (const [i, t] of paper.tasks.entries()) {
        const handle = seatHandleFor({
          driver: ctx.driver,
          ref: boxes[i]!.ref,
          task: t.task.id,
          toolboxImage: spec.toolboxImage,
        });
        await gradeSeat(t.task, handle, {
          concurrency: 2,
          onCheck: (g: CheckGrade) => {
            const file = join(evDir, `${t.task.id}--${g.checkId}.json`);
            writeFileSync(file, JSON.stringify({ task: t.task.id, check: g.checkId, kind: g.kind, result: g.result, blockedBy: g.blockedBy, outcome: g.outcome }, null, 2));
            ledger.recordCheck({
              runId, session: id, seat: s.seat_id, taskId: t.task.id, checkId: g.checkId, skill: g.result.skill, points: g.points, outcome: g.result.outcome,
              score: g.outcome?.score ?? 0, earned: g.result.earned,
              summary: JSON.stringify(g.outcome?.summary ?? { zh: `依赖未通过：${(g.blockedBy ?? []).join(', ')}`, en: `blocked by: ${(g.blockedBy ?? []).join(', ')}` }),
              evidenceFile: relative(ctx.dataDir, file), evidenceSha256: sha256File(file),
            });
          },
        });
      }
      if (ledger.runHasUnjudged(runId)) status = 'incomplete';
    } catch (e) {
      const err = asDeploylabError(e);
      status = 'error';
      errors.push({ seat: s.seat_id, error: `${err.code}: ${err.message}` });
    }
    ledger.endRun(runId, status);
    if (status !== 'error') {
      ledger.moveSeat(id, s.seat_id, 'graded', {}, { runId, status });
      graded.push(s.seat_id);
    }
    n++;
    ctx.progress({ zh: `[${n}/${todo.length}] 考位 ${s.seat_id} 评分${status === 'error' ? '失败' : '完成'}（第 ${runId} 次评分）`, en: `[${n}/${todo.length}] seat ${s.seat_id} ${status === 'error' ? 'grading failed' : 'graded'} (run ${runId})` });
  });
  if (errors.length === 0) ledger.moveSession(id, 'graded');
  return { graded, errors };
}
