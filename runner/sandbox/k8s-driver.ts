import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { CoreV1Api, Exec, KubeConfig, KubernetesObjectApi, type KubernetesObject, type V1Pod, type V1Status } from '@kubernetes/client-node';
import { DeploylabError } from '../core/errors.js';
import type {
  Endpoint,
  EvidenceArchive,
  ExecOptions,
  ExecResult,
  FileEntry,
  Leftover,
  SandboxDriver,
  SeatPlan,
  SeatProcess,
  SeatDiskUsage,
  SeatRef,
  SeatStatus,
  SweepFilter,
  SweptItem,
  TerminalOptions,
  TerminalSession,
  WriteFile,
} from './driver.js';
import { TERMINAL_HANGUP_GRACE_MS } from './driver.js';
import { driverOp, fileContent, fileNotFound, seatExists, seatFrozen, seatNotFound, tooLarge, unsupported } from './errors.js';
import { FILES_CONTAINER, FROZEN_LABEL, namespaceOf, renderSeat, type K8sRenderOptions } from './k8s-manifests.js';
import { COMPONENT_SEAT, LABEL } from './labels.js';
import { TarTooLarge, buildTar, readTar } from './tar.js';

/**
 * The Kubernetes driver: one namespace per seat (k8s-manifests.ts). Differences from Docker, by
 * design of the platform:
 * - candidate execs drop to uid 1000 with `setpriv` (the exec API has no user field);
 * - files are read through the trusted `files` sidecar, and only under the workspace volume;
 * - processes come from the sidecar's view of the shared PID namespace: pod PIDs, not host PIDs
 *   (GPU attribution on a cluster goes by the device plugin's per-pod assignment);
 * - endpoints are Service DNS names, reachable from the harness namespace inside the cluster;
 * - freeze is a namespace label (deploylab.frozen=true) checked before every candidate exec.
 */
export interface K8sDriverOptions extends K8sRenderOptions {
  kubeConfig?: KubeConfig;
  /** How long provision waits for the workspace pod to run. */
  readyTimeoutMs?: number;
}

function codeOf(e: unknown): number | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'number' ? c : undefined;
}

const TERMINAL_MARKER = 'DEPLOYLAB_TERMINAL';

/**
 * Inside the seat, as the shell's own user: the terminal's shell is the process started by the
 * exec (parent 0 in the pod's PID namespace) whose environment holds the marker. SIGHUP, then
 * SIGKILL to its group after the grace, as `DockerDriver.hangUpExec` does from the host.
 */
const HANGUP_SCRIPT = `
leader() { for d in /proc/[0-9]*; do
  tr '\\0' '\\n' < "$d/environ" 2>/dev/null | grep -qx "${TERMINAL_MARKER}=$1" || continue
  [ "$(sed 's/^.*) //' "$d/stat" 2>/dev/null | cut -d' ' -f2)" = 0 ] && echo "\${d#/proc/}" && return
done; }
pid=$(leader "$1"); [ -n "$pid" ] || exit 0
kill -HUP "$pid" 2>/dev/null
i=0; while [ $i -lt $(($2 * 10)) ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" "$pid" 2>/dev/null; exit 0
`;

export class K8sDriver implements SandboxDriver {
  /** Pod addresses come from the cluster's pod network, not from a per-session range. */
  readonly sandboxesPerSession = null;
  readonly name = 'k8s' as const;
  private readonly kc: KubeConfig;
  private readonly core: CoreV1Api;
  private readonly objects: KubernetesObjectApi;
  private readonly execApi: Exec;
  private readonly terminals = new Map<string, Set<TerminalSession>>();

  constructor(private readonly opts: K8sDriverOptions) {
    this.kc = opts.kubeConfig ?? (() => {
      const kc = new KubeConfig();
      kc.loadFromDefault();
      return kc;
    })();
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.objects = KubernetesObjectApi.makeApiClient(this.kc);
    this.execApi = new Exec(this.kc);
  }

  private op<T>(operation: string, fn: () => Promise<T>, ref?: SeatRef): Promise<T> {
    return driverOp('k8s', operation, fn, ref);
  }

