/**
 * An exam room on this machine, end to end: a session of N seats (roster generated) is opened and
 * every seat provisioned until all are ready, as `deploylab session open` does it; then the exam is
 * started, ended (frozen), the untouched seats graded (0 points each, asserted), archived and reset
 * (the reset proves the host clean). In the same run, the raw baseline: the same containers made
 * with the docker CLI (same images, count, limits, one internal network with inter-container
 * traffic off, same concurrency) and the same setup work (task files copied in, setup commands and
 * services run with `docker exec`), then `docker rm -f` and `network rm`; once with the docker CLI
 * and once with the engine API directly (dockerode, as the harness talks to it). The runner's memory
 * (RSS, heap) is sampled every 250 ms from open through reset, in this process, which runs the
 * SessionService as the runner does.
 * Usage: npm run bench:room [-- --seats 30 --paper junior-v1 --exclude container --concurrency 3
 *        --grade-concurrency N --rounds 1 --raw cli,api --no-warmup --web]
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { loadConfig, type Config } from '../runner/core/config.js';
import { createLogger } from '../runner/core/logger.js';
import { currentImageRef, dockerInSeatImages, type PlanImages } from '../runner/grading/task-runner.js';
import { DockerDriver, dockerDriverFor, SEAT_CAPABILITIES, DIND_CAPABILITIES } from '../runner/sandbox/docker-driver.js';
import { DIND_COMMAND, DIND_PORT } from '../runner/sandbox/driver.js';
import { loadExamPaper, planForSeatTask } from '../runner/sessions/paper.js';
import { residentIdValid, type RosterEntry } from '../runner/sessions/roster.js';
import { mapLimit } from '../runner/core/concurrency.js';
import { SessionService } from '../runner/sessions/session-service.js';
import { startServer } from '../runner/server/http-server.js';
import { openStore } from '../runner/store/db.js';
import { DEFAULT_TASKS_ROOT, type LoadedTask } from '../runner/tasks/loader.js';
import { webAppFromConfig } from '../runner/web/from-config.js';

const run = promisify(execFile);

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`);

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sec = (ms: number): string => (ms / 1000).toFixed(1);
const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
const t0 = performance.now();
const stamp = (): string => `[${sec(performance.now() - t0).padStart(6)} s]`;
const note = (line: string): void => void process.stderr.write(`${stamp()} ${line}\n`);

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const s = performance.now();
  const v = await fn();
  return [performance.now() - s, v];
}

/** Durations (ms) of named operations, for where the time goes. */
class OpStats {
  readonly ops = new Map<string, number[]>();
  add(name: string, ms: number): void {
    this.ops.set(name, [...(this.ops.get(name) ?? []), ms]);
  }
  async time<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const s = performance.now();
    try {
      return await fn();
    } finally {
      this.add(name, performance.now() - s);
    }
  }
  lines(): string[] {
    return [...this.ops].map(([k, xs]) => {
      const sum = xs.reduce((a, b) => a + b, 0);
      return `  ${k.padEnd(22)} n=${String(xs.length).padStart(4)}  sum ${sec(sum).padStart(7)} s  median ${median(xs).toFixed(0).padStart(6)} ms  max ${Math.max(...xs).toFixed(0).padStart(6)} ms`;
    });
  }
}

/** The driver with every call timed under `phase:method` (the bench's view; the driver is unchanged). */
function instrumented(driver: DockerDriver, stats: OpStats, phase: { name: string }): DockerDriver {
  return new Proxy(driver, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function' || typeof prop !== 'string') return v;
      const fn = v as (...a: unknown[]) => unknown;
      return (...args: unknown[]): unknown => {
        const s = performance.now();
        const out = fn.apply(target, args);
        if (out instanceof Promise) return out.finally(() => stats.add(`${phase.name}:${prop}`, performance.now() - s));
        return out;
      };
    },
  });
}

/** process.memoryUsage() every 250 ms: the runner's footprint while the room runs. */
class MemorySampler {
  maxRss = 0;
  maxHeapUsed = 0;
  samples = 0;
  readonly marks: { label: string; rss: number; heapUsed: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sample(): NodeJS.MemoryUsage {
    const m = process.memoryUsage();
    this.maxRss = Math.max(this.maxRss, m.rss);
    this.maxHeapUsed = Math.max(this.maxHeapUsed, m.heapUsed);
    this.samples++;
    return m;
  }
  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), 250);
  }
  mark(label: string): void {
    const m = this.sample();
    this.marks.push({ label, rss: m.rss, heapUsed: m.heapUsed });
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.mark('end');
  }
}

/**
 * The host as a side found it while opening: the mean 1-minute load average, and the most
 * containers on the engine that are not its own. On a shared host other work skews the timings;
 * these say by how much a side was crowded.
 */
interface Crowding {
  load: number;
  foreign: number;
}

async function crowded<T>(mine: (labels: Record<string, string>) => boolean, fn: () => Promise<T>): Promise<[T, Crowding]> {
  const docker = new DockerDriver().docker;
  const foreign = async (): Promise<number> => (await docker.listContainers()).filter((c) => !mine(c.Labels ?? {})).length;
  const loads: number[] = [];
  const timer = setInterval(() => loads.push(loadavg()[0]!), 1000);
  try {
    const before = await foreign();
    const v = await fn();
    return [v, { load: loads.length ? loads.reduce((a, b) => a + b, 0) / loads.length : loadavg()[0]!, foreign: Math.max(before, await foreign()) }];
  } finally {
    clearInterval(timer);
  }
}

