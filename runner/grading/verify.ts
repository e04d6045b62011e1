import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import type { Config } from '../core/config.js';
import type { Bilingual } from '../core/errors.js';
import { dockerFor, requireEngine } from '../images/image-build.js';
import { dockerDriverFor } from '../sandbox/docker-driver.js';
import { asDeploylabError } from '../core/errors.js';
import { log } from '../core/logger.js';
import { metrics } from '../core/metrics.js';
import type { SandboxDriver, SeatRef } from '../sandbox/driver.js';
import type { LoadedTask } from '../tasks/loader.js';
import { seatHandleFor, sweepToolboxes } from './seat-handle.js';
import { applySetup, currentImageRef, dockerInSeatImages, gradeSeat, planForTask, runSolution, type CheckGrade, type DockerInSeatImages, type SolutionRun, type TaskGrade } from './task-runner.js';

const vlog = log.child({ module: 'verify' });

/**
 * `tasks verify`: a task proves itself on real containers. An untouched seat earns zero, the
 * reference solution earns full marks, a reset seat (destroyed, provisioned, set up again) earns
 * zero again. Anything else is a defect of the task (or of a probe) and is reported by check.
 */
export type Phase = 'untouched' | 'solved' | 'reset';

export interface VerifyFailure {
  phase: Phase | 'solution' | 'setup';
  checkId?: string;
  kind?: string;
  outcome?: string;
  /** Why this is a defect, then the probe's own summary. */
  reason: Bilingual;
  summary?: Bilingual;
}

export interface TaskVerifyReport {
  taskId: string;
  ok: boolean;
  seat: SeatRef;
  grades: Partial<Record<Phase, { earned: number; possible: number; checks: { checkId: string; kind: string; outcome: string; earned: number; summary?: Bilingual }[] }>>;
  solution: SolutionRun[];
  failures: VerifyFailure[];
  wallMs: number;
  /** Set when verify could not run for this task (engine, images): not a verdict on the task. */
  error?: { code: string; fault: string; message: Bilingual };
}

export interface VerifyDeps {
  driver: SandboxDriver;
  /** Engine and image for the trusted toolbox (model-load checks). */
  toolbox?: { docker: Docker; image: string };
  workspaceImage: string;
  /** Sidecar and preloaded images for docker-in-seat tasks. */
  dockerInSeat?: DockerInSeatImages;
  /** Session label of every seat; `verify-<random>` by default. */
  session?: string;
  keep?: boolean;
  progress?: (line: Bilingual) => void;
}

export function newVerifySession(): string {
  return `verify-${randomBytes(4).toString('hex')}`;
}

/** Seat names are ≤ 40 characters; task ids may be 48. */
export function seatNameFor(taskId: string): string {
  return taskId.slice(0, 40).replace(/-+$/, '');
}

function summarize(g: TaskGrade): NonNullable<TaskVerifyReport['grades'][Phase]> {
  return {
    earned: g.earned,
    possible: g.possible,
    checks: g.checks.map((c) => ({
      checkId: c.checkId,
      kind: c.kind,
      outcome: c.result.outcome,
      earned: c.result.earned,
      ...(c.outcome ? { summary: c.outcome.summary } : c.blockedBy ? { summary: { zh: `依赖未通过：${c.blockedBy.join(', ')}`, en: `blocked by: ${c.blockedBy.join(', ')}` } } : {}),
    })),
  };
}

/** What must hold for each phase, check by check. */
function judgePhase(phase: Phase, g: TaskGrade): VerifyFailure[] {
  const out: VerifyFailure[] = [];
  const fail = (c: CheckGrade, reason: Bilingual): void => {
    out.push({ phase, checkId: c.checkId, kind: c.kind, outcome: c.result.outcome, reason, ...(c.outcome ? { summary: c.outcome.summary } : {}) });
  };
  for (const c of g.checks) {
    const o = c.result.outcome;
    if (o === 'error') fail(c, { zh: '探针无法评判（error）', en: 'the probe could not judge (error)' });
    else if (phase === 'solved' && o !== 'pass') fail(c, { zh: `参考答案未得满分（${o}）`, en: `the reference solution did not pass this check (${o})` });
    else if (phase !== 'solved' && (o === 'pass' || o === 'partial'))
      fail(c, phase === 'untouched'
        ? { zh: `未作答的考位得分（${o}）：不做就能得分`, en: `an untouched seat scores on it (${o}): it can be earned without doing the work` }
        : { zh: `重置后的考位仍得分（${o}）`, en: `a reset seat still scores on it (${o})` });
  }
  return out;
}

