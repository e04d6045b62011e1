import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { z } from 'zod';
import { parseOrThrow } from '../core/validation.js';

/**
 * The one narrow interface through which the harness provisions and inspects a candidate's
 * machine ("seat"). Two implementations: docker-driver.ts (local engine) and k8s-driver.ts
 * (a namespace per seat). Both must pass test/conformance/driver-contract.ts. fake-driver.ts is an
 * in-memory stand-in for lifecycle tests only (no sandbox, runs no processes, not selectable in a
 * config); it passes the contract's lifecycle half.
 *
 * Grading never runs a candidate's binaries through this interface: files come out through the
 * engine's archive API (docker) or a trusted sidecar (k8s); processes are listed host-side.
 */

const Name = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/, 'lower-case letters, digits and "-", 1-40 characters');
const PortNumber = z.number().int().min(1).max(65535);

export const PortSpecSchema = z.strictObject({
  name: Name,
  port: PortNumber,
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
});

const EnvSchema = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({});

export const ContainerSpecSchema = z.strictObject({
  image: z.string().min(1),
  /** Replaces the image's command; the workspace defaults to a long sleep so the seat idles. */
  command: z.array(z.string()).optional(),
  env: EnvSchema,
  /** Ports the container serves on; graders reach them through `endpoint()`. */
  ports: z.array(PortSpecSchema).default([]),
});

export const ServiceSpecSchema = ContainerSpecSchema.extend({
  /** DNS name of the service on the seat network. */
  name: Name,
});

/**
 * Capabilities a seat container keeps. Docker's default set minus NET_RAW (no raw sockets/spoofing),
 * MKNOD and SETFCAP; enough for apt, nginx (bind <1024, drop to its user), chown'ing one's files.
 */
export const SEAT_CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'NET_BIND_SERVICE', 'SYS_CHROOT', 'AUDIT_WRITE',
];

/**
 * The seat daemon's sidecar: the default set, NET_RAW and MKNOD for nested containers, the two
 * dockerd needs, and SYS_PTRACE, without which runc cannot join a container whose process runs as
 * another user (`docker exec` and every healthcheck of a non-root service fail).
 */
export const DIND_CAPABILITIES = [...SEAT_CAPABILITIES, 'NET_RAW', 'MKNOD', 'SETFCAP', 'SYS_ADMIN', 'NET_ADMIN', 'SYS_PTRACE'];

/** The docker-in-seat daemon's port, on the seat's own network namespace only. */
export const DIND_PORT = 2375;

/**
 * The docker-in-seat daemon, through the dind image's entry point (its cgroups, its authorization
 * plugin, then dockerd with these options). No storage driver is forced: dockerd takes overlay2 when its data
 * directory (a volume on the host's disk) allows it, and falls back by itself (fuse-overlayfs,
 * vfs) where it does not. vfs copies the whole image for every build step and container: on the
 * container task that was about 6× the build time and 1.8 GB instead of 0.3 GB a seat.
 */
export const DIND_COMMAND: readonly string[] = [
  'deploylab-dind',
  `--host=tcp://0.0.0.0:${DIND_PORT}`,
  '--tls=false',
  // Nested containers' logs bounded as the harness's own are (docker-driver CONTAINER_LOG_CONFIG).
  '--log-driver=json-file',
  '--log-opt=max-size=10m',
  '--log-opt=max-file=3',
];