// ---- the room --------------------------------------------------------------------------------

/** A valid 18-digit resident ID (GB 11643 check digit) per candidate, so the roster looks real. */
function residentId(i: number): string {
  const body = `11010519900101${String(i % 1000).padStart(3, '0')}`;
  const id = [...'0123456789X'].map((c) => body + c).find(residentIdValid);
  if (!id) throw new Error(`no check digit for ${body}`);
  return id;
}

function roster(n: number): RosterEntry[] {
  return Array.from({ length: n }, (_, i) => ({ line: i + 1, candidateNo: `B${String(i + 1).padStart(4, '0')}`, name: `考生${i + 1}`, idNumber: residentId(i + 1) }));
}

interface BenchPaper {
  paperId: string;
  tasksRoot: string;
  tasks: LoadedTask[];
  excluded: string[];
  tmp: string | null;
}

/** The paper, or a copy of it without the excluded tasks in a copy of the task tree. */
function benchPaper(paperId: string, exclude: string[]): BenchPaper {
  const p = loadExamPaper(paperId);
  const excluded = p.paper.tasks.filter((t) => exclude.includes(t));
  if (excluded.length === 0) return { paperId, tasksRoot: DEFAULT_TASKS_ROOT, tasks: p.tasks, excluded, tmp: null };
  const tmp = mkdtempSync(join(tmpdir(), 'dl-room-tasks-'));
  cpSync(DEFAULT_TASKS_ROOT, tmp, { recursive: true });
  const id = `${paperId}-bench`;
  const tasks = p.paper.tasks.filter((t) => !excluded.includes(t));
  const q = (s: string): string => JSON.stringify(s);
  writeFileSync(
    join(tmp, 'papers', `${id}.yaml`),
    [
      `id: ${id}`, `level: ${p.paper.level}`, 'title:',
      `  zh: ${q(`${p.paper.title.zh}（不含 ${excluded.join('、')}）`)}`, `  en: ${q(`${p.paper.title.en} (without ${excluded.join(', ')})`)}`,
      `durationMinutes: ${p.paper.durationMinutes}`, `practice: ${p.paper.practice}`, 'tasks:', ...tasks.map((t) => `  - ${t}`), '',
    ].join('\n'),
  );
  return { paperId: id, tasksRoot: tmp, tasks: loadExamPaper(id, tmp).tasks, excluded, tmp };
}

interface HarnessResult {
  openMs: number;
  provisionMs: number;
  startMs: number;
  endMs: number;
  gradeMs: number;
  archiveMs: number;
  resetMs: number;
  seatSeconds: number[];
  removed: number;
  crowding: Crowding;
}

/** What went wrong but left figures worth printing: listed at the end, and the exit status is 1. */
const problems: string[] = [];
function problem(line: string): void {
  problems.push(line);
  note(`✘ ${line}`);
}

/**
 * Remove a network, retrying a while when the engine says it still has endpoints although every
 * container on it is gone (a stale endpoint count some engines keep after many removals at once).
 */
