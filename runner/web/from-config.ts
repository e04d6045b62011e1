import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { sandboxDriverFor } from '../sandbox/backend.js';
import { pinnedTasksRoot } from '../sessions/pinned-tasks.js';
import { startRoomKeeper, type RoomKeeper } from '../sessions/room-keeper.js';
import { SeatDirectory } from '../sessions/seat-directory.js';
import { SessionService } from '../sessions/session-service.js';
import { openStore } from '../store/db.js';
import { createWebApp, type WebApp } from './app.js';
import { createDashboard } from './dashboard.js';
import { DirectoryAccess } from './directory-access.js';
import { ExaminerGate } from './examiner-auth.js';

/**
 * The candidate pages and examiner API as `deploylab serve` runs them: the session store under
 * dataDir, the configured sandbox backend (`sandbox.driver`), the examiner token from the config. Pass `web` to startServer.
 * With `supervise`, the server also keeps every open room's clock (room-keeper.ts).
 */
export function webAppFromConfig(config: Config, log: Logger, opts: { tasksRoot?: string; supervise?: boolean } = {}): { web: WebApp; keeper: RoomKeeper | null; close(): Promise<void> } {
  const db = openStore(config.dataDir);
  const driver = sandboxDriverFor(config);
  const examinerToken = config.server.examinerToken || undefined;
  const gate = new ExaminerGate(examinerToken);
  const sessions = new SessionService({ db, driver, dataDir: config.dataDir, disk: config.disk });
  // Candidates read the task sheets their session pinned at open, unless a root is forced.
  const tasksRoot = opts.tasksRoot ?? ((id: string): string => pinnedTasksRoot(sessions.spec(id), sessions.sessionDir(id)));
  const web = createWebApp({
    access: new DirectoryAccess(new SeatDirectory(db), tasksRoot),
    driver,
    log,
    examinerToken,
    examinerGate: gate,
    dashboard: createDashboard({ sessions, driver, log, examinerToken, gate }),
  });
  const keeper = opts.supervise ? startRoomKeeper(sessions) : null;
  return {
    web,
    keeper,
    close: async () => {
      await keeper?.stop();
      web.close();
      db.close();
    },
  };
}
