/**
 * What a seat handle may do beyond the SeatHandle contract (probe.ts), all in one place: the
 * optional methods, and the seat capabilities probe kinds declare they need (`needs` in each
 * kind's index.ts). A capability a check needs is checked once, before its probe runs
 * (kinds.ts): a seat handle without it makes the check an `error` (the harness cannot judge it
 * here), never a pass or a fail. The sandbox driver's adapter (runner/grading/seat-handle.ts)
 * supplies them where it can: `toolbox` and `reference` with a trusted toolbox, the others with
 * a Docker engine.
 */
import { DeploylabError } from '../runner/core/errors.js';
import type { SeatContainerRecord, ToolboxService } from '../runner/sandbox/driver.js';
import type { SeatHandle, SeatProcess } from './probe.js';

/** A seat container as an engine reports it, with the seat role it plays (the driver's own type). */
export type SeatContainerInfo = SeatContainerRecord;

/** Optional seat capability for the container probe's scope `seat`; the docker adapter inspects the seat's containers. */
export interface ContainerInspector {
  inspectContainers?(): Promise<SeatContainerInfo[]>;
}

export type Signal = 'SIGKILL' | 'SIGTERM' | 'SIGINT';

/**
 * What the recovery probe may do to a seat beyond looking at it. Both are optional: the docker
 * adapter supplies both (a signal only reaches a process the engine still lists in that seat
 * container); without `signalProcess` the host's own process.kill is used
 * (so signals are no capability a kind needs: a seat whose PIDs the host cannot signal is found
 * out from its process list, at run time).
 */
export interface SeatControl {
  signalProcess?(p: SeatProcess & { pidNamespace?: 'host' | 'pod' }, signal: Signal): Promise<void>;
  restartContainer?(role: string): Promise<void>;
}

export interface ReferenceSpec {
  command: string[];
  port: number;
  copy: { from: string; to: string; container?: string }[];
  cpus: number;
  memoryMiB: number;
}

/** A running reference service, reachable from the harness only: the driver toolbox's service. */
export type ReferenceService = ToolboxService;

/**
 * Optional seat capability: start a reference service from the trusted toolbox image. Seat files
 * named in `copy` are read through the archive API (a missing one throws with fault candidate).
 */
export interface ReferenceStarter {
  startReference?(spec: ReferenceSpec): Promise<ReferenceService>;
}

/** A seat handle with every optional method a probe may use. */
export type CapableSeat = SeatHandle & ContainerInspector & SeatControl & ReferenceStarter;

/**
 * Each seat capability: the seat handle's method that provides it, and the error a check that
 * needs it gets on a seat handle without it.
 */
export const SEAT_CAPABILITIES = {
  /** The seat's own containers as the engine inspects them (the container probe's scope `seat`). */
  'inspect-containers': {
    method: 'inspectContainers',
    missing: () =>
      new DeploylabError({
        code: 'PROBE_SEAT_UNSUPPORTED',
        fault: 'bug',
        message: { zh: '考位接口不能查看考位容器', en: 'the seat handle cannot inspect seat containers' },
      }),
  },
  /** Files of the seat container's image, read from the image rather than the running container. */
  'image-files': {
    method: 'imageFile',
    missing: () =>
      new DeploylabError({
        code: 'PROBE_NEEDS_ENGINE',
        fault: 'infrastructure',
        message: { zh: '无法读取考位镜像中的文件，不能核对可执行文件', en: "the seat's image files cannot be read: the executable cannot be compared" },
        hint: { zh: '在 Docker 驱动下运行评分', en: 'grade with the Docker driver' },
      }),
  },
  /** Restart a seat container through the engine. */
  restart: {
    method: 'restartContainer',
    missing: () =>
      new DeploylabError({
        code: 'PROBE_CANNOT_DISRUPT',
        fault: 'infrastructure',
        message: { zh: '评分程序无法制造故障：考位接口不支持重启容器', en: 'the harness cannot disrupt the seat: the seat handle cannot restart containers' },
        hint: { zh: '在容器引擎所在主机上以 root 运行评分程序', en: 'run the grader as root on the engine host' },
      }),
  },
  /** Run the grader's own tools in the trusted toolbox container. */
  toolbox: {
    method: 'runTrusted',
    missing: () =>
      new DeploylabError({
        code: 'PROBE_NEEDS_TOOLBOX',
        fault: 'infrastructure',
        message: {
          zh: '加载模型或与参考模型比对的检查需要可信工具箱容器，当前不可用',
          en: 'a check that loads the model or compares it with the reference needs the trusted toolbox container, which is not available',
        },
      }),
  },
  /** Start a reference service from the trusted toolbox image (the load probe's `reference`). */
  reference: {
    method: 'startReference',
    missing: () =>
      new DeploylabError({
        code: 'PROBE_NEEDS_REFERENCE',
        fault: 'infrastructure',
        message: {
          zh: '该检查需要在同机同批次测量参考配置，但评分程序没有可用的可信工具箱来启动它',
          en: 'this check measures a reference configuration on the same host in the same run, but the harness has no trusted toolbox to start it',
        },
      }),
  },
} as const satisfies Record<string, { method: keyof CapableSeat; missing: () => DeploylabError }>;

export type SeatCapability = keyof typeof SEAT_CAPABILITIES;
export const SEAT_CAPABILITY_NAMES = Object.keys(SEAT_CAPABILITIES) as SeatCapability[];

type MethodOf<C extends SeatCapability> = NonNullable<CapableSeat[(typeof SEAT_CAPABILITIES)[C]['method']]>;

/** The first of `needs` the seat handle lacks, as the error its check reports; undefined when it has them all. */
export function missingCapability(seat: SeatHandle, needs: readonly SeatCapability[]): DeploylabError | undefined {
  for (const c of needs) {
    const spec = SEAT_CAPABILITIES[c];
    if (typeof (seat as CapableSeat)[spec.method] !== 'function') return spec.missing();
  }
  return undefined;
}

/**
 * The seat handle's method for `c`, bound to it. Run through its kind, a probe only gets here with
 * the capability checked; run on its own (a unit test, one probe inside another) the seat may
 * lack it, and this throws the same error the check would have given.
 */
export function capability<C extends SeatCapability>(seat: SeatHandle, c: C): MethodOf<C> {
  const m = (seat as CapableSeat)[SEAT_CAPABILITIES[c].method];
  if (typeof m !== 'function') throw SEAT_CAPABILITIES[c].missing();
  return (m as (...args: never[]) => unknown).bind(seat) as MethodOf<C>;
}