async function removeNetwork(remove: () => Promise<unknown>, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await remove();
      return;
    } catch (e) {
      if (!/active endpoints/i.test(String(e)) || attempt >= 10) throw e;
      note(`network ${name} still has endpoints; retry ${attempt}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Sessions and raw tags made in this run, for the cleanup in `finally` and on a signal. */
const made = { sessions: [] as string[], raw: [] as { tag: string; eng: RawEngine }[], dirs: [] as string[] };

async function harnessRoom(ctx: RoomCtx, stats: OpStats, mem: MemorySampler): Promise<HarnessResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dl-room-data-'));
  made.dirs.push(dataDir);
  const id = `bench-room-${randomBytes(3).toString('hex')}`;
  made.sessions.push(id);
  const phase = { name: 'open' };
  const driver = dockerDriverFor(ctx.config);
  const svc = new SessionService({
    db: openStore(dataDir),
    driver: instrumented(driver, stats, phase),
    dataDir,
    progress: (l) => note(`dl  ${l.en}`),
  });
  const web = ctx.web ? await startWeb(ctx.config, dataDir, ctx.paper.tasksRoot) : null;
  mem.start();
  try {
    const n = ctx.seats;
    const [openMs] = await timed(async () => svc.open({ id, paperId: ctx.paper.paperId, tasksRoot: ctx.paper.tasksRoot, room: 'BENCH', roster: roster(n), images: ctx.images, baseUrl: 'http://127.0.0.1:8700/' }));
    mem.mark('opened');
    web?.watch(id);
    phase.name = 'provision';
    const mine = (l: Record<string, string>): boolean => l['deploylab.session'] === id;
    const [[provisionMs, prov], crowding] = await crowded(mine, () => timed(() => svc.provision(id, { concurrency: ctx.concurrency })));
    if (prov.failed.length > 0 || prov.ready.length !== n) throw new Error(`provisioning: ${prov.ready.length}/${n} ready; failed: ${JSON.stringify(prov.failed)}`);
    mem.mark('all seats ready');
    phase.name = 'start';
    const [startMs] = await timed(() => svc.start(id));
    phase.name = 'end';
    const [endMs] = await timed(() => svc.end(id));
    phase.name = 'grade';
    const [gradeMs, g] = await timed(() => svc.grade(id, ctx.gradeConcurrency ? { concurrency: ctx.gradeConcurrency } : {}));
    mem.mark('graded');
    if (g.errors.length > 0) throw new Error(`grading errors: ${JSON.stringify(g.errors)}`);
    const rep = svc.report(id);
    const outcomes = new Map<string, number>();
    for (const s of rep) for (const c of s.checks) outcomes.set(c.outcome, (outcomes.get(c.outcome) ?? 0) + 1);
    const scored = rep.filter((s) => !s.sheet || s.sheet.total !== 0);
    const checks = rep.reduce((a, s) => a + s.checks.length, 0);
    if (scored.length > 0) {
      problem(`untouched seats must score 0: ${scored.map((s) => `${s.seat}=${s.sheet ? s.sheet.total : 'not graded'} (${s.checks.filter((c) => c.earned > 0).map((c) => `${c.taskId}/${c.checkId}`).join(', ')})`).join('; ')}`);
    } else console.log(`graded ${rep.length} untouched seat(s): every total is 0 ✔ (${checks} checks: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')})`);
    phase.name = 'archive';
    const [archiveMs, a] = await timed(() => svc.archive(id));
    note(`archived ${a.files} file(s)`);
    phase.name = 'reset';
    const [resetMs, r] = await timed(() => svc.reset(id));
    mem.mark('reset');
    if (!r.clean) problem(`the reset left things behind: ${JSON.stringify({ leftovers: r.leftovers, ports: r.portsHeld, gpu: r.gpu })}`);
    else console.log(`reset removed ${r.removed} object(s); host clean ✔ (its own verification: no labelled container, network, volume or port left)`);
    const seatSeconds = (svc.db.prepare("SELECT data FROM transitions WHERE session_id = ? AND seat_id IS NOT NULL AND event = 'provisioned'").all(id) as { data: string }[]).map((x) => (JSON.parse(x.data) as { seconds: number }).seconds);
    return { openMs, provisionMs, startMs, endMs, gradeMs, archiveMs, resetMs, seatSeconds, removed: r.removed, crowding };
  } finally {
    mem.stop();
    web?.close();
    svc.db.close();
  }
}

/** The examiner pages over the same store, and one examiner watching the room's live feed. */
async function startWeb(config: Config, dataDir: string, tasksRoot: string): Promise<{ watch(id: string): void; close(): void }> {
  const token = randomBytes(24).toString('hex');
  const log = createLogger('warn');
  const app = webAppFromConfig({ ...config, dataDir, server: { ...config.server, examinerToken: token } }, log, { tasksRoot });
  const { server, url } = await startServer({ host: '127.0.0.1', port: 0, log, web: app.web });
  const abort = new AbortController();
  let bytes = 0;
  return {
    watch(id) {
      void fetch(`${url}/examiner/sessions/${id}/events`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal })
        .then(async (res) => {
          if (!res.ok || !res.body) throw new Error(`dashboard feed: HTTP ${res.status}`);
          for await (const chunk of res.body as AsyncIterable<Uint8Array>) bytes += chunk.length;
        })
        .catch((e: unknown) => {
          if (!abort.signal.aborted) note(`! dashboard feed: ${String(e)}`);
        });
    },
    close() {
      abort.abort();
      note(`web: the examiner feed sent ${bytes} byte(s)`);
      server.closeAllConnections();
      server.close();
      void app.close();
    },
  };
}

// ---- the raw baselines -----------------------------------------------------------------------


/** One container as plain engine terms: what `docker run` flags or a create call say. */
interface BoxSpec {
  name: string;
  image: string;
  cmd: string[];
  env: Record<string, string>;
  hostname?: string;
  workdir?: string;
  network: string;
  extraHosts: string[];
  cpus: number;
  memoryMiB: number;
  pids: number;
  capDrop: string[];
  capAdd: string[];
  securityOpt: string[];
  binds: string[];
  /** A private cgroup namespace (the seat daemon's sidecar). */
  cgroupnsPrivate?: boolean;
  volume?: { src: string; dst: string };
}

/**
 * The engine work of a seat, done two ways with nothing of the harness: the docker CLI, as an
 * operator's script would, and the engine API directly (dockerode), as the harness itself talks
 * to the engine. The CLI pays a process per call; the API baseline is the stricter one.
 */
interface RawEngine {
  kind: 'cli' | 'api';
  networkCreate(name: string, labels: Record<string, string>): Promise<void>;
  volumeCreate(name: string, labels: Record<string, string>): Promise<void>;
  run(box: BoxSpec, labels: Record<string, string>): Promise<void>;
  cp(container: string, tar: Buffer): Promise<void>;
  /** Throws unless the command exits 0. */
  exec(container: string, user: string, cmd: string[], timeoutMs: number, stdin?: Readable): Promise<void>;
  /** `docker save` of an image, as a stream. */
  save(image: string): Promise<Readable>;
  /** Remove everything labelled with the bench tag: containers, volumes, the network. */
  teardown(tag: string): Promise<void>;
}

