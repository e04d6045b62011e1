/**
 * `container` probe: containers and images as a Docker daemon reports them, never by running the
 * candidate's docker client.
 * - scope `inner`: the seat's own daemon (the docker-in-seat sidecar), reached from the harness at
 *   the sidecar's seat address (`endpoint(2375, { container: 'dind' })`) with dockerode;
 * - scope `seat`: the seat's own containers, through the seat capability `inspect-containers`
 *   (the seat handle's `inspectContainers`, capabilities.ts).
 * Containers: running, count, health, restart policy, CPU/memory limits, published ports, user.
 * Images (`image`): exposed ports, a non-root user, labels, built FROM a preloaded base.
 */
import type Docker from 'dockerode';
import type { z } from 'zod';
import { DeploylabError } from '../../runner/core/errors.js';
import { ContainerParamsSchema } from './params.js';
import { judge, show, type Assertion } from '../shared/assertions.js';
import { containerName, matchesContainer } from '../shared/container-match.js';
import { DIND_ROLE, innerDocker } from '../shared/inner-docker.js';
import { hostPidsOfInner, procStatus } from '../shared/inner-pids.js';
import { capability } from '../capabilities.js';
import { DockerfileError, finalImageSteps, historyKeyword, parseDockerfile, type HistoryEntry } from '../parsers/dockerfile.js';
import { defineProbe, failed, note, type Deadline, type Evidence, type SeatHandle } from '../probe.js';

export type ContainerParams = z.output<typeof ContainerParamsSchema>;

/** Config.User names root: empty, "root", "0", or a "0:group" / "root:group" form. */
export function isRootUser(user: string | undefined): boolean {
  const u = (user ?? '').trim().split(':')[0] ?? '';
  return u === '' || u === 'root' || u === '0';
}

const portKey = (p: number): string => `${p}/tcp`;

export function checkImage(info: Docker.ImageInspectInfo, spec: NonNullable<ContainerParams['image']>, base?: Docker.ImageInspectInfo | null): Assertion[] {
  const a: Assertion[] = [];
  const cfg = info.Config;
  const exposed = Object.keys(cfg.ExposedPorts ?? {});
  for (const p of spec.exposes ?? []) {
    a.push({ id: `exposes:${p}`, ok: exposed.includes(portKey(p)), expected: portKey(p), actual: exposed.join(', ') || '(none)' });
  }
  if (spec.nonRootUser !== undefined) {
    const root = isRootUser(cfg.User);
    a.push({ id: 'user', ok: spec.nonRootUser ? !root : root, expected: spec.nonRootUser ? 'a non-root USER' : 'root', actual: cfg.User || '(empty: root)' });
  }
  for (const [k, v] of Object.entries(spec.labels ?? {})) {
    const got = cfg.Labels?.[k];
    a.push({ id: `label:${k}`, ok: got === v, expected: v, actual: got ?? '(absent)' });
  }
  if (spec.basedOn !== undefined) {
    const mine = info.RootFS?.Layers ?? [];
    const theirs = base?.RootFS?.Layers ?? [];
    // A prefix of layers and another image (a Dockerfile with only metadata adds no layer).
    const ok = base != null && base.Id !== info.Id && theirs.length > 0 && theirs.length <= mine.length && theirs.every((l, i) => mine[i] === l);
    a.push({ id: 'basedOn', ok, expected: `built FROM ${spec.basedOn}`, actual: base == null ? `${spec.basedOn} not in the daemon` : ok ? 'its layers come first' : 'layers differ' });
  }
  return a;
}