export const SeatPlanSchema = z
  .strictObject({
    session: Name,
    seat: Name,
    task: Name,
    /** Harness version that created the seat; lets a sweep tell old leftovers apart. */
    version: z.string().min(1).default('0.1.0'),
    workspace: ContainerSpecSchema.extend({
      /** Working directory of candidate execs and the root of the evidence archive. */
      workdir: z.string().startsWith('/').default('/workspace'),
      hostname: Name.default('workspace'),
    }),
    /** Extra containers on the seat network (databases, a task's broken service, ...). */
    services: z.array(ServiceSpecSchema).default([]),
    resources: z
      .strictObject({
        cpus: z.number().positive().max(256).default(1),
        /** Hard limit; swap is disabled (memory+swap = memory). */
        memoryMiB: z.number().int().min(64).default(2048),
        pids: z.number().int().min(16).default(1024),
        /**
         * Disk per pod on Kubernetes (ephemeral-storage limit and workspace sizeLimit: the kubelet
         * evicts a pod past it). The Docker engine has no such limit here: the runner's disk watch
         * bounds each exam seat instead (config `disk`, runner/sessions/disk-watch.ts).
         */
        diskMiB: z.number().int().min(64).default(4096),
      })
      .prefault({}),
    network: z
      .strictObject({
        /** No route out of the seat by default. */
        egress: z.enum(['none', 'open']).default('none'),
        /**
         * In-room services the seat may reach (e.g. a model mirror) under `alias`: opened to this
         * seat alone; seats still cannot reach one another.
         */
        allow: z.array(z.strictObject({ target: z.string().min(1), alias: Name })).default([]),
      })
      .prefault({}),
    gpu: z
      .strictObject({
        /** Whole GPUs or MIG instances by UUID, as placed by gpu-placement.ts. Empty: no GPU. */
        devices: z.array(z.string().regex(/^(GPU|MIG)-[0-9a-fA-F-]+$/)).default([]),
      })
      .prefault({}),
    /** A sidecar docker daemon in the seat's network namespace, reachable only from this seat as tcp://dind:2375. */
    dockerInSeat: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** Image with dockerd; defaults to the workspace image. */
        image: z.string().optional(),
        /** Images copied from the host engine into the seat's daemon at provision time. */
        preload: z.array(z.string()).default([]),
      })
      .prefault({}),
    labels: z.record(z.string(), z.string()).default({}),
  })
  .superRefine((plan, ctx) => {
    const names = new Set<string>(['workspace', 'dind', ...plan.network.allow.map((a) => a.alias)]);
    plan.services.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: ['services', i, 'name'], message: `name "${s.name}" is taken` });
      names.add(s.name);
    });
  });

export type SeatPlanInput = z.input<typeof SeatPlanSchema>;
export type SeatPlan = z.output<typeof SeatPlanSchema>;

/** Validate a plan once, at the boundary; drivers take the parsed value. */
export function parseSeatPlan(value: unknown, source = 'seat plan'): SeatPlan {
  return parseOrThrow(SeatPlanSchema, value, {
    source,
    code: 'SANDBOX_PLAN_INVALID',
    what: { zh: '考位计划', en: 'seat plan' },
  });
}

/** How a seat is addressed after provisioning: the same ids the labels carry. */
export interface SeatRef {
  session: string;
  seat: string;
}

export type SeatState = 'running' | 'frozen' | 'degraded' | 'missing';

export interface SeatStatus {
  ref: SeatRef;
  state: SeatState;
  task: string;
  /** Per container: role (workspace, dind, a service name) and whether it runs. */
  containers: { role: string; id: string; running: boolean; exitCode: number | null; oomKilled: boolean }[];
  createdAt: string;
}