  async provision(plan: SeatPlan): Promise<SeatStatus> {
    const ref = { session: plan.session, seat: plan.seat };
    return this.op('provision', async () => {
      // A seat that exists is left as it is: the cleanup below would otherwise delete it.
      const there = await this.core.readNamespace({ name: namespaceOf(ref) }).then(
        () => true,
        (e: unknown) => {
          if (codeOf(e) === 404) return false;
          throw e;
        },
      );
      if (there) throw seatExists(ref);
      try {
        for (const obj of renderSeat(plan, this.opts)) await this.objects.create(obj as KubernetesObject);
        await this.waitRunning(ref);
      } catch (e) {
        await this.destroy(ref).catch(() => undefined);
        throw e;
      }
      return this.status(ref);
    }, ref);
  }

  private async waitRunning(ref: SeatRef): Promise<void> {
    const namespace = namespaceOf(ref);
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 180_000);
    for (;;) {
      const pod = await this.core.readNamespacedPod({ name: 'workspace', namespace });
      if (pod.status?.phase === 'Running' && pod.status.containerStatuses?.every((c) => c.ready)) return;
      const waiting = pod.status?.containerStatuses?.find((c) => c.state?.waiting?.reason && /ErrImage|BackOff|Invalid/.test(c.state.waiting.reason));
      if (waiting || pod.status?.phase === 'Failed') {
        throw new DeploylabError({
          code: 'SANDBOX_IMAGE_MISSING',
          fault: 'infrastructure',
          message: {
            zh: `考位容器无法启动：${waiting?.state?.waiting?.reason ?? pod.status?.phase}`,
            en: `seat container cannot start: ${waiting?.state?.waiting?.reason ?? pod.status?.phase}`,
          },
          hint: { zh: '确认镜像已推送到集群可访问的仓库', en: 'make sure the images are in a registry the cluster can pull from' },
          details: { ...ref },
        });
      }
      if (Date.now() > deadline) throw new Error(`workspace pod not running after ${this.opts.readyTimeoutMs ?? 180_000} ms`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private async namespace(ref: SeatRef): Promise<{ labels: Record<string, string>; created: string }> {
    try {
      const ns = await this.core.readNamespace({ name: namespaceOf(ref) });
      return { labels: ns.metadata?.labels ?? {}, created: ns.metadata?.creationTimestamp?.toISOString?.() ?? String(ns.metadata?.creationTimestamp ?? '') };
    } catch (e) {
      if (codeOf(e) === 404) throw seatNotFound(ref);
      throw e;
    }
  }

  async status(ref: SeatRef): Promise<SeatStatus> {
    return this.op('status', async () => {
      const ns = await this.namespace(ref);
      const pods = await this.core.listNamespacedPod({ namespace: namespaceOf(ref) });
      return this.statusOf(ref, ns, pods.items);
    }, ref);
  }

  private statusOf(ref: SeatRef, ns: { labels: Record<string, string>; created: string }, pods: V1Pod[]): SeatStatus {
    const containers = pods.flatMap((p) =>
      (p.status?.containerStatuses ?? []).map((c) => ({
        role: c.name === FILES_CONTAINER ? 'files' : (p.metadata?.labels?.[LABEL.role] ?? c.name),
        id: `${p.metadata?.name}/${c.name}`,
        running: Boolean(c.state?.running),
        exitCode: c.state?.terminated?.exitCode ?? null,
        oomKilled: c.state?.terminated?.reason === 'OOMKilled' || c.lastState?.terminated?.reason === 'OOMKilled',
      })),
    );
    const allUp = containers.length > 0 && containers.every((c) => c.running);
    return {
      ref,
      state: !allUp ? 'degraded' : ns.labels[FROZEN_LABEL] === 'true' ? 'frozen' : 'running',
      task: ns.labels[LABEL.task] ?? '',
      containers,
      createdAt: ns.created,
    };
  }

  async list(filter: SweepFilter = {}): Promise<SeatStatus[]> {
    return this.op('list', async () => {
      const out: SeatStatus[] = [];
      for (const ns of await this.seatNamespaces(filter)) {
        const labels = ns.metadata?.labels ?? {};
        const ref = { session: labels[LABEL.session] ?? '', seat: labels[LABEL.seat] ?? '' };
        const pods = await this.core.listNamespacedPod({ namespace: ns.metadata!.name! });
        out.push(this.statusOf(ref, { labels, created: new Date(ns.metadata?.creationTimestamp ?? 0).toISOString() }, pods.items));
      }
      return out.sort((a, b) => `${a.ref.session}/${a.ref.seat}`.localeCompare(`${b.ref.session}/${b.ref.seat}`));
    });
  }

  private async seatNamespaces(filter: SweepFilter) {
    const selector = [`${LABEL.component}=${COMPONENT_SEAT}`, ...(filter.session ? [`${LABEL.session}=${filter.session}`] : [])].join(',');
    const list = await this.core.listNamespace({ labelSelector: selector });
    const now = Date.now();
    return list.items.filter((ns) => filter.olderThanMs === undefined || now - new Date(ns.metadata?.creationTimestamp ?? 0).getTime() >= filter.olderThanMs);
  }

  /** Run a command in a container of the workspace pod (or a service pod), collecting output. */
  private async run(
    ref: SeatRef,
    pod: string,
    container: string,
    cmd: string[],
    o: { stdin?: Readable | null; tty?: boolean; deadlineMs?: number; cap?: number; onOutput?: ExecOptions['onOutput']; rawStdout?: PassThrough },
  ): Promise<ExecResult> {
    const started = Date.now();
    const cap = o.cap ?? 1 << 20;
    const bufs = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    let kept = { stdout: 0, stderr: 0 };
    let truncated = false;
    const sink = (which: 'stdout' | 'stderr'): PassThrough => {
      const p = new PassThrough();
      p.on('data', (c: Buffer) => {
        o.onOutput?.(which, c);
        const room = cap - kept[which];
        if (room <= 0) {
          truncated = true;
          return;
        }
        const part = c.subarray(0, room);
        if (part.length < c.length) truncated = true;
        bufs[which].push(part);
        kept = { ...kept, [which]: kept[which] + part.length };
      });
      return p;
    };
    let status: V1Status | undefined;
    const ws = await this.execApi.exec(namespaceOf(ref), pod, container, cmd, o.rawStdout ?? sink('stdout'), sink('stderr'), o.stdin ?? null, o.tty ?? false, (s) => {
      status = s;
    });
    let timedOut = false;
    await new Promise<void>((resolve) => {
      const timer = o.deadlineMs
        ? setTimeout(() => {
          timedOut = true;
          ws.close();
          resolve();
        }, o.deadlineMs)
        : undefined;
      ws.on('close', () => {
        if (timer) clearTimeout(timer);
        resolve();
      });
    });
    let exitCode: number | null = null;
    if (!timedOut && status) {
      if (status.status === 'Success') exitCode = 0;
      else {
        const c = status.details?.causes?.find((x) => x.reason === 'ExitCode');
        exitCode = c?.message ? Number(c.message) : null;
      }
    }
    return {
      exitCode,
      stdout: Buffer.concat(bufs.stdout).toString('utf8'),
      stderr: Buffer.concat(bufs.stderr).toString('utf8'),
      truncated,
      timedOut,
      durationMs: Date.now() - started,
    };
  }

  private async isFrozen(ref: SeatRef): Promise<boolean> {
    return (await this.namespace(ref)).labels[FROZEN_LABEL] === 'true';
  }

  private asCandidate(cmd: string[]): string[] {
    return ['setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', '--', ...cmd];
  }

  async exec(ref: SeatRef, opts: ExecOptions): Promise<ExecResult> {
    return this.op('exec', async () => {
      const candidate = (opts.user ?? 'candidate') === 'candidate';
      if (candidate && (await this.isFrozen(ref))) throw seatFrozen(ref);
      const role = opts.container ?? 'workspace';
      let cmd = opts.cmd;
      if (opts.workdir || opts.env) {
        const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
        cmd = ['env', ...(opts.workdir ? ['-C', opts.workdir] : []), ...env, ...cmd];
      }
      if (candidate) cmd = this.asCandidate(cmd);
      const stdin = opts.stdin === undefined ? null : Readable.from([Buffer.from(opts.stdin)]);
      const r: Parameters<K8sDriver['run']>[4] = { stdin, tty: opts.tty ?? false };
      if (opts.deadlineMs !== undefined) r.deadlineMs = opts.deadlineMs;
      if (opts.outputCapBytes !== undefined) r.cap = opts.outputCapBytes;
      if (opts.onOutput) r.onOutput = opts.onOutput;
      return this.run(ref, role, role, cmd, r);
    }, ref);
  }

  async openTerminal(ref: SeatRef, opts: TerminalOptions = {}): Promise<TerminalSession> {
    const root = opts.user === 'root';
    return this.op('terminal', async () => {
      if (!root && (await this.isFrozen(ref))) throw seatFrozen(ref);
      const toShell = new PassThrough();
      const fromShell = new PassThrough();
      let status: V1Status | undefined;
      // The marker lets hangUp find this shell among the seat's processes (the API has no exec PID).
      const marker = randomUUID();
      const shell = ['env', `${TERMINAL_MARKER}=${marker}`, ...(opts.cmd ?? ['/bin/bash', '-l'])];
      const ws = await this.execApi.exec(namespaceOf(ref), 'workspace', 'workspace', root ? shell : this.asCandidate(shell), fromShell, fromShell, toShell, true, (s) => {
        status = s;
      });
      const { Duplex } = await import('node:stream');
      const stream = Duplex.from({ readable: fromShell, writable: toShell });
      const key = `${ref.session}/${ref.seat}`;
      const session: TerminalSession = {
        stream,
        // The exec websocket takes resize messages on channel 4 as JSON.
        resize: async (cols, rows) => {
          ws.send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: cols, Height: rows }))]));
        },
        done: new Promise((resolve) => {
          ws.on('close', () => {
            this.terminals.get(key)?.delete(session);
            fromShell.end();
            resolve(status?.status === 'Success' ? 0 : null);
          });
        }),
        close: () => ws.close(),
        hangUp: async () => {
          const grace = String(Math.ceil(TERMINAL_HANGUP_GRACE_MS / 1000));
          await this.exec(ref, { cmd: ['sh', '-c', HANGUP_SCRIPT, 'hangup', marker, grace], user: root ? 'root' : 'candidate', deadlineMs: TERMINAL_HANGUP_GRACE_MS + 10_000 }).catch(() => undefined);
          ws.close();
        },
      };
      if (opts.cols && opts.rows) await session.resize(opts.cols, opts.rows);
      if (!this.terminals.has(key)) this.terminals.set(key, new Set());
      this.terminals.get(key)!.add(session);
      return session;
    }, ref);
  }

  /** Tar a path out through the trusted sidecar; only the shared workspace volume is visible there. */
  private async tarOut(ref: SeatRef, path: string, workdir = '/workspace'): Promise<Readable> {
    const norm = posix.normalize(path);
    if (norm !== workdir && !norm.startsWith(`${workdir}/`)) {
      throw unsupported('k8s', `reading outside the workspace volume (${path}); the sidecar only shares ${workdir}`);
    }
    const out = new PassThrough();
    const done = this.run(ref, 'workspace', FILES_CONTAINER, ['tar', '-C', posix.dirname(norm), '-cf', '-', posix.basename(norm)], { rawStdout: out });
    done.then(
      (r) => {
        if (r.exitCode !== 0) out.destroy(/No such file/.test(r.stderr) ? fileNotFound(ref, path) : new Error(r.stderr));
        else out.end();
      },
      (e: unknown) => out.destroy(e as Error),
    );
    return out;
  }

  async readTree(ref: SeatRef, path: string, opts: { maxBytes?: number } = {}): Promise<FileEntry[]> {
    const max = opts.maxBytes ?? 64 << 20;
    return this.op('readTree', async () => {
      let entries: FileEntry[];
      try {
        entries = await readTar(await this.tarOut(ref, path), max);
      } catch (e) {
        if (e instanceof TarTooLarge) throw tooLarge(ref, path, max);
        throw e;
      }
      const root = entries[0]?.path ?? '';
      return entries.map((e) => ({ ...e, path: e.path === root ? '.' : e.path.slice(root.length + 1) }));
    }, ref);
  }

  async readFile(ref: SeatRef, path: string, opts: { maxBytes?: number } = {}): Promise<Buffer> {
    return fileContent(await this.readTree(ref, path, opts), ref, path);
  }

  /** Writes go through the workspace container's own tar, as root (setup, not grading). */
  async writeFiles(ref: SeatRef, files: WriteFile[], opts: { container?: string } = {}): Promise<void> {
    const role = opts.container ?? 'workspace';
    await this.op('writeFiles', async () => {
      const tar = await buildTar(files);
      const r = await this.run(ref, role, role, ['tar', '--same-owner', '-xpf', '-', '-C', '/'], { stdin: Readable.from([tar]) });
      if (r.exitCode !== 0) throw new Error(`tar in the seat failed: ${r.stderr}`);
    }, ref);
  }

  async processes(ref: SeatRef): Promise<SeatProcess[]> {
    return this.op('processes', async () => {
      const r = await this.run(ref, 'workspace', FILES_CONTAINER, ['ps', '-eo', 'pid=,ppid=,user=,args='], {});
      if (r.exitCode !== 0) throw new Error(`ps in the files sidecar failed: ${r.stderr}`);
      return r.stdout
        .split('\n')
        .map((l) => /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ hostPid: Number(m[1]), ppid: Number(m[2]), user: m[3]!, command: m[4]!, role: 'workspace', pidNamespace: 'pod' as const }));
    }, ref);
  }

  async endpoint(ref: SeatRef, port: number, opts: { container?: string } = {}): Promise<Endpoint> {
    await this.status(ref);
    return { host: `${opts.container ?? 'workspace'}.${namespaceOf(ref)}.svc.cluster.local`, port };
  }

  private async setFrozen(ref: SeatRef, frozen: boolean): Promise<void> {
    await this.namespace(ref);
    await this.core.patchNamespace({
      name: namespaceOf(ref),
      body: [{ op: 'add', path: `/metadata/labels/${FROZEN_LABEL.replace(/~/g, '~0').replace(/\//g, '~1')}`, value: String(frozen) }],
    });
  }

  async freeze(ref: SeatRef): Promise<void> {
    await this.op('freeze', () => this.setFrozen(ref, true), ref);
    const key = `${ref.session}/${ref.seat}`;
    for (const t of this.terminals.get(key) ?? []) t.close();
    this.terminals.delete(key);
  }

  async thaw(ref: SeatRef): Promise<void> {
    await this.op('thaw', () => this.setFrozen(ref, false), ref);
  }

  /**
   * Not here: a pod's disk is bounded by its ephemeral-storage limit, which the kubelet enforces
   * (evicting the pod); the runner's disk watch is for engines without a real quota.
   */
  async diskUsage(): Promise<SeatDiskUsage[]> {
    throw unsupported('k8s', 'disk usage sampling (use ephemeral-storage limits)');
  }

  async halt(): Promise<void> {
    throw unsupported('k8s', 'halting a pod in place');
  }

  async release(): Promise<void> {
    throw unsupported('k8s', 'releasing a halted pod');
  }

  async captureEvidence(ref: SeatRef, destFile: string, opts: { path?: string } = {}): Promise<EvidenceArchive> {
    return this.op('captureEvidence', async () => {
      const hash = createHash('sha256');
      const hashing = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      await pipeline(await this.tarOut(ref, opts.path ?? '/workspace'), createGzip(), hashing, createWriteStream(destFile));
      return { file: destFile, bytes: (await stat(destFile)).size, sha256: hash.digest('hex') };
    }, ref);
  }

  async destroy(ref: SeatRef): Promise<void> {
    await this.op('destroy', async () => {
      try {
        await this.core.deleteNamespace({ name: namespaceOf(ref), propagationPolicy: 'Foreground' });
      } catch (e) {
        if (codeOf(e) !== 404) throw e;
      }
    }, ref);
    this.terminals.delete(`${ref.session}/${ref.seat}`);
  }

  async sweep(filter: SweepFilter = {}): Promise<SweptItem[]> {
    return this.op('sweep', async () => {
      const out: SweptItem[] = [];
      for (const ns of await this.seatNamespaces(filter)) {
        const labels = ns.metadata?.labels ?? {};
        await this.core.deleteNamespace({ name: ns.metadata!.name! }).catch((e: unknown) => {
          if (codeOf(e) !== 404) throw e;
        });
        out.push({ kind: 'namespace', id: ns.metadata!.uid ?? '', name: ns.metadata!.name!, session: labels[LABEL.session] ?? '', seat: labels[LABEL.seat] ?? '' });
      }
      return out;
    });
  }

  /**
   * Every namespace labelled for the session, whatever its component: a seat namespace that a
   * sweep deleted stays listed while it is still terminating, since its pods may still run.
   */
  async leftovers(filter: { session: string }): Promise<Leftover[]> {
    return this.op('leftovers', async () => {
      const list = await this.core.listNamespace({ labelSelector: `${LABEL.session}=${filter.session}` });
      return list.items.map((ns) => ({ kind: ns.status?.phase === 'Terminating' ? 'namespace (terminating)' : 'namespace', name: ns.metadata?.name ?? '' }));
    });
  }
}