export function checkContainers(found: Docker.ContainerInspectInfo[], e: ContainerParams['expect']): Assertion[] {
  const a: Assertion[] = [];
  const running = found.filter((c) => c.State.Running);
  if (!e.running) {
    a.push({ id: 'running', ok: running.length === 0, expected: 'none running', actual: `${running.length} running` });
    return a;
  }
  const min = Math.max(1, e.count?.min ?? 1);
  const max = e.count?.max;
  a.push({
    id: 'count',
    ok: running.length >= min && (max === undefined || running.length <= max),
    expected: max === undefined ? `≥ ${min} running` : `${min}..${max} running`,
    actual: `${running.length} running of ${found.length}`,
  });
  const each = (id: string, expected: string, f: (c: Docker.ContainerInspectInfo) => [boolean, string]): void => {
    const r = running.map((c) => ({ name: containerName(c), ...((([ok, actual]) => ({ ok, actual }))(f(c))) }));
    a.push({ id, ok: r.length > 0 && r.every((x) => x.ok), expected, actual: r.map((x) => `${x.name}: ${x.actual}`).join('; ') || '(no container)' });
  };
  if (e.healthy !== undefined) {
    each('healthy', e.healthy ? 'healthy' : 'not healthy', (c) => {
      const s = c.State.Health?.Status ?? 'no healthcheck';
      return [(s === 'healthy') === e.healthy, s];
    });
  }
  if (e.restartPolicy !== undefined) {
    each('restartPolicy', e.restartPolicy, (c) => {
      const n = c.HostConfig.RestartPolicy?.Name || 'no';
      return [n === e.restartPolicy, n];
    });
  }
  if (e.maxCpus !== undefined) {
    const max = e.maxCpus;
    each('maxCpus', `≤ ${max} CPUs`, (c) => {
      const nano = c.HostConfig.NanoCpus ?? 0;
      const quota = c.HostConfig.CpuQuota ?? 0;
      const period = c.HostConfig.CpuPeriod || 100_000;
      const cpus = nano > 0 ? nano / 1e9 : quota > 0 ? quota / period : Infinity;
      return [cpus <= max + 1e-9, Number.isFinite(cpus) ? `${cpus} CPUs` : 'unlimited'];
    });
  }
  if (e.maxMemoryMiB !== undefined) {
    const max = e.maxMemoryMiB;
    each('maxMemoryMiB', `≤ ${max} MiB`, (c) => {
      const mem = c.HostConfig.Memory ?? 0;
      return [mem > 0 && mem <= max * 1024 * 1024, mem > 0 ? `${Math.round(mem / 1048576)} MiB` : 'unlimited'];
    });
  }
  for (const port of e.publishes ?? []) {
    // Published on the daemon's host side (for an inner daemon: the sidecar's address).
    const anyPublishes = running.some((c) =>
      Object.values(c.NetworkSettings.Ports ?? {}).some((bindings) => (bindings ?? []).some((b) => Number(b.HostPort) === port)),
    );
    a.push({ id: `publishes:${port}`, ok: anyPublishes, expected: `host port ${port} published`, actual: anyPublishes ? 'published' : 'not published' });
  }
  if (e.nonRootUser !== undefined) {
    const want = e.nonRootUser;
    each('user', want ? 'non-root' : 'root', (c) => [want ? !isRootUser(c.Config.User) : isRootUser(c.Config.User), c.Config.User || '(root)']);
  }
  return a;
}

async function inspectAll(docker: Docker): Promise<Docker.ContainerInspectInfo[]> {
  const list = await docker.listContainers({ all: true });
  const out: Docker.ContainerInspectInfo[] = [];
  for (const c of list) {
    try {
      out.push(await docker.getContainer(c.Id).inspect());
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e; // removed meanwhile
    }
  }
  return out;
}

/**
 * `builtFrom` and `addsFiles`: the image's history beyond the base's (its own entries, oldest
 * first) against the Dockerfile's final-stage instructions, and a COPY/ADD step that added files.
 */
export function checkHistory(
  mine: HistoryEntry[],
  baseCount: number,
  spec: NonNullable<ContainerParams['image']>,
  dockerfile: { path: string; text: string | null } | null,
): { assertions: Assertion[]; data: Record<string, unknown> } {
  const a: Assertion[] = [];
  // The engine lists history newest first; the base's entries are the oldest.
  const own = mine.slice(0, Math.max(0, mine.length - baseCount)).reverse();
  const keywords = own.map((h) => historyKeyword(h) ?? '?');
  const data: Record<string, unknown> = {
    historyBeyondBase: own.map((h) => ({ step: historyKeyword(h), createdBy: show(h.CreatedBy ?? '', 160), size: h.Size ?? 0 })),
  };
  if (spec.addsFiles !== undefined) {
    const adds = own.filter((h, i) => (keywords[i] === 'COPY' || keywords[i] === 'ADD') && (h.Size ?? 0) > 0);
    a.push({
      id: 'addsFiles',
      ok: spec.addsFiles ? adds.length > 0 : adds.length === 0,
      expected: spec.addsFiles ? 'a COPY/ADD step beyond the base that adds files' : 'no files added',
      actual: adds.length > 0 ? adds.map((h) => `${show(h.CreatedBy ?? '', 80)} (${h.Size} bytes)`).join('; ') : own.length === 0 ? 'no steps beyond the base' : 'no COPY/ADD step with content',
    });
  }
  if (spec.builtFrom && dockerfile) {
    let steps: string[] | null = null;
    let problem = '';
    if (dockerfile.text === null) problem = `${dockerfile.path} not found`;
    else {
      try {
        steps = finalImageSteps(parseDockerfile(dockerfile.text)).steps.map((s) => s.keyword);
      } catch (e) {
        if (!(e instanceof DockerfileError)) throw e;
        problem = `${dockerfile.path} ${e.message}`;
      }
    }
    data.dockerfileSteps = steps;
    const ok = steps !== null && steps.length > 0 && steps.join(' ') === keywords.join(' ');
    a.push({
      id: 'builtFrom',
      ok,
      expected: `built from ${dockerfile.path}: history beyond the base = ${steps ? steps.join(' ') || '(no steps)' : 'its instructions'}`,
      actual: problem || (ok ? 'the same steps in the same order' : `history beyond the base: ${keywords.join(' ') || '(nothing: the base itself)'}`),
    });
  }
  return { assertions: a, data };
}

