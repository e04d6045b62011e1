import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DeploylabError } from '../core/errors.js';
import { parseSeatPlan, type SeatPlan, type SeatRef } from '../sandbox/driver.js';
import { DEFAULT_TASKS_ROOT, formatProblem, loadPaperFile, loadTaskTree, type LoadedTask } from '../tasks/loader.js';
import type { Paper } from '../tasks/task-schema.js';

export interface LoadedExamPaper {
  paper: Paper;
  /** In paper order. */
  tasks: LoadedTask[];
}

/**
 * A paper and its tasks. Only problems of this paper and its own tasks stop it: a broken task
 * elsewhere in the tree is not this exam's concern.
 */
export function loadExamPaper(paperId: string, root: string = DEFAULT_TASKS_ROOT): LoadedExamPaper {
  const file = join(root, 'papers', `${paperId}.yaml`);
  if (!existsSync(file)) {
    throw new DeploylabError({
      code: 'PAPER_NOT_FOUND',
      fault: 'config',
      message: { zh: `找不到试卷 ${paperId}（${file}）`, en: `no paper ${paperId} (${file})` },
      hint: { zh: '运行 deploylab tasks list 查看可用试卷', en: 'run deploylab tasks list to see the papers' },
    });
  }
  const tree = loadTaskTree(root);
  const byId = new Map(tree.tasks.map((t) => [t.task.id, t]));
  const r = loadPaperFile(file, byId);
  const paperTasks = r.paper ? r.paper.paper.tasks : [];
  const mine = tree.problems.filter((p) => paperTasks.some((id) => resolve(p.file).includes(`/${id}/`)));
  const problems = [...r.problems, ...mine];
  if (!r.paper || problems.length > 0) {
    const lines = problems.map((p) => formatProblem(p)).join('\n  ');
    throw new DeploylabError({
      code: 'PAPER_INVALID',
      fault: 'config',
      message: { zh: `试卷 ${paperId} 有 ${problems.length} 处问题：\n  ${lines}`, en: `paper ${paperId} has ${problems.length} problem(s):\n  ${lines}` },
      details: { problems },
    });
  }
  return { paper: r.paper.paper, tasks: r.paper.paper.tasks.map((id) => byId.get(id)!) };
}

/**
 * One candidate's seat for a whole paper: one workspace that every task of the paper is set up in
 * (tasks are written to share a seat), sized for the largest task. The task label names the paper.
 */
export function planForPaper(p: LoadedExamPaper, ref: SeatRef, images: { workspaceCpu: string }): SeatPlan {
  const gpu = p.tasks.find((t) => t.task.needs.profile === 'gpu');
  if (gpu) {
    throw new DeploylabError({
      code: 'SESSION_PROFILE_UNAVAILABLE',
      fault: 'infrastructure',
      message: { zh: `考题 ${gpu.task.id} 需要 GPU 考位，本版本的场次尚不支持`, en: `task ${gpu.task.id} needs a GPU seat, which sessions do not support yet` },
    });
  }
  return parseSeatPlan(
    {
      session: ref.session,
      seat: ref.seat,
      task: p.paper.id,
      workspace: { image: images.workspaceCpu },
      resources: {
        cpus: Math.max(...p.tasks.map((t) => t.task.needs.cpus)),
        memoryMiB: Math.max(...p.tasks.map((t) => t.task.needs.memoryMiB)),
      },
      dockerInSeat: { enabled: p.tasks.some((t) => t.task.needs.profile === 'docker-in-seat') },
      labels: { 'deploylab.paper': p.paper.id },
    },
    `paper ${p.paper.id}`,
  );
}
