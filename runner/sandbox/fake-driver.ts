import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { z } from 'zod';
import { DeploylabError, type Bilingual } from '../core/errors.js';
import { parseOrThrow } from '../core/validation.js';
import { parseSeatPlan } from './driver.js';
import type {
  Endpoint,
  EvidenceArchive,
  ExecOptions,
  DiskUsageFilter,
  ExecResult,
  FileEntry,
  Leftover,
  SandboxDriver,
  SeatDiskUsage,
  SeatPlan,
  SeatProcess,
  SeatRef,
  SeatStatus,
  SweepFilter,
  SweptItem,
  TerminalOptions,
  TerminalSession,
  WriteFile,
} from './driver.js';
import { engineError, fileContent, fileNotFound, seatExists, seatFrozen, seatHalted, seatNotFound, tooLarge } from './errors.js';
import { seatLabels, seatObjectName } from './labels.js';

/**
 * An in-memory SandboxDriver, so the exam lifecycle (provision, freeze, reconcile, archive,
 * reset, ...) can be tested where no container engine runs. It is NOT a sandbox: it holds seat
 * records and file trees in a Map and runs nothing, so every operation that needs a kernel (exec,
 * terminals, process listing, endpoints) refuses with SANDBOX_UNSUPPORTED instead of pretending.
 * It is never selectable in a centre's config; tests construct it directly.
 *
 * Where it can be, it is faithful to the Docker driver: the same plan schema, labels, typed error
 * codes, file ownership and tar layout, disk accounting of what was written, and the same order
 * of refusals (unknown seat, frozen, halted) before it says what it cannot do.
 * test/conformance/driver-contract.ts holds it to that.
 */

/** Default read cap, as the Docker driver's. */
const DEFAULT_READ_CAP = 64 << 20;
const CANDIDATE_UID = 1000;

/** The data part of the options (the hooks are functions and are not parsed). */
const FakeDriverConfigSchema = z.strictObject({
  /** Images the fake "engine" holds; a plan naming another fails SANDBOX_IMAGE_MISSING. Absent: every image exists. */
  images: z.array(z.string().min(1)).optional(),
  /** What the Docker driver allows with its default /22 session network. */
  sandboxesPerSession: z.number().int().positive().default(1013),
  /** Every call fails as against an engine that is not there (SANDBOX_ENGINE_ERROR). */
  unreachable: z.boolean().default(false),
});

export interface FakeDriverOptions extends z.input<typeof FakeDriverConfigSchema> {
  /**
   * Fault injection: called for every provision after the plan is validated; an error returned is
   * thrown and nothing is recorded (as a real driver leaves nothing half-made behind).
   */
  failProvision?: (plan: SeatPlan) => DeploylabError | undefined;
  /** Clock for createdAt and sweeps' `olderThanMs`. */
  now?: () => number;
}

