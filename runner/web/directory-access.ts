import { basename } from 'node:path';
import type { SeatDirectory, SeatInfo } from '../sessions/seat-directory.js';
import { discoverTaskDirs } from '../tasks/loader.js';
import { loadTaskSheets, type CandidateAccess, type SeatBinding, type TaskSheet } from './access.js';

function toBinding(s: SeatInfo): SeatBinding {
  return {
    session: s.sessionId,
    seat: s.seatId,
    candidate: s.name ? `${s.candidateNo} ${s.name}` : s.candidateNo,
    endsAt: s.endsAt,
    closed: !s.frozen ? null : s.state === 'paused' ? 'paused' : 'frozen',
    sandboxes: s.sandboxes,
    disk: s.disk,
  };
}

/** Candidate access backed by the session store (SeatDirectory): codes are one-time and, like tokens, stored only hashed. */
export class DirectoryAccess implements CandidateAccess {
  private readonly sheets = new Map<string, TaskSheet>();

  constructor(
    private readonly dir: SeatDirectory,
    /** Where a session's tasks are read from: its pinned copy (see `pinnedTasksRoot`), or one root for all. */
    private readonly tasksRoot: string | ((session: string) => string),
  ) {}

  async redeem(code: string): Promise<{ token: string; binding: SeatBinding } | null> {
    const seat = await this.dir.redeemAccessCode(code);
    if (!seat) return null;
    return { token: this.dir.bindSeatSession(seat.ref), binding: toBinding(seat) };
  }

  async bySessionToken(token: string): Promise<SeatBinding | null> {
    const seat = this.dir.seatForCookie(token);
    return seat ? toBinding(seat) : null;
  }

  async revoke(token: string): Promise<void> {
    this.dir.revoke(token);
  }

  async taskSheets(binding: SeatBinding): Promise<TaskSheet[]> {
    // Each task folder is read once: its content is fixed for the life of a session.
    const root = typeof this.tasksRoot === 'string' ? this.tasksRoot : this.tasksRoot(binding.session);
    const dirs = new Map(discoverTaskDirs(root).map((d) => [basename(d), d]));
    return binding.sandboxes.map((b) => b.taskId).flatMap((id) => {
      const key = `${root}\0${id}`;
      let sheet = this.sheets.get(key);
      const dir = dirs.get(id);
      if (!sheet && dir) {
        sheet = loadTaskSheets([dir])[0]!;
        this.sheets.set(key, sheet);
      }
      return sheet ? [sheet] : [];
    });
  }
}

