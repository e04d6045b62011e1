import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { gradeCheck, LATENCY_SENSITIVE_KINDS } from '../../graders/index.js';
import type { ProbeOutcome, SeatHandle } from '../../graders/probe.js';
import type { Config } from '../core/config.js';
import { DeploylabError, isDeploylabError } from '../core/errors.js';
import { log } from '../core/logger.js';
import { metrics } from '../core/metrics.js';
import { inspectImages } from '../images/image-build.js';
import type { ImageName } from '../images/types.js';
import { parseSeatPlan, type ExecResult, type SandboxDriver, type SeatPlan, type SeatRef } from '../sandbox/driver.js';
import { toCheckResult, type CheckResult } from '../scoring/score.js';
import type { LoadedTask } from '../tasks/loader.js';
import type { Check, Task } from '../tasks/task-schema.js';

const glog = log.child({ module: 'grading' });

const CANDIDATE_UID = 1000;

// ---------------------------------------------------------------------------------------------
// Images and plans

/**
 * The current ref of a sandbox image (built from the current inputs), under the configured base
 * recipe or the other one. Missing or stale: IMAGES_MISSING (infrastructure; build them first).
 */
export async function currentImageRef(config: Config, name: ImageName): Promise<string> {
  const refs: string[] = [];
  for (const offline of [config.images.offline, !config.images.offline]) {
    try {
      const states = await inspectImages({ ...config, images: { ...config.images, offline } });
      const s = states.find((x) => x.name === name);
      if (s?.current) return s.ref;
      if (s) refs.push(s.ref);
    } catch (e) {
      // No Debian mirror in the apt sources only rules out the offline recipe.
      if (!(isDeploylabError(e) && e.code === 'DEBIAN_MIRROR_UNKNOWN')) throw e;
    }
  }
  throw new DeploylabError({
    code: 'IMAGES_MISSING',
    fault: 'infrastructure',
    message: { zh: `沙箱镜像 ${name} 不存在或已过期（需要 ${refs.join(' 或 ')}）`, en: `sandbox image ${name} is missing or out of date (wanted ${refs.join(' or ')})` },
    hint: { zh: '先运行 deploylab images build --offline', en: 'run `deploylab images build --offline` first' },
  });
}

/** Sandbox images preloaded into a docker-in-seat seat's own daemon (no registry in the seat). */
export const DOCKER_IN_SEAT_PRELOAD: readonly ImageName[] = ['app-base'];

export interface DockerInSeatImages {
  /** The sidecar with dockerd. */
  dind: string;
  /** Refs copied from the host engine into the seat's daemon. */
  preload: string[];
}

export interface PlanImages {
  workspaceCpu: string;
  /** For docker-in-seat tasks; without it the `:latest` tags stand in (see planForTask). */
  dockerInSeat?: DockerInSeatImages;
}

/** Current refs of the docker-in-seat sidecar and of what its daemon is preloaded with. */
export async function dockerInSeatImages(config: Config): Promise<DockerInSeatImages> {
  const preload: string[] = [];
  for (const name of DOCKER_IN_SEAT_PRELOAD) preload.push(await currentImageRef(config, name));
  return { dind: await currentImageRef(config, 'dind'), preload };
}

/** Fallback for callers that resolved no docker-in-seat images: the tags the last build left. */
const LATEST_DOCKER_IN_SEAT: DockerInSeatImages = { dind: 'deploylab/dind:latest', preload: DOCKER_IN_SEAT_PRELOAD.map((n) => `deploylab/${n}:latest`) };

