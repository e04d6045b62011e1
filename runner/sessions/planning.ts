import { execFileSync } from 'node:child_process';
import { DeploylabError, type Bilingual } from '../core/errors.js';
import type { DockerInSeatImages } from '../grading/task-runner.js';
import { distinctCodes, hashCodeSync, newCodeKdf } from '../store/access-code.js';
import { nowIso } from '../store/db.js';
import { DEFAULT_TASKS_ROOT } from '../tasks/loader.js';
import { checkCapacity, checkGpuFit, roomDemand } from './capacity.js';
import type { SeatCodes, SeatRow, SessionRow, SessionSpec } from './ledger-store.js';
import { randomSeed } from '../tasks/bank.js';
import { drawExamPaper, loadExamPaper, type DrawnExamPaper, type LoadedExamPaper } from './paper.js';
import { pinTasks } from './pinned-tasks.js';
import { sessionDir, type RoomContext } from './room-context.js';
import type { RosterEntry } from './roster.js';
import { writeSeatCards } from './seat-cards.js';

export interface OpenOptions {
  /** A fixed paper (tasks/papers/<id>.yaml), or `draw` from a bank: exactly one of them. */
  paperId?: string;
  /** A paper drawn from tasks/banks/<bank>.yaml; the seed is random unless given (and recorded). */
  draw?: { bank: string; seed?: number };
  room: string;
  roster: RosterEntry[];
  images: { workspaceCpu: string; toolbox: string | null; dockerInSeat?: DockerInSeatImages };
  baseUrl: string;
  id?: string;
  durationMinutes?: number;
  tasksRoot?: string;
}

export interface Opened {
  session: SessionRow;
  seats: SeatRow[];
  codes: SeatCodes;
  cards: { html: string; csv: string };
  warnings: Bilingual[];
}

