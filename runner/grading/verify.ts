import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../core/config.js';
import type { Bilingual } from '../core/errors.js';
import { dockerFor, requireEngine } from '../images/image-build.js';
import { requireBackend, sandboxDriverFor } from '../sandbox/backend.js';
import { asDeploylabError } from '../core/errors.js';
import { log } from '../core/logger.js';
import { metrics } from '../core/metrics.js';
import type { SandboxDriver, SeatRef } from '../sandbox/driver.js';
import type { LoadedTask } from '../tasks/loader.js';
import { gpuFit, missingText } from '../host/gpu-fit.js';
import type { GpuFacts } from '../host/types.js';
import { seatHandleFor } from './seat-handle.js';
import { applySetup, currentImageRef, dockerInSeatImages, gradeSeat, planForTask, runSolution, type CheckGrade, type DockerInSeatImages, type SolutionRun, type TaskGrade } from './task-runner.js';

const vlog = log.child({ module: 'verify' });

/**
 * `tasks verify`: a task proves itself on real containers. An untouched seat earns zero, the
 * reference solution earns full marks, a reset seat (destroyed, provisioned, set up again) earns
 * zero again. Anything else is a defect of the task (or of a probe) and is reported by check.
 */
export type Phase = 'untouched' | 'solved' | 'reset';
/** A shortcut that must not score on its named checks, or a correct solution by other means. */
export type CaseKind = 'tamper' | 'alternative';

export interface VerifyFailure {
  phase: Phase | CaseKind | 'solution' | 'setup';
  /** The tamper or alternative script, for those phases. */
  case?: string;
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
  /** Each tamper and alternative of the task's selfProof, on a seat set up afresh. */
  cases: CaseReport[];
  failures: VerifyFailure[];
  wallMs: number;
  /** Set when verify could not run for this task (engine, images): not a verdict on the task. */
  error?: { code: string; fault: string; message: Bilingual };
  /** Not run: this host cannot give the task what it needs (GPUs). Neither verified nor failed. */
  skipped?: { reason: Bilingual; missing: Bilingual[] };
}

type PhaseGrade = NonNullable<TaskVerifyReport['grades'][Phase]>;

export interface CaseReport {
  kind: CaseKind;
  script: string;
  title: Bilingual;
  /** Tampers: the checks the shortcut must not earn. */
  mustNotPass?: string[];
  run: SolutionRun[];
  grade?: PhaseGrade;
  ok: boolean;
}