const benchLabels = (tag: string): Record<string, string> => ({ 'deploylab.component': 'bench', 'deploylab.bench': tag });
const uid = (user: string): string => (user === 'root' ? '0:0' : '1000:1000');
const labelFlags = (labels: Record<string, string>): string[] => Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);

/** A docker CLI call with `input` on its stdin (a tar for `docker cp -`, an image for `docker load`). */
function runWithInput(args: string[], input: Buffer | Readable, timeoutMs = 600_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { stdio: ['pipe', 'ignore', 'pipe'], timeout: timeoutMs });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker ${args.slice(0, 2).join(' ')} exited ${code}: ${err.slice(-400)}`))));
    if (Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
  });
}

const cliEngine: RawEngine = {
  kind: 'cli',
  async networkCreate(name, labels) {
    await run('docker', ['network', 'create', '--internal', '-o', 'com.docker.network.bridge.enable_icc=false', ...labelFlags(labels), name]);
  },
  async volumeCreate(name, labels) {
    await run('docker', ['volume', 'create', ...labelFlags(labels), name]);
  },
  async run(b, labels) {
    await run('docker', [
      'run', '-d', '--name', b.name, ...labelFlags(labels), '--network', b.network,
      ...(b.hostname ? ['--hostname', b.hostname] : []), ...(b.workdir ? ['-w', b.workdir] : []),
      ...Object.entries(b.env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), ...b.extraHosts.flatMap((h) => ['--add-host', h]),
      '--init', '--restart', 'no', '--log-opt', 'max-size=10m', '--log-opt', 'max-file=3', '--shm-size', '64m', '--cpus', String(b.cpus), '--memory', `${b.memoryMiB}m`, '--memory-swap', `${b.memoryMiB}m`, '--pids-limit', String(b.pids),
      ...b.capDrop.flatMap((c) => ['--cap-drop', c]), ...b.capAdd.flatMap((c) => ['--cap-add', c]), ...b.securityOpt.flatMap((o) => ['--security-opt', o]),
      ...b.binds.flatMap((v) => ['-v', v]), ...(b.cgroupnsPrivate ? ['--cgroupns', 'private'] : []), ...(b.volume ? ['--mount', `type=volume,src=${b.volume.src},dst=${b.volume.dst}`] : []),
      b.image, ...b.cmd,
    ]);
  },
  cp: (container, tar) => runWithInput(['cp', '-', `${container}:/`], tar),
  async exec(container, user, cmd, timeoutMs, stdin) {
    if (stdin) return runWithInput(['exec', '-i', '-u', uid(user), container, ...cmd], stdin, timeoutMs);
    await run('docker', ['exec', '-u', uid(user), container, ...cmd], { timeout: timeoutMs, maxBuffer: 4 << 20 });
  },
  async save(image) {
    return spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'ignore'] }).stdout;
  },
  async teardown(tag) {
    const filter = ['--filter', `label=deploylab.bench=${tag}`];
    const ids = (await run('docker', ['ps', '-aq', ...filter])).stdout.split('\n').filter(Boolean);
    // The CLI removes the containers it is given in parallel.
    if (ids.length) await run('docker', ['rm', '-f', '-v', ...ids], { maxBuffer: 4 << 20 });
    const vols = (await run('docker', ['volume', 'ls', '-q', ...filter])).stdout.split('\n').filter(Boolean);
    if (vols.length) await run('docker', ['volume', 'rm', '-f', ...vols]);
    const nets = (await run('docker', ['network', 'ls', '-q', ...filter])).stdout.split('\n').filter(Boolean);
    for (const n of nets) await removeNetwork(() => run('docker', ['network', 'rm', n]), n);
  },
};

function apiEngine(docker: Docker): RawEngine {
  const status = (e: unknown): number | undefined => (e as { statusCode?: number } | null)?.statusCode;
  return {
    kind: 'api',
    async networkCreate(name, labels) {
      await docker.createNetwork({ Name: name, Driver: 'bridge', Internal: true, Options: { 'com.docker.network.bridge.enable_icc': 'false' }, Labels: labels });
    },
    async volumeCreate(name, labels) {
      await docker.createVolume({ Name: name, Labels: labels });
    },
    async run(b, labels) {
      const c = await docker.createContainer({
        name: b.name,
        Image: b.image,
        Cmd: b.cmd,
        Env: Object.entries(b.env).map(([k, v]) => `${k}=${v}`),
        ...(b.hostname ? { Hostname: b.hostname } : {}),
        ...(b.workdir ? { WorkingDir: b.workdir } : {}),
        Labels: labels,
        HostConfig: {
          NetworkMode: b.network,
          ExtraHosts: b.extraHosts,
          Init: true,
          RestartPolicy: { Name: 'no' },
          NanoCpus: Math.round(b.cpus * 1e9),
          Memory: b.memoryMiB * 2 ** 20,
          MemorySwap: b.memoryMiB * 2 ** 20,
          PidsLimit: b.pids,
          CapDrop: b.capDrop,
          CapAdd: b.capAdd,
          SecurityOpt: b.securityOpt,
          LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
          ShmSize: 64 * 2 ** 20,
          Binds: b.binds,
          ...(b.cgroupnsPrivate ? ({ CgroupnsMode: 'private' } as Docker.HostConfig) : {}),
          ...(b.volume ? { Mounts: [{ Type: 'volume' as const, Source: b.volume.src, Target: b.volume.dst }] } : {}),
        },
      });
      await c.start();
    },
    async cp(container, tar) {
      await docker.getContainer(container).putArchive(tar, { path: '/' });
    },
    async exec(container, user, cmd, timeoutMs, stdin) {
      const ex = await docker.getContainer(container).exec({ Cmd: cmd, User: uid(user), AttachStdin: stdin !== undefined, AttachStdout: true, AttachStderr: true });
      const stream = (await ex.start({ hijack: true, stdin: stdin !== undefined })) as Duplex;
      let tail = '';
      stream.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-2000)));
      if (stdin) stdin.pipe(stream);
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        new Promise<boolean>((resolve) => ['end', 'close', 'error'].forEach((ev) => stream.on(ev, () => resolve(true)))),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (!ended) {
        stream.destroy();
        throw new Error(`exec in ${container} timed out: ${cmd.join(' ').slice(0, 200)}`);
      }
      for (let i = 0; i < 50; i++) {
        const info = await ex.inspect();
        if (!info.Running) {
          if (info.ExitCode !== 0) throw new Error(`exec in ${container} exited ${info.ExitCode}: ${tail.slice(-400)}`);
          return;
        }
        await new Promise((res) => setTimeout(res, 20));
      }
      throw new Error(`exec in ${container} still running after its output ended`);
    },
    async save(image) {
      return (await docker.getImage(image).get()) as Readable;
    },
    async teardown(tag) {
      const label = [`deploylab.bench=${tag}`];
      const cs = await docker.listContainers({ all: true, filters: { label } });
      // Sidecars first: they live in their workspace's network namespace. At most 50 at once, as
      // `docker rm` does: some 200 removals at once overran this engine's shim clean-ups and left
      // the network with a stale endpoint count ("has active endpoints") that only an engine
      // restart clears.
      const ns = (c: Docker.ContainerInfo): boolean => c.HostConfig?.NetworkMode?.startsWith('container:') ?? false;
      for (const batch of [cs.filter(ns), cs.filter((c) => !ns(c))]) {
        await mapLimit(batch, 50, (c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch((e: unknown) => {
          if (status(e) !== 404) throw e;
        }));
      }
      for (const v of (await docker.listVolumes({ filters: { label } })).Volumes ?? []) await docker.getVolume(v.Name).remove();
      for (const n of await docker.listNetworks({ filters: { label } })) await removeNetwork(() => docker.getNetwork(n.Id).remove(), n.Name);
    },
  };
}

function tarOf(files: { path: string; content: Buffer; mode: number; uid: number; gid: number }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  for (const f of files) p.entry({ name: f.path.replace(/^\/+/, ''), mode: f.mode, uid: f.uid, gid: f.gid, mtime: new Date(), size: f.content.length }, f.content);
  p.finalize();
  return done;
}

const sh = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** One task's box of one seat, made and set up without the harness: what it does, step for step. */
async function rawBox(ctx: RoomCtx, eng: RawEngine, tag: string, net: string, seatId: string, t: LoadedTask, stats: OpStats): Promise<void> {
  const op = <T>(name: string, fn: () => Promise<T>): Promise<T> => stats.time(`${eng.kind}:${name}`, fn);
  const labels = benchLabels(tag);
  // The seat's plan, for the same image and limits the harness gives the box.
  const plan = planForSeatTask(t, { session: `bench-${tag}`, seat: `${seatId}-${t.task.id}` }, seatId, ctx.images);
  const r = plan.resources;
  const dind = plan.dockerInSeat.enabled;
  const ws = plan.workspace;
  const name = `dl-bench-${tag}-${seatId}-${t.task.id}`;
  const names: Record<string, string> = { workspace: name, dind: `${name}-dind` };
  const base = { cpus: r.cpus, pids: r.pids, securityOpt: [], binds: [], extraHosts: [] };
  await op('run', () =>
    eng.run({
      ...base, name, image: ws.image, cmd: ws.command ?? ['sleep', 'infinity'], env: { ...ws.env, ...(dind ? { DOCKER_HOST: `tcp://dind:${DIND_PORT}` } : {}) },
      hostname: ws.hostname, workdir: ws.workdir, network: net, extraHosts: dind ? ['dind:127.0.0.1'] : [], memoryMiB: r.memoryMiB, capDrop: ['ALL'], capAdd: SEAT_CAPABILITIES,
    }, labels),
  );
  if (dind) {
    const vol = `${name}-dind-data`;
    await op('volume-create', () => eng.volumeCreate(vol, labels));
    await op('run-dind', () =>
      eng.run({
        ...base, name: names.dind!, image: plan.dockerInSeat.image ?? ws.image, cmd: [...DIND_COMMAND],
        env: {}, network: `container:${name}`, memoryMiB: r.memoryMiB * 2, capDrop: ['ALL'], capAdd: DIND_CAPABILITIES, cgroupnsPrivate: true,
        securityOpt: ['seccomp=unconfined', 'apparmor=unconfined'], volume: { src: vol, dst: '/var/lib/docker' },
      }, labels),
    );
    const nested = ['docker', '-H', `tcp://127.0.0.1:${DIND_PORT}`];
    await op('dind-wait', async () => {
      const until = Date.now() + 60_000;
      while (!(await eng.exec(names.dind!, 'root', [...nested, 'info'], 10_000).then(() => true, () => false))) {
        if (Date.now() > until) throw new Error(`${names.dind}: nested daemon not ready`);
        await new Promise((res) => setTimeout(res, 500));
      }
    });
    for (const image of plan.dockerInSeat.preload) await op('preload', async () => eng.exec(names.dind!, 'root', [...nested, 'load'], 300_000, await eng.save(image)));
  }
  // The task's setup, as applySetup does it: files, commands, services, faults.
  const s = t.task.setup;
  const byContainer = new Map<string, { path: string; content: Buffer; mode: number; uid: number; gid: number }[]>();
  for (const f of s.files) {
    const owner = f.owner === 'root' ? 0 : 1000;
    byContainer.set(f.container, [...(byContainer.get(f.container) ?? []), { path: f.to, content: readFileSync(join(t.dir, 'setup', f.from)), mode: parseInt(f.mode, 8), uid: owner, gid: owner }]);
  }
  for (const [c, files] of byContainer) await op('cp', async () => eng.cp(names[c] ?? name, await tarOf(files)));
  const bash = (user: string, container: string, cmd: string, timeoutMs: number): Promise<void> => op('exec', () => eng.exec(names[container] ?? name, user, ['bash', '-c', cmd], timeoutMs));
  for (const c of s.commands) await bash(c.user, c.container, c.run, c.timeoutSeconds * 1000);
  for (const svc of s.services) {
    await bash(svc.user, svc.container, `mkdir -p /var/log/deploylab && setsid nohup bash -c ${sh(svc.run)} >/var/log/deploylab/${svc.name}.log 2>&1 </dev/null &`, 30_000);
  }
  for (const f of s.faults) {
    if (f.kind === 'replace-file') {
      const content = readFileSync(join(t.dir, 'setup', f.from));
      await op('cp', async () => eng.cp(names[f.container] ?? name, await tarOf([{ path: f.to, content, mode: 0o644, uid: 0, gid: 0 }])));
      continue;
    }
    const cmd =
      f.kind === 'kill-process'
        ? f.match.exe !== undefined ? `pkill -KILL -x ${sh(f.match.exe.slice(0, 15))} || true` : `pkill -KILL -f ${sh(f.match.commandMatches ?? '')} || true`
        : f.kind === 'delete-file'
          ? `rm -rf -- ${sh(f.path)}`
          : f.kind === 'chmod'
            ? `chmod ${f.mode} -- ${sh(f.path)}`
            : `fallocate -l ${f.mib}M -- ${sh(f.path)} || dd if=/dev/zero of=${sh(f.path)} bs=1M count=${f.mib} status=none`;
    await bash('root', f.container, cmd, 60_000);
  }
}

