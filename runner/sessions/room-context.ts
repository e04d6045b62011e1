import type { HostFree } from './disk-watch.js';
import type { GpuFacts } from '../host/types.js';
import { join } from 'node:path';
import type { Bilingual } from '../core/errors.js';
import type { SandboxDriver } from '../sandbox/driver.js';
import type { DiskPolicy } from './disk-watch.js';
import type { Ledger } from './ledger-store.js';
import { sandboxesOf, type LoadedExamPaper, type SeatSandbox } from './paper.js';
import { loadPinnedPaper } from './pinned-tasks.js';

export type Progress = (line: Bilingual) => void;

/**
 * What every phase of the exam's lifecycle works with: the ledger, the sandbox driver and the
 * room's clocks. Built once by the SessionService facade and handed to the phase modules
 * (provisioning, room-clock, room-disk, grading-run, reports, archive, reset).
 */
export interface RoomContext {
  readonly ledger: Ledger;
  readonly driver: SandboxDriver;
  readonly dataDir: string;
  readonly progress: Progress;
  readonly now: () => number;
  /** Monotonic milliseconds: how wall-clock jumps are noticed. */
  readonly monotonic: () => number;
  readonly disk: DiskPolicy;
  /** Free bytes and inodes on the host where seats and the store live; each null where it cannot be measured. */
  readonly hostFree: () => Promise<HostFree>;
  /** The host's GPUs (nvidia-smi), asked when a paper needs GPUs: can it hold the room? */
  readonly hostGpu: () => GpuFacts;
}

export const sessionDir = (ctx: Pick<RoomContext, 'dataDir'>, id: string): string => join(ctx.dataDir, 'sessions', id);

/** The sandboxes (one per task) of a candidate's seat. */
export const seatSandboxes = (ctx: RoomContext, id: string, seatId: string): SeatSandbox[] => sandboxesOf(id, seatId, ctx.ledger.spec(id).tasks);

/** The paper and tasks the session examines: the copy pinned when it opened. */
export const examinedPaper = (ctx: RoomContext, id: string): LoadedExamPaper => loadPinnedPaper(ctx.ledger.spec(id), sessionDir(ctx, id), id);