/** Verify one task on seats of its own. The seat is destroyed at the end unless `keep`. */
export async function verifyTask(loaded: LoadedTask, deps: VerifyDeps): Promise<TaskVerifyReport> {
  const started = Date.now();
  const { task } = loaded;
  const session = deps.session ?? newVerifySession();
  const ref: SeatRef = { session, seat: seatNameFor(task.id) };
  const say = (zh: string, en: string): void => deps.progress?.({ zh: `[${task.id}] ${zh}`, en: `[${task.id}] ${en}` });
  const report: TaskVerifyReport = { taskId: task.id, ok: false, seat: ref, grades: {}, solution: [], failures: [], wallMs: 0 };
  const plan = planForTask(task, ref, { workspaceCpu: deps.workspaceImage, ...(deps.dockerInSeat ? { dockerInSeat: deps.dockerInSeat } : {}) }, { 'deploylab.purpose': 'verify' });
  const seat = seatHandleFor({ driver: deps.driver, ref, task: task.id, ...(deps.toolbox ? { toolbox: deps.toolbox } : {}) });
  const onCheck = (phase: Phase) => (c: CheckGrade): void => say(`  ${phase} ${c.checkId}: ${c.result.outcome}`, `  ${phase} ${c.checkId}: ${c.result.outcome}`);

  const provisionAndSetUp = async (): Promise<boolean> => {
    await deps.driver.provision(plan);
    try {
      await applySetup(deps.driver, ref, loaded);
      return true;
    } catch (e) {
      const err = asDeploylabError(e);
      if (err.fault !== 'config') throw err;
      report.failures.push({ phase: 'setup', reason: { zh: err.zh, en: err.message } });
      return false;
    }
  };

  try {
    say('分配考位并执行准备步骤', 'provisioning the seat and running setup');
    if (await provisionAndSetUp()) {
      say('评分：未作答的考位（应为 0 分）', 'grading the untouched seat (must be zero)');
      const g0 = await gradeSeat(task, seat, { onCheck: onCheck('untouched') });
      report.grades.untouched = summarize(g0);
      report.failures.push(...judgePhase('untouched', g0));

      say('以考生身份运行参考答案', 'running the reference solution as the candidate');
      report.solution = await runSolution(deps.driver, ref, loaded);
      const bad = report.solution.find((r) => r.exitCode !== 0);
      if (bad) {
        report.failures.push({
          phase: 'solution',
          reason: {
            zh: `参考答案 ${bad.script} 失败（退出码 ${bad.exitCode}${bad.timedOut ? '，超时' : ''}）：${bad.stderr.slice(-300)}`,
            en: `reference solution ${bad.script} failed (exit ${bad.exitCode}${bad.timedOut ? ', timed out' : ''}): ${bad.stderr.slice(-300)}`,
          },
        });
      }
      say('评分：参考答案（应为满分）', 'grading the reference solution (must be full marks)');
      const g1 = await gradeSeat(task, seat, { onCheck: onCheck('solved') });
      report.grades.solved = summarize(g1);
      report.failures.push(...judgePhase('solved', g1));

      say('重置考位（销毁、重新分配、重新准备）', 'resetting the seat (destroy, provision, set up again)');
      await deps.driver.destroy(ref);
      if (await provisionAndSetUp()) {
        say('评分：重置后的考位（应为 0 分）', 'grading the reset seat (must be zero)');
        const g2 = await gradeSeat(task, seat, { onCheck: onCheck('reset') });
        report.grades.reset = summarize(g2);
        report.failures.push(...judgePhase('reset', g2));
      }
    }
    report.ok = report.failures.length === 0;
  } catch (e) {
    const err = asDeploylabError(e);
    vlog.error({ task: task.id, code: err.code }, 'verify could not run');
    report.error = { code: err.code, fault: err.fault, message: { zh: err.zh, en: err.message } };
    report.ok = false;
  } finally {
    if (!deps.keep) await cleanup(deps, ref);
    report.wallMs = Date.now() - started;
    metrics.verifyTaskSeconds.observe({ result: report.error ? 'error' : report.ok ? 'verified' : 'failed' }, report.wallMs / 1000);
  }
  return report;
}

async function cleanup(deps: VerifyDeps, ref: SeatRef): Promise<void> {
  await deps.driver.destroy(ref).catch((e: unknown) => vlog.warn({ err: e, ...ref }, 'destroy after verify failed'));
  if (deps.toolbox) await sweepToolboxes(deps.toolbox.docker, ref.session).catch(() => undefined);
}

/**
 * Verify tasks one after another (a small host's cores belong to one seat's probes at a time).
 * Ctrl-C / SIGTERM: the session's seats are removed before the process ends, unless `keep`.
 */
export async function verifyTasks(tasks: readonly LoadedTask[], deps: VerifyDeps): Promise<TaskVerifyReport[]> {
  const session = deps.session ?? newVerifySession();
  const d = { ...deps, session };
  const onSignal = (sig: NodeJS.Signals): void => {
    deps.progress?.({ zh: `收到 ${sig}，正在清理会话 ${session} 的考位`, en: `${sig}: removing the seats of session ${session}` });
    const done = (): never => process.exit(sig === 'SIGINT' ? 130 : 143);
    if (deps.keep) done();
    void deps.driver
      .sweep({ session })
      .then(() => (deps.toolbox ? sweepToolboxes(deps.toolbox.docker, session) : 0))
      .catch(() => undefined)
      .finally(done);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const out: TaskVerifyReport[] = [];
    for (const t of tasks) out.push(await verifyTask(t, d));
    return out;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!deps.keep) await deps.driver.sweep({ session }).catch(() => undefined);
  }
}

/** Everything `tasks verify` needs from the engine, or IMAGES_MISSING / ENGINE_UNREACHABLE (exit 2). */
export async function verifyDepsFromConfig(config: Config): Promise<Omit<VerifyDeps, 'progress' | 'keep' | 'session'>> {
  const docker = dockerFor(config);
  await requireEngine(docker);
  const [workspaceImage, toolboxImage] = [await currentImageRef(config, 'workspace-cpu'), await currentImageRef(config, 'toolbox')];
  return {
    driver: dockerDriverFor(config, docker),
    toolbox: { docker, image: toolboxImage },
    workspaceImage,
    dockerInSeat: await dockerInSeatImages(config),
  };
}