interface RawResult {
  kind: RawEngine['kind'];
  openMs: number;
  downMs: number;
  seatSeconds: number[];
  crowding: Crowding;
}

async function rawRoom(ctx: RoomCtx, eng: RawEngine, seats: number, stats: OpStats, quiet = false): Promise<RawResult> {
  const tag = randomBytes(3).toString('hex');
  made.raw.push({ tag, eng });
  const net = `dl-bench-${tag}`;
  const seatIds = Array.from({ length: seats }, (_, i) => `s${String(i + 1).padStart(2, '0')}`);
  const seatSeconds: number[] = [];
  let done = 0;
  const [openMs, crowding] = await crowded((l) => l['deploylab.bench'] === tag, () => timed(async () => {
    await stats.time(`${eng.kind}:network-create`, () => eng.networkCreate(net, benchLabels(tag)));
    // Seats `concurrency` at a time, a seat's tasks one after another: as the service provisions.
    await mapLimit(seatIds, ctx.concurrency, async (seatId) => {
      const s0 = performance.now();
      for (const t of ctx.paper.tasks) await rawBox(ctx, eng, tag, net, seatId, t, stats);
      seatSeconds.push((performance.now() - s0) / 1000);
      done++;
      if (!quiet) note(`${eng.kind} [${done}/${seats}] seat ${seatId} ready (${sec(performance.now() - s0)} s)`);
    });
  })).then(([[ms], c]) => [ms, c] as const);
  const [downMs] = await timed(() => eng.teardown(tag).catch((e: unknown) => problem(`${eng.kind} teardown: ${String(e)}`)));
  return { kind: eng.kind, openMs, downMs, seatSeconds, crowding };
}