export interface VerifyDeps {
  driver: SandboxDriver;
  /** Image of the trusted toolbox (model-load checks), run by the driver's own toolbox. */
  toolboxImage?: string;
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

function summarize(g: TaskGrade): PhaseGrade {
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

/**
 * A tamper earns nothing on the checks it names (its other checks are not judged: a shortcut may
 * do part of the work); an alternative earns full marks. A check the probe could not judge is a
 * defect either way.
 */
function judgeCase(kind: CaseKind, script: string, g: TaskGrade, mustNotPass: readonly string[]): VerifyFailure[] {
  const out: VerifyFailure[] = [];
  const named = new Set(mustNotPass);
  for (const c of g.checks) {
    const o = c.result.outcome;
    const base = { phase: kind, case: script, checkId: c.checkId, kind: c.kind, outcome: o, ...(c.outcome ? { summary: c.outcome.summary } : {}) };
    if (o === 'error') out.push({ ...base, reason: { zh: '探针无法评判（error）', en: 'the probe could not judge (error)' } });
    else if (kind === 'alternative' && o !== 'pass')
      out.push({ ...base, reason: { zh: `另一种正确做法 ${script} 未得满分（${o}）：评分过严`, en: `the correct alternative ${script} did not pass this check (${o}): the grading is too strict` } });
    else if (kind === 'tamper' && named.has(c.checkId) && (o === 'pass' || o === 'partial'))
      out.push({ ...base, reason: { zh: `投机做法 ${script} 在此项得分（${o}）：不做真实工作也能得分`, en: `the shortcut ${script} scores on this check (${o}): it can be earned without the real work` } });
  }
  return out;
}

/**
 * Which tasks this host can verify. The others get a report of their own without a seat: `skipped`
 * when the host lacks the GPUs they need, an error (NVIDIA_SMI_FAILED) when its GPUs could not be read.
 */
export function splitByHostFit(tasks: readonly LoadedTask[], gpu: GpuFacts, session: string): { runnable: LoadedTask[]; notRun: TaskVerifyReport[] } {
  const runnable: LoadedTask[] = [];
  const notRun: TaskVerifyReport[] = [];
  for (const t of tasks) {
    const fit = gpuFit(gpu, t.task.needs);
    if (fit.verdict === 'fits') {
      runnable.push(t);
      continue;
    }
    const report: TaskVerifyReport = { taskId: t.task.id, ok: false, seat: { session, seat: seatNameFor(t.task.id) }, grades: {}, solution: [], cases: [], failures: [], wallMs: 0 };
    const why = missingText(fit.missing);
    if (fit.verdict === 'could-not-check') {
      report.error = { code: 'NVIDIA_SMI_FAILED', fault: 'infrastructure', message: why };
    } else {
      report.skipped = {
        reason: { zh: `需要 GPU 主机，本机未验证：${why.zh}`, en: `needs a GPU host, not verified here: ${why.en}` },
        missing: fit.missing,
      };
    }
    notRun.push(report);
  }
  return { runnable, notRun };
}

/** Verify one task on seats of its own. The seat is destroyed at the end unless `keep`. */
export async function verifyTask(loaded: LoadedTask, deps: VerifyDeps): Promise<TaskVerifyReport> {
  const started = Date.now();
  const { task } = loaded;
  const session = deps.session ?? newVerifySession();
  const ref: SeatRef = { session, seat: seatNameFor(task.id) };
  const say = (zh: string, en: string): void => deps.progress?.({ zh: `[${task.id}] ${zh}`, en: `[${task.id}] ${en}` });
  const report: TaskVerifyReport = { taskId: task.id, ok: false, seat: ref, grades: {}, solution: [], cases: [], failures: [], wallMs: 0 };
  const plan = planForTask(task, ref, { workspaceCpu: deps.workspaceImage, ...(deps.dockerInSeat ? { dockerInSeat: deps.dockerInSeat } : {}) }, { 'deploylab.purpose': 'verify' });
  const seat = seatHandleFor({ driver: deps.driver, ref, task: task.id, toolboxImage: deps.toolboxImage ?? null });
  const onCheck = (phase: string) => (c: CheckGrade): void => say(`  ${phase} ${c.checkId}: ${c.result.outcome}`, `  ${phase} ${c.checkId}: ${c.result.outcome}`);

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

      const cases = [
        ...task.selfProof.tampers.map((t) => ({ kind: 'tamper' as const, folder: 'tampers', ...t })),
        ...task.selfProof.alternatives.map((t) => ({ kind: 'alternative' as const, folder: 'alternatives', mustNotPass: [] as string[], ...t })),
      ];
      for (const c of cases) {
        const what = c.kind === 'tamper' ? { zh: '投机做法', en: 'tamper' } : { zh: '另一种正确做法', en: 'alternative' };
        say(`${what.zh} ${c.script}：在重新准备的考位上运行`, `${what.en} ${c.script}: running it on a seat set up afresh`);
        await deps.driver.destroy(ref);
        const entry: CaseReport = { kind: c.kind, script: c.script, title: c.title, ...(c.kind === 'tamper' ? { mustNotPass: c.mustNotPass } : {}), run: [], ok: false };
        report.cases.push(entry);
        if (!(await provisionAndSetUp())) continue;
        entry.run = await runSolution(deps.driver, ref, loaded, { scripts: [{ name: c.script, content: readFileSync(join(loaded.dir, c.folder, c.script)) }] });
        const bad = entry.run.find((r) => r.exitCode !== 0);
        const before = report.failures.length;
        if (bad) {
          // A shortcut that did not get in place proves nothing by scoring zero.
          report.failures.push({
            phase: c.kind,
            case: c.script,
            reason: {
              zh: `${what.zh} ${c.script} 运行失败（退出码 ${bad.exitCode}${bad.timedOut ? '，超时' : ''}）：${bad.stderr.slice(-300)}`,
              en: `${what.en} ${c.script} failed (exit ${bad.exitCode}${bad.timedOut ? ', timed out' : ''}): ${bad.stderr.slice(-300)}`,
            },
          });
        }
        const g = await gradeSeat(task, seat, { onCheck: onCheck(`${c.kind} ${c.script}`) });
        entry.grade = summarize(g);
        report.failures.push(...judgeCase(c.kind, c.script, g, c.mustNotPass));
        entry.ok = report.failures.length === before;
      }

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
  await deps.driver.toolbox?.sweep({ session: ref.session }).catch(() => undefined);
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

/**
 * Everything `tasks verify` needs: the configured backend's driver (Docker or Kubernetes) and the
 * images, looked up on this host's engine, where they are built (a single-node cluster's dockershim
 * runs the same engine's images). IMAGES_MISSING, ENGINE_UNREACHABLE or CLUSTER_UNREACHABLE (exit 2).
 */
export async function verifyDepsFromConfig(config: Config): Promise<Omit<VerifyDeps, 'progress' | 'keep' | 'session'>> {
  await requireBackend(config);
  // On Kubernetes the images are still looked up on this host's engine, so it must answer too.
  if (config.sandbox.driver === 'k8s') await requireEngine(dockerFor(config));
  const [workspaceImage, toolboxImage] = [await currentImageRef(config, 'workspace-cpu'), await currentImageRef(config, 'toolbox')];
  return {
    driver: sandboxDriverFor(config),
    toolboxImage,
    workspaceImage,
    dockerInSeat: await dockerInSeatImages(config),
  };
}
