import type { Bilingual } from '../core/errors.js';
import type { SeatRef } from '../sandbox/driver.js';
import { loadTaskDir } from '../tasks/loader.js';
import { DeploylabError } from '../core/errors.js';

/**
 * What the candidate pages need from the session store, and nothing more. The store (sessions
 * area) resolves access codes and keeps the token → seat binding server-side; the web layer never
 * trusts a seat id that came from the client.
 */
export interface SeatBinding {
  /** The candidate's seat, which the session token is bound to. */
  session: string;
  seat: string;
  /** Shown on the page (candidate number and name). */
  candidate: string;
  /** When the seat's clock runs out (ISO 8601), or null while the clock has not started. */
  endsAt: string | null;
  /** Candidate access closed by the session (paused by the examiner, or frozen/graded); null while open. */
  closed?: 'paused' | 'frozen' | null;
  /** One sandbox per task, in paper order: each task's tab has its own terminal into its sandbox. */
  sandboxes: { taskId: string; ref: SeatRef }[];
  /** The runner's disk watch over the seat (absent where the store has no reading). */
  disk?: { bytes: number; quotaBytes: number; level: 'ok' | 'warn' | 'over'; halted: boolean } | null;
}

export interface TaskSheet {
  id: string;
  title: Bilingual;
  /** Markdown, as written by the task author. */
  instructions: Bilingual;
}

export interface CandidateAccess {
  /**
   * Resolve an access code. On success the store issues a fresh random session token bound to
   * the seat and keeps that binding; null when the code is unknown, used up or revoked. The
   * store keeps codes only as salted hashes and compares them in constant time; the caller
   * rate-limits attempts per client.
   */
  redeem(code: string): Promise<{ token: string; binding: SeatBinding } | null>;
  /** The seat a session token is bound to; null when unknown or revoked. */
  bySessionToken(token: string): Promise<SeatBinding | null>;
  /** Forget a session token (logout). */
  revoke(token: string): Promise<void>;
  /** The task sheets of the seat, in the order the candidate sees them. */
  taskSheets(binding: SeatBinding): Promise<TaskSheet[]>;
}

/** Task sheets straight from task folders (task.yaml title + instructions.{zh,en}.md). */
export function loadTaskSheets(dirs: readonly string[]): TaskSheet[] {
  return dirs.map((dir) => {
    const { task, problems } = loadTaskDir(dir);
    if (!task) {
      throw new DeploylabError({
        code: 'WEB_TASK_SHEET_INVALID',
        fault: 'config',
        message: { zh: `试题目录无效：${dir}`, en: `invalid task folder: ${dir}` },
        details: { problems },
      });
    }
    return { id: task.task.id, title: task.task.title, instructions: task.instructions };
  });
}