export interface ExecOptions {
  cmd: string[];
  /** Candidate execs run as uid 1000 and are refused while the seat is frozen. */
  user?: 'candidate' | 'root';
  /** Which container: 'workspace' (default) or a service name. */
  container?: string;
  tty?: boolean;
  env?: Record<string, string>;
  workdir?: string;
  stdin?: string | Buffer;
  /** Milliseconds; the exec is killed when it passes. */
  deadlineMs?: number;
  /** Bytes kept per stream; the rest is counted and dropped. */
  outputCapBytes?: number;
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

export interface TerminalOptions {
  cols?: number;
  rows?: number;
  cmd?: string[];
  user?: 'candidate' | 'root';
}

export interface TerminalSession {
  /** Raw TTY bytes both ways. */
  stream: Duplex;
  resize(cols: number, rows: number): Promise<void>;
  /** Resolves with the shell's exit code once it ends (or null when it was cut off). */
  done: Promise<number | null>;
  /** Detach; the shell's processes are left alone (a freeze or pause: services started there run on). */
  close(): void;
  /**
   * End the shell as closing a real terminal would: SIGHUP to the shell, which passes it to its
   * jobs (`nohup` ones live on), then SIGKILL after `TERMINAL_HANGUP_GRACE_MS` for a shell that
   * ignores it. Resolves once the shell is gone or could not be reached.
   */
  hangUp(): Promise<void>;
}

/** How long a hung-up shell may take to exit before it is killed. */
export const TERMINAL_HANGUP_GRACE_MS = 3000;

export interface FileEntry {
  /** Path relative to the root asked for. */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  linkTarget?: string;
  /** Present for regular files (subject to the byte cap). */
  content?: Buffer;
  /** Set when `content` is only the first bytes of the file (a `prefix` read over the cap). */
  truncated?: boolean;
}

export interface WriteFile {
  path: string;
  content: string | Buffer;
  mode?: number;
  /** Owner; the candidate (1000) by default. */
  uid?: number;
  gid?: number;
}

export interface SeatProcess {
  /** PID as the host sees it (what nvidia-smi reports). */
  hostPid: number;
  ppid: number;
  /** User name as the host's ps shows it (the host's passwd, which may differ from the seat's). */
  user: string;
  /** Numeric uid (resolve it against the seat's own /etc/passwd for the seat's user name). */
  uid?: number;
  command: string;
  /** Which container of the seat runs it. */
  role: string;
  /** 'host' (Docker: what nvidia-smi reports); 'pod' on Kubernetes, where the PID is the pod's own. */
  pidNamespace?: 'host' | 'pod';
}

export interface Endpoint {
  host: string;
  port: number;
}

export interface EvidenceArchive {
  file: string;
  bytes: number;
  sha256: string;
}

export interface SweepFilter {
  session?: string;
  /** Only things created longer ago than this many milliseconds. */
  olderThanMs?: number;
}

export interface SweptItem {
  kind: string;
  id: string;
  name: string;
  session: string;
  seat: string;
}

/** What one seat holds on the host's disk, as the engine counts it (never the seat's own `du`). */
export interface SeatDiskUsage {
  ref: SeatRef;
  bytes: number;
  /**
   * Names (inodes) in its writable layers and volumes, counted on the host up to the caller's
   * `filesUpTo` per part; null where the engine's directories cannot be read from here.
   */
  files: number | null;
  /** Writable layers by container role, volumes by role (the nested daemon's data is `dind-data`). */
  parts: { kind: 'container' | 'volume'; role: string; bytes: number; files: number | null }[];
}

export interface DiskUsageFilter {
  session?: string;
  /** Count names up to this many per part (a seat's quota of files); 0 or absent: do not count. */
  filesUpTo?: number;
}

/** The engine's own record of one seat container (Docker's inspect format), by its role in the seat. */
export interface SeatContainerRecord {
  role: string;
  info: Docker.ContainerInspectInfo;
}

export interface ImageFileDigest {
  /** The path read, after symlinks. */
  path: string;
  size: number;
  sha256: string;
}

/**
 * What an engine running its seats on this host can tell graders beyond the common interface: the
 * container probe's records, the file an image ships (a model file's provenance), and restarting one
 * container (the recovery probe). Only the Docker driver has it; a probe needing it on another
 * driver is `error` with a code (graders/capabilities.ts), never a guess.
 */
export interface HostEngineAccess {
  inspectContainers(ref: SeatRef): Promise<SeatContainerRecord[]>;
  /** sha256 of `path` in the image the seat container (workspace by default) was created from; null when absent. */
  imageFile(ref: SeatRef, path: string, opts: { container?: string; task: string }): Promise<ImageFileDigest | null>;
  restartContainer(ref: SeatRef, role: string): Promise<void>;
  /**
   * Signal one of the seat's processes by its host PID, only while it is still that process of
   * that seat: listed now in the same container with the same command (PIDs are reused). `gone`
   * when it is not (it exited, or the PID is another process's now); nothing is signalled then.
   */
  signal(ref: SeatRef, p: { hostPid: number; role: string; command: string }, signal: 'SIGKILL' | 'SIGTERM' | 'SIGINT'): Promise<'sent' | 'gone'>;
  /** The directory on this host's disk where the engine keeps seats' layers and volumes. */
  dataRoot(): Promise<string | null>;
}

/** A file copied into or out of the toolbox is held in memory on the way: models for CPU seats stay far below. */
export const TOOLBOX_FILE_MAX_BYTES = 1024 * 1024 * 1024;

/** One command the trusted toolbox ran (a copy of seat files in, output and named files out). */
export interface ToolboxRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
  /** Where it ran, for the evidence (e.g. "toolbox deploylab/toolbox:<tag>"). */
  where: string;
  /** The `collect` files that exist after the command, by path. */
  files?: Record<string, Buffer>;
}

export interface ToolboxServiceSpec {
  command: string[];
  port: number;
  cpus: number;
  memoryMiB: number;
}

/** A service started from the toolbox image that only the harness can reach. */
export interface ToolboxService {
  endpoint: Endpoint;
  /** Where it runs, for the evidence (e.g. "toolbox deploylab/toolbox:<tag>"). */
  where: string;
  /** Whether its process still runs (a reference that exited will never be ready). */
  running(): Promise<{ running: boolean; exitCode: number | null }>;
  /** The tail of its output, for the evidence when it fails. */
  logs(): Promise<string>;
  /** Remove it and everything made for it; never throws. */
  stop(): Promise<void>;
}