interface Node {
  type: 'file' | 'directory';
  content?: Buffer;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

interface FakeContainer {
  role: string;
  id: string;
  /** Absolute, normalised path → node; '/' is implicit. */
  fs: Map<string, Node>;
}

interface FakeSeat {
  plan: SeatPlan;
  createdAt: number;
  frozen: boolean;
  halted: boolean;
  containers: Map<string, FakeContainer>;
}

/** What a test may look at directly, as one would with `docker inspect`. */
export interface FakeSeatView {
  ref: SeatRef;
  task: string;
  frozen: boolean;
  halted: boolean;
  createdAt: string;
  /** Labels per container role. */
  labels: Record<string, Record<string, string>>;
}

const keyOf = (ref: SeatRef): string => `${ref.session}/${ref.seat}`;

/** As the Docker driver's archive paths: relative ones are taken from the root. */
function norm(path: string): string {
  const p = posix.normalize(`/${path}`);
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** Depth-first order (a directory, then what is inside it), as tar archives list entries. */
function treeOrder(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}

function unsupportedHere(what: Bilingual, ref: SeatRef): DeploylabError {
  return new DeploylabError({
    code: 'SANDBOX_UNSUPPORTED',
    // As every driver says it (sandbox/errors.ts `unsupported`): the driver chosen cannot do this.
    fault: 'config',
    message: {
      zh: `内存驱动不运行任何进程，无法${what.zh}：${ref.session}/${ref.seat}`,
      en: `the in-memory driver runs no processes, so it cannot ${what.en}: ${ref.session}/${ref.seat}`,
    },
    hint: { zh: '内存驱动只用于生命周期测试；需要进程的操作请在真实引擎（docker 或 k8s）上运行', en: 'the in-memory driver is for lifecycle tests only; run anything that needs a process on a real engine (docker or k8s)' },
    details: { driver: 'fake', operation: what.en, ...ref },
  });
}

export class FakeDriver implements SandboxDriver {
  readonly name = 'fake' as const;
  readonly sandboxesPerSession: number;
  /** Flip to simulate the engine going away (and coming back) mid-test. */
  unreachable: boolean;
  private readonly images: ReadonlySet<string> | null;
  private readonly failProvision: FakeDriverOptions['failProvision'];
  private readonly now: () => number;
  private readonly seatsByKey = new Map<string, FakeSeat>();

  constructor(opts: FakeDriverOptions = {}) {
    const { failProvision, now, ...data } = opts;
    const cfg = parseOrThrow(FakeDriverConfigSchema, data, { source: 'FakeDriver options', code: 'SANDBOX_FAKE_OPTIONS_INVALID', what: { zh: '内存驱动选项', en: 'in-memory driver options' } });
    this.images = cfg.images ? new Set(cfg.images) : null;
    this.sandboxesPerSession = cfg.sandboxesPerSession;
    this.unreachable = cfg.unreachable;
    this.failProvision = failProvision;
    this.now = now ?? Date.now;
  }

  // ---- inspection for tests (not part of SandboxDriver) ---------------------------------------

  /** The seat as held, straight from the map (no filtering through `list`); undefined when absent. */
  inspect(ref: SeatRef): FakeSeatView | undefined {
    const s = this.seatsByKey.get(keyOf(ref));
    if (!s) return undefined;
    return {
      ref: { session: s.plan.session, seat: s.plan.seat },
      task: s.plan.task,
      frozen: s.frozen,
      halted: s.halted,
      createdAt: new Date(s.createdAt).toISOString(),
      labels: Object.fromEntries([...s.containers.keys()].map((role) => [role, seatLabels(s.plan, role)])),
    };
  }

  /** Every seat held (of one session), straight from the map. */
  held(session?: string): SeatRef[] {
    return [...this.seatsByKey.values()]
      .filter((s) => session === undefined || s.plan.session === session)
      .map((s) => ({ session: s.plan.session, seat: s.plan.seat }));
  }

  // ---- helpers ---------------------------------------------------------------------------------

  /** What an unreachable engine answers to every call. */
  private reach(operation: string, ref?: SeatRef): void {
    if (this.unreachable) throw engineError('fake', operation, new Error('connect ECONNREFUSED (the fake engine is set unreachable)'), ref);
  }

  private seatOf(operation: string, ref: SeatRef): FakeSeat {
    this.reach(operation, ref);
    const s = this.seatsByKey.get(keyOf(ref));
    if (!s) throw seatNotFound(ref);
    return s;
  }

  /** A container of the seat; an unknown role is an unknown seat, as the Docker driver says. */
  private containerOf(operation: string, ref: SeatRef, role = 'workspace'): FakeContainer {
    const c = this.seatOf(operation, ref).containers.get(role);
    if (!c) throw seatNotFound(ref);
    return c;
  }

  private statusOf(s: FakeSeat): SeatStatus {
    return {
      ref: { session: s.plan.session, seat: s.plan.seat },
      state: s.frozen ? 'frozen' : 'running',
      task: s.plan.task,
      containers: [...s.containers.values()].map((c) => ({ role: c.role, id: c.id, running: true, exitCode: null, oomKilled: false })),
      createdAt: new Date(s.createdAt).toISOString(),
    };
  }

  /** Missing parents are made root's (0755), as an engine's archive extraction does. */
  private ensureDir(c: FakeContainer, dir: string, operation: string, ref: SeatRef, owner?: { uid: number; gid: number }): void {
    if (dir === '/') return;
    this.ensureDir(c, posix.dirname(dir), operation, ref);
    const n = c.fs.get(dir);
    if (n?.type === 'directory') return;
    if (n) throw engineError('fake', operation, new Error(`not a directory: ${dir}`), ref);
    c.fs.set(dir, { type: 'directory', mode: 0o755, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtime: new Date(this.now()) });
  }

  private node(c: FakeContainer, path: string): Node | undefined {
    return path === '/' ? { type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: new Date(0) } : c.fs.get(path);
  }

  /** `root` and what is under it, depth-first, with the tar name each would have in an archive of `root`. */
  private walk(c: FakeContainer, root: string): { path: string; name: string; node: Node }[] {
    const top = this.node(c, root)!;
    const base = posix.basename(root);
    const tarName = (p: string): string => {
      const rel = p === root ? '' : root === '/' ? p.slice(1) : p.slice(root.length + 1);
      return [base, rel].filter(Boolean).join('/');
    };
    const under = top.type === 'directory' ? [...c.fs.keys()].filter((p) => root === '/' || p.startsWith(`${root}/`)).sort(treeOrder) : [];
    return [{ path: root, name: tarName(root), node: top }, ...under.map((p) => ({ path: p, name: tarName(p), node: c.fs.get(p)! }))];
  }

  // ---- provisioning ----------------------------------------------------------------------------

  async provision(input: SeatPlan): Promise<SeatStatus> {
    // The same schema the real drivers' callers parse with: a plan that skipped it is refused here.
    const plan = parseSeatPlan(input, `seat plan ${input?.session}/${input?.seat}`);
    const ref = { session: plan.session, seat: plan.seat };
    this.reach('provision', ref);
    const injected = this.failProvision?.(plan);
    if (injected) throw injected;
    if (this.seatsByKey.has(keyOf(ref))) throw seatExists(ref);
    const missing = [plan.workspace.image, ...plan.services.map((s) => s.image), ...(plan.dockerInSeat.enabled ? [plan.dockerInSeat.image ?? plan.workspace.image] : [])].find(
      (i) => this.images !== null && !this.images.has(i),
    );
    if (missing) {
      throw new DeploylabError({
        code: 'SANDBOX_IMAGE_MISSING',
        fault: 'infrastructure',
        message: { zh: `考位镜像不存在：${missing}`, en: `seat image missing: ${missing}` },
        hint: { zh: '先运行 deploylab images build', en: 'run `deploylab images build` first' },
        details: { ...ref, image: missing },
      });
    }
    if (this.held(plan.session).length >= this.sandboxesPerSession) {
      throw engineError('fake', 'provision', new Error(`no free address on the session network (${this.sandboxesPerSession} sandboxes per session)`), ref);
    }
    const roles = ['workspace', ...(plan.dockerInSeat.enabled ? ['dind'] : []), ...plan.services.map((s) => s.name)];
    const containers = new Map(roles.map((role) => [role, { role, id: randomBytes(32).toString('hex'), fs: new Map<string, Node>() }]));
    const seat: FakeSeat = { plan, createdAt: this.now(), frozen: false, halted: false, containers };
    // The workdir belongs to the candidate, as the Docker driver makes sure it does.
    this.ensureDir(containers.get('workspace')!, plan.workspace.workdir, 'provision', ref, { uid: CANDIDATE_UID, gid: CANDIDATE_UID });
    this.seatsByKey.set(keyOf(ref), seat);
    return this.statusOf(seat);
  }

  async status(ref: SeatRef): Promise<SeatStatus> {
    return this.statusOf(this.seatOf('status', ref));
  }

  async list(filter: SweepFilter = {}): Promise<SeatStatus[]> {
    this.reach('list');
    const now = this.now();
    return [...this.seatsByKey.values()]
      .filter((s) => (filter.session === undefined || s.plan.session === filter.session) && (filter.olderThanMs === undefined || now - s.createdAt >= filter.olderThanMs))
      .map((s) => this.statusOf(s))
      .sort((a, b) => keyOf(a.ref).localeCompare(keyOf(b.ref)));
  }

  // ---- what needs a kernel ---------------------------------------------------------------------

  /** Refusals that need no process come first, as on an engine; then the honest "cannot". */
  async exec(ref: SeatRef, opts: ExecOptions): Promise<ExecResult> {
    const s = this.seatOf('exec', ref);
    if ((opts.user ?? 'candidate') === 'candidate' && s.frozen) throw seatFrozen(ref);
    if (!s.containers.has(opts.container ?? 'workspace')) throw seatNotFound(ref);
    if (s.halted) throw seatHalted(ref);
    const cmd = JSON.stringify(opts.cmd.join(' ').slice(0, 80));
    throw unsupportedHere({ zh: `执行命令 ${cmd}`, en: `run ${cmd}` }, ref);
  }

  async openTerminal(ref: SeatRef, opts: TerminalOptions = {}): Promise<TerminalSession> {
    const s = this.seatOf('terminal', ref);
    if (opts.user !== 'root' && s.frozen) throw seatFrozen(ref);
    if (s.halted) throw seatHalted(ref);
    throw unsupportedHere({ zh: '打开终端', en: 'open a terminal' }, ref);
  }

  async processes(ref: SeatRef): Promise<SeatProcess[]> {
    this.seatOf('processes', ref);
    throw unsupportedHere({ zh: '列出进程', en: 'list processes' }, ref);
  }

  async endpoint(ref: SeatRef, port: number, opts: { container?: string } = {}): Promise<Endpoint> {
    this.containerOf('endpoint', ref, opts.container);
    throw unsupportedHere({ zh: `提供端口 ${port} 上的服务`, en: `serve port ${port}` }, ref);
  }

  // ---- files -----------------------------------------------------------------------------------

  async writeFiles(ref: SeatRef, files: WriteFile[], opts: { container?: string } = {}): Promise<void> {
    const c = this.containerOf('writeFiles', ref, opts.container);
    // All or nothing, as one archive extraction: check every path before touching the tree.
    const staged = new Map(c.fs);
    const scratch: FakeContainer = { ...c, fs: staged };
    for (const f of files) {
      const path = norm(f.path);
      if (path === '/') throw engineError('fake', 'writeFiles', new Error('cannot write a file over /'), ref);
      this.ensureDir(scratch, posix.dirname(path), 'writeFiles', ref);
      if (staged.get(path)?.type === 'directory') throw engineError('fake', 'writeFiles', new Error(`cannot overwrite directory ${path} with a file`), ref);
      const content = Buffer.from(typeof f.content === 'string' ? Buffer.from(f.content) : f.content);
      staged.set(path, { type: 'file', content, mode: (f.mode ?? 0o644) & 0o7777, uid: f.uid ?? CANDIDATE_UID, gid: f.gid ?? CANDIDATE_UID, mtime: new Date(this.now()) });
    }
    c.fs.clear();
    for (const [p, n] of staged) c.fs.set(p, n);
  }

  async readTree(ref: SeatRef, path: string, opts: { maxBytes?: number; container?: string; prefix?: boolean } = {}): Promise<FileEntry[]> {
    const c = this.containerOf('readTree', ref, opts.container);
    const root = norm(path);
    if (!this.node(c, root)) throw fileNotFound(ref, path);
    const max = opts.maxBytes ?? DEFAULT_READ_CAP;
    const out: FileEntry[] = [];
    let total = 0;
    for (const { path: p, name, node } of this.walk(c, root)) {
      const entry: FileEntry = {
        path: p === root ? '.' : root === '/' ? p.slice(1) : p.slice(root.length + 1),
        type: node.type,
        size: node.content?.length ?? 0,
        mode: node.mode,
        uid: node.uid,
        gid: node.gid,
        mtime: new Date(node.mtime),
      };
      out.push(entry);
      if (node.type !== 'file') continue;
      const content = node.content ?? Buffer.alloc(0);
      if (opts.prefix && total + content.length > max) {
        // As readTar: what fits of this file, marked truncated, and reading stops.
        entry.content = Buffer.from(content.subarray(0, Math.max(0, max - total)));
        entry.truncated = true;
        return out;
      }
      total += content.length;
      if (total > max) throw tooLarge(ref, `${path} (${name})`, max);
      entry.content = Buffer.from(content);
    }
    return out;
  }

  async readFile(ref: SeatRef, path: string, opts: { maxBytes?: number; container?: string } = {}): Promise<Buffer> {
    return fileContent(await this.readTree(ref, path, opts), ref, path);
  }

  /** A real gzipped tar of the workspace (its workdir by default), rooted at the path's basename like an engine's archive. */
  async captureEvidence(ref: SeatRef, destFile: string, opts: { path?: string } = {}): Promise<EvidenceArchive> {
    const s = this.seatOf('captureEvidence', ref);
    const c = s.containers.get('workspace')!;
    const root = norm(opts.path ?? s.plan.workspace.workdir);
    if (!this.node(c, root)) throw fileNotFound(ref, root);
    const p = pack();
    const chunks: Buffer[] = [];
    p.on('data', (d: unknown) => chunks.push(d as Buffer));
    const ended = new Promise<void>((resolve, reject) => {
      p.on('end', resolve);
      p.on('error', reject);
    });
    for (const { name, node } of this.walk(c, root)) {
      const header = { mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime };
      if (node.type === 'directory') p.entry({ ...header, name: `${name || '.'}/`, type: 'directory' });
      else p.entry({ ...header, name, size: node.content!.length }, node.content!);
    }
    p.finalize();
    await ended;
    const gz = gzipSync(Buffer.concat(chunks));
    try {
      await writeFile(destFile, gz);
    } catch (e) {
      throw engineError('fake', 'captureEvidence', e, ref);
    }
    return { file: destFile, bytes: gz.length, sha256: createHash('sha256').update(gz).digest('hex') };
  }

  // ---- access, disk, teardown ------------------------------------------------------------------

  async freeze(ref: SeatRef): Promise<void> {
    this.seatOf('freeze', ref).frozen = true;
  }

  async thaw(ref: SeatRef): Promise<void> {
    this.seatOf('thaw', ref).frozen = false;
  }

  async halt(ref: SeatRef): Promise<void> {
    this.seatOf('halt', ref).halted = true;
  }

  async release(ref: SeatRef): Promise<void> {
    this.seatOf('release', ref).halted = false;
  }

  /** Bytes of the files written into each container (what a writable layer holds), and how many; nothing else is counted. */
  async diskUsage(filter: DiskUsageFilter = {}): Promise<SeatDiskUsage[]> {
    this.reach('diskUsage');
    const limit = filter.filesUpTo ?? 0;
    return [...this.seatsByKey.values()]
      .filter((s) => filter.session === undefined || s.plan.session === filter.session)
      .map((s) => {
        const parts = [...s.containers.values()].map((c) => ({
          kind: 'container' as const,
          role: c.role,
          bytes: [...c.fs.values()].reduce((n, x) => n + (x.content?.length ?? 0), 0),
          files: limit > 0 ? Math.min(limit, c.fs.size) : null,
        }));
        const files = limit > 0 ? parts.reduce((n, x) => n + (x.files ?? 0), 0) : null;
        return { ref: { session: s.plan.session, seat: s.plan.seat }, bytes: parts.reduce((n, x) => n + x.bytes, 0), files, parts };
      });
  }

  /** Gone or never there: nothing to do, as on an engine. */
  async destroy(ref: SeatRef): Promise<void> {
    this.reach('destroy', ref);
    this.seatsByKey.delete(keyOf(ref));
  }

  async sweep(filter: SweepFilter = {}): Promise<SweptItem[]> {
    this.reach('sweep');
    const now = this.now();
    const removed: SweptItem[] = [];
    for (const [key, s] of this.seatsByKey) {
      if (filter.session !== undefined && s.plan.session !== filter.session) continue;
      if (filter.olderThanMs !== undefined && now - s.createdAt < filter.olderThanMs) continue;
      this.seatsByKey.delete(key);
      const ref = { session: s.plan.session, seat: s.plan.seat };
      for (const c of s.containers.values()) removed.push({ kind: 'container', id: c.id, name: seatObjectName(ref, c.role), ...ref });
    }
    return removed;
  }

  /** The fake's containers of the session: all it ever holds. */
  async leftovers(filter: { session: string }): Promise<Leftover[]> {
    this.reach('leftovers');
    const out: Leftover[] = [];
    for (const s of this.seatsByKey.values()) {
      if (s.plan.session !== filter.session) continue;
      for (const c of s.containers.values()) out.push({ kind: 'container', name: seatObjectName({ session: s.plan.session, seat: s.plan.seat }, c.role) });
    }
    return out;
  }
}