/** Seat plan of a task: its profile's image, its resources, labels naming session/seat/task. */
export function planForTask(task: Task, ref: SeatRef, images: PlanImages, labels: Record<string, string> = {}): SeatPlan {
  const { needs } = task;
  if (needs.profile === 'gpu') {
    throw new DeploylabError({
      code: 'GRADING_PROFILE_UNAVAILABLE',
      fault: 'infrastructure',
      message: { zh: `考题 ${task.id} 需要 GPU 考位，本主机无法提供`, en: `task ${task.id} needs a GPU seat, which this host cannot provide` },
    });
  }
  return parseSeatPlan(
    {
      session: ref.session,
      seat: ref.seat,
      task: task.id,
      workspace: { image: images.workspaceCpu },
      resources: { cpus: needs.cpus, memoryMiB: needs.memoryMiB },
      dockerInSeat:
        needs.profile === 'docker-in-seat'
          ? { enabled: true, image: (images.dockerInSeat ?? LATEST_DOCKER_IN_SEAT).dind, preload: (images.dockerInSeat ?? LATEST_DOCKER_IN_SEAT).preload }
          : { enabled: false },
      labels,
    },
    `task ${task.id}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Setup and the reference solution

function setupFailed(task: Task, what: string, r: ExecResult | undefined, cause?: unknown): DeploylabError {
  const tail = r ? `${r.stdout}\n${r.stderr}`.trim().slice(-1500) : '';
  return new DeploylabError({
    code: 'TASK_SETUP_FAILED',
    fault: 'config',
    message: {
      zh: `考题 ${task.id} 的准备步骤失败：${what}${r ? `（退出码 ${r.exitCode}${r.timedOut ? '，超时' : ''}）` : ''}\n${tail}`,
      en: `setup of task ${task.id} failed: ${what}${r ? ` (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''})` : ''}\n${tail}`,
    },
    details: { task: task.id, step: what },
    ...(cause ? { cause } : {}),
  });
}

const sh = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
const uidOf = (owner: 'root' | 'candidate'): number => (owner === 'root' ? 0 : CANDIDATE_UID);

/**
 * Prepare a provisioned seat as the task says: files (mode, owner), commands as their user,
 * long-running services, then the faults the candidate must find.
 */
export async function applySetup(driver: SandboxDriver, ref: SeatRef, loaded: LoadedTask): Promise<void> {
  const { task, dir } = loaded;
  const s = task.setup;
  const byContainer = new Map<string, { path: string; content: Buffer; mode: number; uid: number; gid: number }[]>();
  for (const f of s.files) {
    const list = byContainer.get(f.container) ?? [];
    list.push({ path: f.to, content: readFileSync(join(dir, 'setup', f.from)), mode: parseInt(f.mode, 8), uid: uidOf(f.owner), gid: uidOf(f.owner) });
    byContainer.set(f.container, list);
  }
  for (const [container, files] of byContainer) await driver.writeFiles(ref, files, { container });

  for (const [i, c] of s.commands.entries()) {
    const r = await driver.exec(ref, { cmd: ['bash', '-c', c.run], user: c.user, container: c.container, deadlineMs: c.timeoutSeconds * 1000 });
    if (r.exitCode !== 0) throw setupFailed(task, `setup.commands[${i}]`, r);
  }
  for (const svc of s.services) {
    // Detached from the exec: setsid + nohup, output to a log the task author can read.
    const run = `mkdir -p /var/log/deploylab && setsid nohup bash -c ${sh(svc.run)} >/var/log/deploylab/${svc.name}.log 2>&1 </dev/null &`;
    const r = await driver.exec(ref, { cmd: ['bash', '-c', run], user: svc.user, container: svc.container, deadlineMs: 30_000 });
    if (r.exitCode !== 0) throw setupFailed(task, `setup.services ${svc.name}`, r);
  }
  for (const [i, f] of s.faults.entries()) {
    if (f.kind === 'replace-file') {
      await driver.writeFiles(ref, [{ path: f.to, content: readFileSync(join(dir, 'setup', f.from)), mode: 0o644, uid: 0, gid: 0 }], { container: f.container });
      continue;
    }
    const cmd =
      f.kind === 'kill-process'
        ? f.match.exe !== undefined
          ? `pkill -KILL -x ${sh(f.match.exe.slice(0, 15))} || true`
          : `pkill -KILL -f ${sh(f.match.commandMatches ?? '')} || true`
        : f.kind === 'delete-file'
          ? `rm -rf -- ${sh(f.path)}`
          : f.kind === 'chmod'
            ? `chmod ${f.mode} -- ${sh(f.path)}`
            : `fallocate -l ${f.mib}M -- ${sh(f.path)} || dd if=/dev/zero of=${sh(f.path)} bs=1M count=${f.mib} status=none`;
    const r = await driver.exec(ref, { cmd: ['bash', '-c', cmd], user: 'root', container: f.container, deadlineMs: 60_000 });
    if (r.exitCode !== 0) throw setupFailed(task, `setup.faults[${i}] (${f.kind})`, r);
  }
}

export interface SolutionRun {
  script: string;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
}

/** Where solution scripts are put in the seat (outside the workspace the evidence archive takes). */
export const SOLUTION_DIR = '/tmp/deploylab-solution';

/**
 * Run a script list inside the seat as the candidate, through exec like a candidate's shell, all
 * of them within the solution's time allowance. Stops at the first script that fails.
 */
export async function runSolution(
  driver: SandboxDriver,
  ref: SeatRef,
  loaded: LoadedTask,
  opts: { scripts?: { name: string; content: Buffer | string }[] } = {},
): Promise<SolutionRun[]> {
  const { task, dir } = loaded;
  const scripts = opts.scripts ?? task.solution.scripts.map((name) => ({ name, content: readFileSync(join(dir, 'solution', name)) }));
  await driver.writeFiles(
    ref,
    scripts.map((s) => ({ path: `${SOLUTION_DIR}/${s.name}`, content: s.content, mode: 0o755, uid: CANDIDATE_UID, gid: CANDIDATE_UID })),
  );
  const until = Date.now() + task.solution.timeoutSeconds * 1000;
  const runs: SolutionRun[] = [];
  for (const s of scripts) {
    const r = await driver.exec(ref, {
      cmd: ['bash', `${SOLUTION_DIR}/${s.name}`],
      user: 'candidate',
      workdir: '/workspace',
      env: { HOME: '/home/candidate', USER: 'candidate' },
      deadlineMs: Math.max(1000, until - Date.now()),
      outputCapBytes: 64 * 1024,
    });
    runs.push({ script: s.name, exitCode: r.exitCode, timedOut: r.timedOut, durationMs: r.durationMs, stdout: r.stdout, stderr: r.stderr });
    if (r.exitCode !== 0) break;
  }
  return runs;
}

// ---------------------------------------------------------------------------------------------
// Grading one seat

export interface CheckGrade {
  checkId: string;
  kind: string;
  points: number;
  /** The probe outcome; absent when the check was blocked by a dependency. */
  outcome?: ProbeOutcome;
  result: CheckResult;
  /** For blocked checks: the dependencies that did not pass. */
  blockedBy?: string[];
}

export interface TaskGrade {
  taskId: string;
  checks: CheckGrade[];
  earned: number;
  possible: number;
  durationMs: number;
}

export interface GradeOptions {
  /** Probes running at once (default 2). */
  concurrency?: number;
  /**
   * Run latency-sensitive probes (load, rate-limit, openai-chat) alone. Default: when the host has
   * no spare cores (fewer than 4).
   */
  exclusiveLatency?: boolean;
  /** Called as each check finishes (progress). */
  onCheck?: (g: CheckGrade) => void;
}

/**
 * Grade every check of a task against a seat, in dependency order. A check whose dependencies did
 * not all pass is `blocked` (0 points) and not probed. Bounded concurrency; latency-sensitive
 * probes run alone on a small host so their figures are not skewed by the others.
 */
export async function gradeSeat(task: Task, seat: SeatHandle, opts: GradeOptions = {}): Promise<TaskGrade> {
  const started = Date.now();
  const concurrency = Math.max(1, opts.concurrency ?? 2);
  const exclusive = opts.exclusiveLatency ?? availableParallelism() < 4;
  const byId = new Map(task.checks.map((c) => [c.id, c]));
  const done = new Map<string, CheckGrade>();
  const pending = new Set(task.checks.map((c) => c.id));
  const running = new Map<string, { latency: boolean; p: Promise<void> }>();

  const finish = (g: CheckGrade): void => {
    done.set(g.checkId, g);
    metrics.gradingChecks.inc({ kind: g.kind, outcome: g.result.outcome });
    opts.onCheck?.(g);
  };
  const grade = async (c: Check): Promise<void> => {
    const outcome = await gradeCheck(seat, c.probe);
    const result = toCheckResult({ taskId: task.id, check: c, status: outcome.status, score: outcome.score });
    glog.debug({ task: task.id, check: c.id, status: outcome.status }, 'check graded');
    finish({ checkId: c.id, kind: c.probe.kind, points: c.points, outcome, result });
  };

  while (pending.size > 0 || running.size > 0) {
    let started1 = false;
    for (const id of [...pending]) {
      const c = byId.get(id)!;
      const deps = c.dependsOn;
      if (deps.some((d) => byId.has(d) && !done.has(d))) continue;
      const notPassed = deps.filter((d) => byId.has(d) && done.get(d)!.result.outcome !== 'pass');
      if (notPassed.length > 0) {
        pending.delete(id);
        finish({
          checkId: id,
          kind: c.probe.kind,
          points: c.points,
          blockedBy: notPassed,
          result: toCheckResult({ taskId: task.id, check: c, status: 'blocked' }),
        });
        started1 = true;
        continue;
      }
      const latency = LATENCY_SENSITIVE_KINDS.has(c.probe.kind);
      if (running.size >= concurrency) break;
      if (exclusive && running.size > 0 && (latency || [...running.values()].some((r) => r.latency))) continue;
      pending.delete(id);
      const p = grade(c).finally(() => running.delete(id));
      running.set(id, { latency, p });
      started1 = true;
    }
    if (!started1 && running.size > 0) await Promise.race([...running.values()].map((r) => r.p));
    else if (!started1 && running.size === 0 && pending.size > 0) {
      // Only reachable with a dependency cycle, which the loader refuses.
      throw new DeploylabError({ code: 'GRADING_DEPENDENCY_CYCLE', fault: 'config', message: { zh: `考题 ${task.id} 的检查项依赖成环`, en: `checks of task ${task.id} depend on each other in a cycle` } });
    }
  }
  const checks = task.checks.map((c) => done.get(c.id)!);
  const earned = checks.reduce((a, g) => a + g.result.earned, 0);
  const possible = checks.reduce((a, g) => a + g.points, 0);
  return { taskId: task.id, checks, earned, possible, durationMs: Date.now() - started };
}