/** The container's effective ENTRYPOINT + CMD equal its image's (nothing overridden in compose or docker run). */
export function runsImageCommand(c: Docker.ContainerInspectInfo, image: Docker.ImageInspectInfo | null): [boolean, string] {
  if (!image) return [false, 'image not found'];
  const eq = (x: unknown, y: unknown): boolean => JSON.stringify(x ?? null) === JSON.stringify(y ?? null);
  const ok = eq(c.Config.Entrypoint, image.Config.Entrypoint) && eq(c.Config.Cmd, image.Config.Cmd);
  const cmd = [...(c.Config.Entrypoint ?? []), ...((c.Config.Cmd as string[] | null) ?? [])].join(' ');
  return [ok, ok ? `the image's own (${show(cmd, 80)})` : `overridden: ${show(cmd, 120)}`];
}

/** Cap on how long a healthcheck may take while its container is stopped (Docker's default timeout). */
export const HEALTH_STOPPED_MAX_MS = 30_000;

interface ExecResult {
  exitCode: number | null;
  timedOut: boolean;
  output: string;
  ms: number;
  error?: string;
}

/** Run a command in a running inner container as Docker runs its healthcheck; null exit when it outlived `ms`. */
async function execIn(docker: Docker, id: string, cmd: string[], ms: number): Promise<ExecResult> {
  const t0 = Date.now();
  let exec: Docker.Exec;
  let stream: NodeJS.ReadableStream;
  try {
    exec = await docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    stream = (await exec.start({ hijack: true, stdin: false })) as unknown as NodeJS.ReadableStream;
  } catch (e) {
    return { exitCode: null, timedOut: false, output: '', ms: Date.now() - t0, error: show(String((e as Error).message), 200) };
  }
  const chunks: Buffer[] = [];
  let kept = 0;
  stream.on('data', (c: Buffer) => {
    if (kept < 4096) chunks.push(c);
    kept += c.length;
  });
  const ended = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    const done = (): void => {
      clearTimeout(t);
      resolve(true);
    };
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', done);
  });
  if (!ended) (stream as unknown as { destroy?: () => void }).destroy?.();
  let exitCode: number | null;
  try {
    const i = await exec.inspect();
    exitCode = i.Running ? null : (i.ExitCode ?? null);
  } catch {
    exitCode = null;
  }
  // Docker's frames carry an 8-byte header; for evidence the printable text is enough.
  const output = [...Buffer.concat(chunks).toString('utf8')].filter((ch) => ch >= ' ' || ch === '\n').join('').slice(0, 500);
  return { exitCode: ended ? exitCode : null, timedOut: !ended, output, ms: Date.now() - t0 };
}

/**
 * Does the container's healthcheck test the service? Its processes are stopped from the host
 * (SIGSTOP), its own healthcheck command is run in it as Docker would: it must not succeed within
 * its timeout; the processes continue (SIGCONT, always) and the command must then succeed.
 */