/**
 * The graders' trusted tools, in containers of the harness's own toolbox image beside the seat
 * (never inside it): one-off runs on copies of seat files without network, and reference services.
 * Everything it starts carries the seat's session and seat labels, so `leftovers` lists what a
 * crashed run left, and the driver's `sweep` removes it with the seats.
 */
export interface TrustedToolbox {
  /**
   * `network`: 'none' (default) for judging copies; 'seat' joins the seat's own network namespace
   * (its services on 127.0.0.1, and no more reach than the candidate's shell has), for the graders
   * that must talk to the live service: a browser, an API collection runner.
   */
  run(ref: SeatRef, o: { image: string; task: string; files: WriteFile[]; cmd: string[]; timeoutMs: number; collect?: string[]; network?: 'none' | 'seat' }): Promise<ToolboxRun>;
  startService(ref: SeatRef, o: { image: string; task: string; files: WriteFile[] } & ToolboxServiceSpec): Promise<ToolboxService>;
  /** Remove the toolbox's own containers and networks (not the seats): what a crashed grading run left. */
  sweep(filter?: SweepFilter): Promise<SweptItem[]>;
}

/** Something the engine still holds for a session, as the engine itself lists it. */
export interface Leftover {
  /** The engine's own kind: container, network, volume (Docker, and the fake's containers); namespace (Kubernetes). */
  kind: string;
  name: string;
  /** Host ports it holds, as `address:port`. */
  hostPorts?: string[];
}

export interface SandboxDriver {
  readonly name: 'docker' | 'k8s' | 'fake';
  /**
   * How many seat sandboxes one session can hold at most (its network's addresses), or null when
   * the backend sets no such bound. Checked when a session opens, before any work starts.
   */
  readonly sandboxesPerSession: number | null;
  /** Present when the seats run on an engine of this host that graders may inspect (Docker). */
  readonly hostEngine?: HostEngineAccess;
  /** Present where the backend can run the trusted toolbox (Docker); model-load checks need it. */
  readonly toolbox?: TrustedToolbox;
  provision(plan: SeatPlan): Promise<SeatStatus>;
  status(ref: SeatRef): Promise<SeatStatus>;
  exec(ref: SeatRef, opts: ExecOptions): Promise<ExecResult>;
  /**
   * A TTY shell. As the candidate by default, refused while frozen; `user: 'root'` is the
   * examiners' shell (`deploylab seat shell --root`), allowed on a frozen seat so it can be inspected.
   */
  openTerminal(ref: SeatRef, opts?: TerminalOptions): Promise<TerminalSession>;
  readFile(ref: SeatRef, path: string, opts?: { maxBytes?: number; container?: string }): Promise<Buffer>;
  /**
   * `prefix`: a file over `maxBytes` comes back as its first bytes with `truncated` set (instead of
   * SANDBOX_FILE_TOO_LARGE) and reading stops there; meant for one file, e.g. a model's header.
   */
  readTree(ref: SeatRef, path: string, opts?: { maxBytes?: number; container?: string; prefix?: boolean }): Promise<FileEntry[]>;
  writeFiles(ref: SeatRef, files: WriteFile[], opts?: { container?: string }): Promise<void>;
  processes(ref: SeatRef): Promise<SeatProcess[]>;
  endpoint(ref: SeatRef, port: number, opts?: { container?: string }): Promise<Endpoint>;
  /** Candidate access closed (new candidate execs refused, open terminals detached); services run on. */
  freeze(ref: SeatRef): Promise<void>;
  thaw(ref: SeatRef): Promise<void>;
  /** Every seat of the filter with its bytes on the host's disk; seats holding nothing may be left out. */
  diskUsage(filter?: DiskUsageFilter): Promise<SeatDiskUsage[]>;
  /**
   * Every process of the seat stopped where it stands (nothing killed, nothing lost): what the disk
   * watch does to a seat at its quota. Execs and terminals fail while halted. `release` lets them go on.
   */
  halt(ref: SeatRef): Promise<void>;
  release(ref: SeatRef): Promise<void>;
  captureEvidence(ref: SeatRef, destFile: string, opts?: { path?: string }): Promise<EvidenceArchive>;
  destroy(ref: SeatRef): Promise<void>;
  /** Seats that exist, found by labels. */
  list(filter?: SweepFilter): Promise<SeatStatus[]>;
  /** Remove everything carrying our labels that matches the filter, the toolbox's containers included. */
  sweep(filter?: SweepFilter): Promise<SweptItem[]>;
  /**
   * Everything labelled for the session that the engine still holds, whoever made it and whatever
   * component it belongs to: what a reset must prove empty. Listed straight from the engine.
   */
  leftovers(filter: { session: string }): Promise<Leftover[]>;
}