// ---- main ------------------------------------------------------------------------------------

interface RoomCtx {
  config: Config;
  seats: number;
  concurrency: number;
  gradeConcurrency: number | null;
  paper: BenchPaper;
  images: PlanImages & { toolbox: string | null };
  web: boolean;
}

let cleaning: Promise<void> | null = null;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const driver = new DockerDriver();
    const docker = driver.docker;
    for (const id of made.sessions) {
      await driver.sweep({ session: id }).catch((e: unknown) => note(`! sweep ${id}: ${String(e)}`));
      // The sweep leaves a network the engine calls busy; nothing of this run should be by now.
      for (const n of await docker.listNetworks({ filters: { label: [`deploylab.session=${id}`] } })) {
        await removeNetwork(() => docker.getNetwork(n.Id).remove(), n.Name).catch((e: unknown) => note(`! network ${n.Name}: ${String(e)}`));
      }
    }
    for (const { tag, eng } of made.raw) await eng.teardown(tag).catch((e: unknown) => note(`! raw teardown ${tag}: ${String(e)}`));
    for (const d of made.dirs) rmSync(d, { recursive: true, force: true });
  })();
  return cleaning;
}

/** Containers, networks and volumes of this run still on the engine after the cleanup. */
async function leftovers(): Promise<string[]> {
  const docker = new DockerDriver().docker;
  const labels = [...made.sessions.map((id) => `deploylab.session=${id}`), ...made.raw.map((r) => `deploylab.bench=${r.tag}`)];
  const out: string[] = [];
  for (const label of labels) {
    for (const c of await docker.listContainers({ all: true, filters: { label: [label] } })) out.push(`container ${c.Names[0] ?? c.Id}`);
    for (const n of await docker.listNetworks({ filters: { label: [label] } })) out.push(`network ${n.Name}`);
    for (const v of (await docker.listVolumes({ filters: { label: [label] } })).Volumes ?? []) out.push(`volume ${v.Name}`);
  }
  return out;
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  // `on`, not `once`: a second signal (tsx relays the terminal's to its child too) must not kill
  // the process half-way through its cleanup.
  process.on(sig, () => {
    if (interrupted) {
      note(`${sig}: still cleaning up, one moment …`);
      return;
    }
    interrupted = true;
    note(`${sig}: cleaning up what this run made …`);
    // Work in flight may still create a container or two: sweep, wait for it to land, sweep again.
    void cleanup()
      .then(() => new Promise((r) => setTimeout(r, 3000)))
      .then(() => {
        cleaning = null;
        return cleanup();
      })
      .then(leftovers)
      .then((left) => note(left.length ? `✘ left on the engine: ${left.join(', ')}` : 'nothing of this run is left on the engine'))
      .finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const seats = Number(arg('seats', '30'));
  const rounds = Number(arg('rounds', '1'));
  // The CLI's default (`session open --concurrency`).
  const concurrency = Number(arg('concurrency', '3'));
  const gc = arg('grade-concurrency', '');
  const explicitPaper = process.argv.includes('--paper');
  const paperId = arg('paper', 'junior-v1');
  // By default the docker-in-seat task is left out: each of its seats starts a nested dockerd and
  // copies the app base image into it, which would swamp every other figure.
  const exclude = arg('exclude', explicitPaper ? '' : 'container').split(',').filter(Boolean);
  if (!(seats >= 1 && concurrency >= 1 && rounds >= 1)) throw new Error('--seats, --concurrency and --rounds must be positive numbers');
  const paper = benchPaper(paperId, exclude);
  if (paper.tmp) made.dirs.push(paper.tmp);
  const needsDind = paper.tasks.some((t) => t.task.needs.profile === 'docker-in-seat');
  const images = {
    workspaceCpu: await currentImageRef(config, 'workspace-cpu'),
    toolbox: await currentImageRef(config, 'toolbox'),
    ...(needsDind ? { dockerInSeat: await dockerInSeatImages(config) } : {}),
  };
  const ctx: RoomCtx = { config, seats, concurrency, gradeConcurrency: gc ? Number(gc) : null, paper, images, web: flag('web') };
  console.log(`room: ${seats} seat(s) × ${paper.tasks.length} task(s) = ${seats * paper.tasks.length} sandboxes; paper ${paper.paperId} (${paper.tasks.map((t) => t.task.id).join(', ')}); provisioning concurrency ${concurrency}; ${rounds} round(s)`);
  if (paper.excluded.length) {
    console.log(
      `excluded: ${paper.excluded.join(', ')} — a docker-in-seat task starts a nested dockerd in every seat and copies the app base image into it; pass --paper ${paperId} to include it`,
    );
  }
  console.log(`images: ${images.workspaceCpu}, toolbox ${images.toolbox}${images.dockerInSeat ? `, dind ${images.dockerInSeat.dind}` : ''}${ctx.web ? '; web server up with one examiner watching the room feed (its polling is in the figures)' : ''}`);

  const engines = arg('raw', 'cli,api').split(',').filter(Boolean).map((k) => {
    if (k === 'cli') return cliEngine;
    if (k === 'api') return apiEngine(new DockerDriver().docker);
    throw new Error(`--raw: cli and/or api, not ${k}`);
  });
  console.log(`raw baselines: ${engines.map((e) => (e.kind === 'cli' ? 'cli (docker run/cp/exec, a process a call)' : 'api (the engine API directly, as the harness talks to it)')).join('; ')}`);
  const raws: RawResult[] = [];
  const dls: HarnessResult[] = [];
  const mems: MemorySampler[] = [];
  const rawStats = new OpStats();
  const dlStats = new OpStats();
  try {
    if (!flag('no-warmup')) {
      // One raw seat first, so no side pays first-use costs (page cache, image layers).
      const [w] = await timed(() => rawRoom(ctx, engines[0] ?? apiEngine(new DockerDriver().docker), 1, new OpStats(), true));
      note(`warm-up: one raw seat in ${sec(w)} s`);
    }
    for (let r = 0; r < rounds; r++) {
      // Rotate which side goes first, so drift (page cache, other load) hits every side alike.
      const steps = [
        ...engines.map((eng) => async () => {
          note(`round ${r + 1}: raw ${eng.kind}`);
          raws.push(await rawRoom(ctx, eng, seats, rawStats));
        }),
        async () => {
          note(`round ${r + 1}: harness`);
          const mem = new MemorySampler();
          mems.push(mem);
          dls.push(await harnessRoom(ctx, dlStats, mem));
        },
      ];
      for (let k = 0; k < steps.length; k++) await steps[(k + r) % steps.length]!();
    }
  } finally {
    await cleanup();
    const left = await leftovers();
    if (left.length) problem(`left on the engine after the cleanup: ${left.join(', ')}`);
  }

  const m = <T>(xs: T[], f: (x: T) => number): number => median(xs.map(f));
  const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;
  const spread = (xs: number[]): string => `median ${median(xs).toFixed(1)} p90 ${pct(xs, 0.9).toFixed(1)} max ${Math.max(...xs).toFixed(1)}`;
  const dlOpen = m(dls, (x) => x.openMs + x.provisionMs);
  const dlReset = m(dls, (x) => x.resetMs);
  console.log('');
  console.log(`N=${seats} seats × ${paper.tasks.length} tasks, provisioning concurrency ${concurrency}; seconds, median over ${rounds} round(s); ratio = harness ÷ raw`);
  console.log(`open until all ready    harness ${sec(dlOpen).padStart(7)}   [plan+codes+cards ${sec(m(dls, (x) => x.openMs))}, provision ${sec(m(dls, (x) => x.provisionMs))}]`);
  const ratios: number[] = [];
  for (const eng of engines) {
    const mine = raws.filter((x) => x.kind === eng.kind);
    const open = m(mine, (x) => x.openMs);
    ratios.push(dlOpen / open);
    console.log(`                        raw ${eng.kind.padEnd(4)} ${sec(open).padStart(7)}   ratio ${(dlOpen / open).toFixed(2)} (target ≤ 1.15)`);
  }
  const crowd = (xs: Crowding[]): string => `host load ${xs.map((c) => c.load.toFixed(1)).join('/')}, others' containers ${xs.map((c) => c.foreign).join('/')}`;
  console.log(`while opening           harness ${crowd(dls.map((x) => x.crowding))}`);
  for (const eng of engines) console.log(`                        raw ${eng.kind.padEnd(4)} ${crowd(raws.filter((x) => x.kind === eng.kind).map((x) => x.crowding))}`);
  console.log(`per seat (s)            harness ${spread(dls.flatMap((x) => x.seatSeconds))}`);
  for (const eng of engines) console.log(`                        raw ${eng.kind.padEnd(4)} ${spread(raws.filter((x) => x.kind === eng.kind).flatMap((x) => x.seatSeconds))}`);
  console.log(`exam                    start ${sec(m(dls, (x) => x.startMs))}   end (freeze) ${sec(m(dls, (x) => x.endMs))}   grade ${sec(m(dls, (x) => x.gradeMs))} (${(m(dls, (x) => x.gradeMs) / seats / 1000).toFixed(1)} a seat)   archive ${sec(m(dls, (x) => x.archiveMs))}`);
  console.log(`teardown                reset   ${sec(dlReset).padStart(7)}   (removes the freeze markers too, and verifies)`);
  for (const eng of engines) {
    const down = m(raws.filter((x) => x.kind === eng.kind), (x) => x.downMs);
    console.log(`                        raw ${eng.kind.padEnd(4)} ${sec(down).padStart(7)}   ratio ${(dlReset / down).toFixed(2)}   (${eng.kind === 'cli' ? 'docker rm -f -v, volume rm, network rm' : 'remove force, 50 at once, volumes, network'})`);
  }
  const maxRss = Math.max(...mems.map((x) => x.maxRss));
  const endRss = mems.at(-1)?.marks.at(-1)?.rss ?? NaN;
  console.log(`runner memory           RSS max ${mib(maxRss)} MiB (target ≤ 250 MB = ${mib(250e6)} MiB)   at end ${mib(endRss)} MiB   heap used max ${mib(Math.max(...mems.map((x) => x.maxHeapUsed)))} MiB   (${mems.reduce((a, x) => a + x.samples, 0)} samples)`);
  for (const [i, mem] of mems.entries()) console.log(`  round ${i + 1}: ${mem.marks.map((x) => `${x.label} ${mib(x.rss)}/${mib(x.heapUsed)}`).join(' · ')} (RSS/heap MiB)`);
  console.log('where the time goes (sum over all calls; calls overlap by the concurrency):');
  for (const l of [...dlStats.lines(), ...rawStats.lines()]) console.log(l);
  // Judged against the stricter baseline.
  const failed = Math.max(...ratios) > 1.15 || maxRss > 250e6;
  console.log(failed ? '✘ a target is missed (see above)' : '✔ targets met: open ≤ 1.15× every raw baseline, runner RSS ≤ 250 MB');
  for (const p of problems) console.log(`✘ ${p}`);
  if (problems.length > 0) process.exitCode = 1;
}

try {
  await main();
} catch (e) {
  // Interrupted: the work in flight fails as its files and containers go; the handler reports.
  if (!interrupted) console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exitCode = 1;
}