export async function healthcheckProof(
  seat: SeatHandle,
  docker: Docker,
  c: Docker.ContainerInspectInfo,
  deadline: Deadline,
): Promise<{ ok: boolean; actual: string; data: Record<string, unknown> }> {
  const hc = c.Config.Healthcheck;
  const test = hc?.Test ?? [];
  const cmd = test[0] === 'CMD' ? test.slice(1) : test[0] === 'CMD-SHELL' && test[1] !== undefined ? ['/bin/sh', '-c', test[1]] : null;
  if (!cmd || cmd.length === 0) return { ok: false, actual: 'no healthcheck', data: { test } };
  const timeoutMs = Math.min(HEALTH_STOPPED_MAX_MS, hc?.Timeout ? Math.ceil(hc.Timeout / 1e6) : HEALTH_STOPPED_MAX_MS);
  const top = (await docker.getContainer(c.Id).top({ ps_args: '-o pid' })) as { Titles: string[]; Processes: string[][] };
  const inner = top.Processes.map((r) => Number(r[0])).filter((n) => Number.isInteger(n) && n > 0);
  const dindPids = (await seat.listProcesses()).filter((x) => x.role === DIND_ROLE).map((x) => x.hostPid);
  if (dindPids.some((pid) => pid <= 0) || (await procStatus(dindPids[0] ?? -1)) === null) {
    throw new DeploylabError({
      code: 'PROBE_HOST_PIDS_UNAVAILABLE',
      fault: 'infrastructure',
      message: { zh: '本机 /proc 中看不到考位 Docker 守护进程的进程，无法暂停容器', en: "the seat daemon's processes do not show in this machine's /proc: the container cannot be stopped" },
      hint: { zh: '在容器引擎所在主机上以 root 运行评分程序', en: "run the grader as root on the engine's host" },
    });
  }
  const map = await hostPidsOfInner(dindPids, inner);
  const hostPids = inner.map((pid) => map.get(pid)).filter((x): x is number => x !== undefined);
  if (hostPids.length === 0) {
    throw new DeploylabError({
      code: 'PROBE_HOST_PIDS_UNAVAILABLE',
      fault: 'infrastructure',
      message: { zh: '找不到容器进程在主机上的进程号', en: "the container's processes have no host PID this machine can see" },
      details: { inner },
    });
  }
  const signal = async (sig: 'SIGSTOP' | 'SIGCONT'): Promise<void> => {
    for (const [dindPid, pid] of map) {
      // PIDs are reused: still the process the daemon named?
      if ((await procStatus(pid))?.nspid[1] !== dindPid) continue;
      try {
        process.kill(pid, sig);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    }
  };
  let stopped: ExecResult;
  try {
    await signal('SIGSTOP');
    stopped = await execIn(docker, c.Id, cmd, Math.min(timeoutMs, Math.max(1_000, deadline.remainingMs() - 8_000)));
  } finally {
    await signal('SIGCONT');
  }
  const running = await execIn(docker, c.Id, cmd, Math.min(timeoutMs, Math.max(1_000, deadline.remainingMs() - 2_000)));
  const passedStopped = stopped.exitCode === 0;
  const passedRunning = running.exitCode === 0;
  const say = (r: ExecResult): string => (r.error ? `could not run (${r.error})` : r.timedOut ? `no answer in ${r.ms} ms` : `exit ${r.exitCode} in ${r.ms} ms`);
  return {
    ok: !passedStopped && passedRunning,
    actual: passedStopped
      ? `succeeds while the container's processes are stopped (${say(stopped)}): it does not test the service`
      : !passedRunning
        ? `fails with the processes running too (${say(running)})`
        : `stopped: ${say(stopped)}; running: ${say(running)}`,
    data: { test, timeoutMs, stoppedHostPids: hostPids, whileStopped: stopped, whileRunning: running },
  };
}

async function imageInfo(docker: Docker, ref: string): Promise<Docker.ImageInspectInfo | null> {
  try {
    return await docker.getImage(ref).inspect();
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return null;
    throw e;
  }
}

export const containerProbe = defineProbe({
  kind: 'container',
  params: ContainerParamsSchema,
  async run(seat, p, deadline) {
    if (p.image) {
      const docker = await innerDocker(seat, deadline);
      const info = await imageInfo(docker, p.image.ref);
      deadline.check();
      if (!info) {
        return failed({ zh: `考位 Docker 中没有镜像 ${p.image.ref}`, en: `no image ${p.image.ref} in the seat's daemon` }, [
          note('镜像不存在', 'image absent', { ref: p.image.ref }),
        ]);
      }
      const base = p.image.basedOn !== undefined ? await imageInfo(docker, p.image.basedOn) : undefined;
      const evidence: Evidence[] = [
        note('镜像配置', 'image config', {
          ref: p.image.ref,
          id: info.Id,
          user: info.Config.User,
          exposedPorts: Object.keys(info.Config.ExposedPorts ?? {}),
          labels: info.Config.Labels ?? {},
          layers: info.RootFS?.Layers?.length ?? 0,
        }),
      ];
      const a = checkImage(info, p.image, base);
      if (p.image.builtFrom !== undefined || p.image.addsFiles !== undefined) {
        const mine = (await docker.getImage(info.Id).history()) as HistoryEntry[];
        const baseHistory = base ? ((await docker.getImage(base.Id).history()) as HistoryEntry[]) : [];
        let dockerfile: { path: string; text: string | null } | null = null;
        if (p.image.builtFrom) {
          const f = await seat.readFile(p.image.builtFrom.dockerfile, { container: p.image.builtFrom.container, maxBytes: 256 * 1024 });
          dockerfile = { path: p.image.builtFrom.dockerfile, text: f ? f.data.toString('utf8') : null };
        }
        // Without the base in the daemon, basedOn already fails; the whole history is then "beyond".
        const h = checkHistory(mine, base && base.Id !== info.Id ? baseHistory.length : mine.length, p.image, dockerfile);
        a.push(...h.assertions);
        evidence.push(note('镜像历史', 'image history', h.data));
      }
      deadline.check();
      return judge(a, 'all', { zh: `镜像 ${p.image.ref}`, en: `image ${p.image.ref}` }, evidence);
    }
    const match = p.match!;
    let found: Docker.ContainerInspectInfo[];
    const extra: Assertion[] = [];
    const extraEvidence: Evidence[] = [];
    if (p.scope === 'inner') {
      const docker = await innerDocker(seat, deadline);
      found = (await inspectAll(docker)).filter((c) => matchesContainer(c, match));
      const running = found.filter((c) => c.State.Running);
      if (p.expect.imageCommand !== undefined) {
        const r = await Promise.all(running.map(async (c) => ({ name: containerName(c), v: runsImageCommand(c, await imageInfo(docker, c.Image)) })));
        const ok = r.length > 0 && r.every((x) => x.v[0] === p.expect.imageCommand);
        extra.push({ id: 'imageCommand', ok, expected: p.expect.imageCommand ? "the image's own ENTRYPOINT and CMD" : 'an overridden command', actual: r.map((x) => `${x.name}: ${x.v[1]}`).join('; ') || '(no container)' });
      }
      if (p.expect.healthcheckFailsWhenStopped) {
        const r: { name: string; ok: boolean; actual: string }[] = [];
        // One container at a time: only one service is ever stopped.
        for (const c of running) {
          if (p.expect.healthy && c.State.Health?.Status !== 'healthy') {
            r.push({ name: containerName(c), ok: false, actual: 'not judged: the container is not healthy' });
            continue;
          }
          const proof = await healthcheckProof(seat, docker, c, deadline);
          r.push({ name: containerName(c), ok: proof.ok, actual: proof.actual });
          extraEvidence.push(note(`健康检查验证：${containerName(c)}`, `healthcheck proof: ${containerName(c)}`, proof.data));
          deadline.check();
        }
        extra.push({
          id: 'healthcheckFailsWhenStopped',
          ok: r.length > 0 && r.every((x) => x.ok),
          expected: 'the healthcheck fails while the container is stopped and passes once it runs',
          actual: r.map((x) => `${x.name}: ${x.actual}`).join('; ') || '(no container)',
        });
      }
    } else {
      found = (await capability(seat, 'inspect-containers')()).filter((c) => matchesContainer(c.info, match, c.role)).map((c) => c.info);
    }
    deadline.check();
    const evidence: Evidence[] = [
      note('匹配的容器', 'matching containers', {
        scope: p.scope,
        match,
        containers: found.slice(0, 20).map((c) => ({
          name: containerName(c),
          image: c.Config.Image,
          state: c.State.Status,
          health: c.State.Health?.Status ?? null,
          restart: c.HostConfig.RestartPolicy?.Name ?? '',
          user: c.Config.User,
          compose: show(c.Config.Labels?.['com.docker.compose.service'] ?? '', 60),
        })),
      }),
    ];
    return judge([...checkContainers(found, p.expect), ...extra], 'all', { zh: '容器检查', en: 'container check' }, [...evidence, ...extraEvidence]);
  },
});