export function sessionIdFor(room: string, at: Date = new Date()): string {
  const slug = room.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 20) || 'room';
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${slug}-${at.getFullYear()}${p(at.getMonth() + 1)}${p(at.getDate())}-${p(at.getHours())}${p(at.getMinutes())}${p(at.getSeconds())}`;
}

/** GPU memory used per GPU in MiB, or null where nvidia-smi is absent. */
export function gpuMemoryUsedMiB(): number[] | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 15_000 });
    return out.split('\n').filter((l) => l.trim()).map((l) => Number(l.trim()));
  } catch {
    return null;
  }
}

/**
 * Plan a session: paper checked and pinned (its tasks copied and hashed), seats and the hashes of
 * their one-time codes stored, seat cards written. No engine work yet. The codes are in the result
 * and on the cards only: the store cannot give them back (a lost card: `reissueCodes`).
 */
export function openSession(ctx: RoomContext, opts: OpenOptions): Opened {
  const tasksRoot = opts.tasksRoot ?? DEFAULT_TASKS_ROOT;
  if ((opts.paperId === undefined) === (opts.draw === undefined)) {
    throw new DeploylabError({
      code: 'BAD_FLAG',
      fault: 'config',
      message: { zh: '开设场次须指定试卷或题库之一（--paper 或 --bank）', en: 'a session opens with either a paper or a bank (--paper or --bank), exactly one' },
    });
  }
  const drawn = opts.draw ? drawExamPaper(opts.draw.bank, opts.draw.seed ?? randomSeed(), tasksRoot) : undefined;
  try {
    return openWithPaper(ctx, opts, tasksRoot, drawn ? drawn.exam : loadExamPaper(opts.paperId!, tasksRoot), drawn);
  } finally {
    drawn?.dispose();
  }
}

function openWithPaper(ctx: RoomContext, opts: OpenOptions, tasksRoot: string, p: LoadedExamPaper, drawn: DrawnExamPaper | undefined): Opened {
  const id = opts.id ?? sessionIdFor(opts.room);
  if (!/^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$/.test(id)) {
    throw new DeploylabError({ code: 'SESSION_ID_INVALID', fault: 'config', message: { zh: `场次编号无效：${id}`, en: `invalid session id: ${id}` }, hint: { zh: '小写字母、数字和 -，最多 30 个字符', en: 'lower-case letters, digits and "-", at most 30 characters' } });
  }
  // Checked before the pinned copy is written into the session's folder.
  if (ctx.ledger.exists(id)) {
    throw new DeploylabError({ code: 'SESSION_EXISTS', fault: 'config', message: { zh: `场次 ${id} 已存在`, en: `session ${id} already exists` } });
  }
  // Before the codes are hashed (about 50 ms each) and before any seat is made.
  checkGpuFit(p.tasks, ctx.hostGpu);
  const warnings = checkCapacity(roomDemand(opts.roster.length, p.tasks), { sandboxesPerSession: ctx.driver.sandboxesPerSession });
  const spec: SessionSpec = {
    paperId: p.paper.id,
    tasks: p.paper.tasks,
    tasksRoot,
    pinned: pinTasks(p, tasksRoot, sessionDir(ctx, id), drawn?.file),
    workspaceImage: opts.images.workspaceCpu,
    toolboxImage: opts.images.toolbox,
    dockerInSeat: opts.images.dockerInSeat ?? null,
    baseUrl: opts.baseUrl,
    gpuBaselineMiB: gpuMemoryUsedMiB(),
    draw: drawn?.draw ?? null,
  };
  const durationMs = (opts.durationMinutes ?? p.paper.durationMinutes) * 60_000;
  const width = String(opts.roster.length).length < 2 ? 2 : String(opts.roster.length).length;
  const seatIds = opts.roster.map((_, i) => `s${String(i + 1).padStart(width, '0')}`);
  const kdf = newCodeKdf();
  const plain = distinctCodes(opts.roster.length);
  // Hashed before the transaction: ~50 ms a code must not hold the store's write lock.
  const hashes = plain.map((c) => hashCodeSync(c, kdf));
  ctx.ledger.createSession(
    { id, paper_id: p.paper.id, level: p.paper.level, room: opts.room, duration_ms: durationMs, practice: p.paper.practice ? 1 : 0, spec: JSON.stringify(spec), code_kdf: JSON.stringify(kdf) },
    opts.roster.map((c, i) => ({ seatId: seatIds[i]!, candidateNo: c.candidateNo, name: c.name, idNumber: c.idNumber, codeHash: hashes[i]! })),
  );
  const codes: SeatCodes = Object.fromEntries(seatIds.map((seat, i) => [seat, plain[i]!]));
  const cards = writeCards(ctx, id, codes);
  return { session: ctx.ledger.session(id), seats: ctx.ledger.seats(id), codes, cards, warnings };
}

/**
 * New one-time codes (a lost card, a cleared browser, cards to reprint): the old code of each
 * seat stops working at once and the seat's logged-in browsers are logged out. One seat, or
 * every seat whose code has not been used yet (candidates already working are left alone).
 * New cards are written; the codes are in the result and on the cards only.
 */
export function reissueCodes(ctx: RoomContext, id: string, opts: { seat?: string } = {}): { codes: SeatCodes; cards: { html: string; csv: string } } {
  const targets = opts.seat ? [ctx.ledger.seat(id, opts.seat)] : ctx.ledger.seats(id).filter((x) => x.code_redeemed_at === null);
  const live = targets.filter((x) => x.state !== 'removed');
  if (live.length === 0) {
    throw new DeploylabError({
      code: 'SESSION_NO_CODES_TO_REISSUE',
      fault: 'config',
      message: opts.seat
        ? { zh: `考位 ${opts.seat} 已移除，不能再登录`, en: `seat ${opts.seat} is removed; nobody can log in to it` }
        : { zh: `场次 ${id} 没有尚未使用登录码的考位`, en: `session ${id} has no seat whose code is still unused` },
      hint: { zh: '为某个考位重发：加 --seat', en: 'to reissue a used code, name the seat with --seat' },
    });
  }
  const codes = ctx.ledger.storeNewCodes(id, live, { onlyUnused: !opts.seat });
  const stamp = nowIso().replace(/[:.]/g, '-');
  // Every unused code replaced: the new cards take the usual name. One seat: a card of its own beside the old ones.
  const cards = writeCards(ctx, id, codes, opts.seat ? `seat-cards-${opts.seat}-${stamp}` : 'seat-cards');
  const n = Object.keys(codes).length;
  ctx.progress({ zh: `已为 ${n} 个考位重发登录码，旧码作废`, en: `new access codes for ${n} seat(s); the old ones no longer work` });
  return { codes, cards };
}

export function writeCards(ctx: RoomContext, id: string, codes: SeatCodes, name = 'seat-cards'): { html: string; csv: string } {
  return writeSeatCards(sessionDir(ctx, id), ctx.ledger.session(id), ctx.ledger.spec(id).baseUrl, ctx.ledger.seats(id), codes, name);
}
