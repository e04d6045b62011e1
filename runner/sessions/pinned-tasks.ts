import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DeploylabError } from '../core/errors.js';
import { walkFiles } from '../core/files.js';
import { loadExamPaper, type LoadedExamPaper } from './paper.js';
import type { PinnedTasks, SessionSpec } from './ledger-store.js';

/**
 * A session examines exactly what it opened with: at `open` the paper file and every task folder it
 * names are copied into the session's folder and hashed. Provisioning, grading and reports read the
 * copy; a task edited on disk afterwards is reported (`taskDrift`), never silently graded against.
 */

export const PINNED_DIR = 'pinned-tasks';

/** sha256 over a folder's files: each relative path and the sha256 of its bytes, in path order. */
export function folderSha256(dir: string): string {
  const h = createHash('sha256');
  for (const f of walkFiles(dir)) {
    h.update(relative(dir, f)).update('\0').update(createHash('sha256').update(readFileSync(f)).digest('hex')).update('\n');
  }
  return h.digest('hex');
}

const fileSha256 = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

/**
 * Copy the paper and its tasks from `tasksRoot` into `<sessionDir>/pinned-tasks`, keeping their
 * relative paths. `paperFile`: a paper that is not in the tree (one drawn from a bank).
 */
export function pinTasks(p: LoadedExamPaper, tasksRoot: string, sessionDir: string, paperFile: string = join(tasksRoot, 'papers', `${p.paper.id}.yaml`)): PinnedTasks {
  const dest = join(sessionDir, PINNED_DIR);
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(join(dest, 'papers'), { recursive: true });
  cpSync(paperFile, join(dest, 'papers', `${p.paper.id}.yaml`));
  const hashes: Record<string, string> = {};
  for (const t of p.tasks) {
    const rel = relative(tasksRoot, t.dir);
    cpSync(t.dir, join(dest, rel), { recursive: true });
    hashes[t.task.id] = folderSha256(join(dest, rel));
  }
  return { root: PINNED_DIR, hashes, paperSha256: fileSha256(paperFile) };
}

/** The tasks root a session reads its tasks from: its pinned copy, or the original root for a session opened before pinning. */
export function pinnedTasksRoot(spec: SessionSpec, sessionDir: string): string {
  return spec.pinned ? join(sessionDir, spec.pinned.root) : spec.tasksRoot;
}

/** The paper a session examines: its pinned copy, checked against the hashes taken at open. */
export function loadPinnedPaper(spec: SessionSpec, sessionDir: string, sessionId: string): LoadedExamPaper {
  if (!spec.pinned) return loadExamPaper(spec.paperId, spec.tasksRoot);
  const root = join(sessionDir, spec.pinned.root);
  if (!existsSync(root)) {
    throw new DeploylabError({
      code: 'SESSION_PINNED_TASKS_MISSING',
      fault: 'infrastructure',
      message: { zh: `场次 ${sessionId} 开场时固定的试题副本不见了（${root}）`, en: `the copy of the tasks session ${sessionId} pinned at open is gone (${root})` },
      hint: { zh: '从场次的归档中恢复该目录；不能改用磁盘上的现行试题评分', en: "restore that folder from the session's archive; grading does not fall back to the tasks on disk" },
    });
  }
  const p = loadExamPaper(spec.paperId, root);
  const changed = p.tasks.filter((t) => folderSha256(t.dir) !== spec.pinned!.hashes[t.task.id]).map((t) => t.task.id);
  if (changed.length > 0) {
    throw new DeploylabError({
      code: 'SESSION_PINNED_TASKS_ALTERED',
      fault: 'infrastructure',
      message: { zh: `场次 ${sessionId} 固定的试题副本被改动：${changed.join(', ')}`, en: `the pinned copy of session ${sessionId}'s tasks was altered: ${changed.join(', ')}` },
      hint: { zh: '从场次的归档中恢复 pinned-tasks 目录', en: "restore the pinned-tasks folder from the session's archive" },
      details: { changed },
    });
  }
  return p;
}

export interface TaskDrift {
  taskId: string;
  /** The content graded: hashed at open. */
  pinned: string;
  /** The same task's folder on disk now; null when it is gone or no longer loads. */
  onDisk: string | null;
}

/** Tasks whose folder under the session's original tasks root differs from what it pinned. */
export function taskDrift(spec: SessionSpec): TaskDrift[] {
  if (!spec.pinned) return [];
  const pinned = spec.pinned.hashes;
  let now: Map<string, string>;
  try {
    now = new Map(loadExamPaper(spec.paperId, spec.tasksRoot).tasks.map((t) => [t.task.id, folderSha256(t.dir)]));
  } catch {
    // The paper on disk no longer loads: every task counts as changed, none as missing content.
    now = new Map();
  }
  return Object.entries(pinned).flatMap(([taskId, hash]) => {
    const onDisk = now.get(taskId) ?? null;
    return onDisk === hash ? [] : [{ taskId, pinned: hash, onDisk }];
  });
}
