import type { WebSocket, RawData } from 'ws';
import { z } from 'zod';
import type { Logger } from '../core/logger.js';
import { asDeploylabError, type Bilingual } from '../core/errors.js';
import { metrics } from '../core/metrics.js';
import type { SandboxDriver, SeatRef, TerminalSession } from '../sandbox/driver.js';
import { TEXT } from './pages.js';

/**
 * Browser ↔ seat terminal. Server → browser: binary frames are raw TTY output; text frames are
 * JSON status ({t:'open'} or {t:'closed', reason, message}). Browser → server: JSON text frames
 * {t:'in', d} (keystrokes) and {t:'resize', cols, rows}.
 */
const ClientMessage = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('in'), d: z.string().max(65536) }),
  z.strictObject({ t: z.literal('resize'), cols: z.number().int().min(2).max(1000), rows: z.number().int().min(2).max(500) }),
]);

/** WebSocket close codes the page understands. */
export const CLOSE = { frozen: 4001, exited: 4002, error: 4003, paused: 4004, loggedOut: 4005, tooMany: 4006 } as const;
export type CloseReason = keyof typeof CLOSE;

/** Browser terminals open at once per seat sandbox, by default (several tabs, a few reloads in flight). */
export const TERMINALS_PER_SEAT = 8;

export function tooManyTerminals(max: number): Bilingual {
  return {
    zh: `本考位已打开 ${max} 个终端，请先关闭其他标签页中的终端再刷新。`,
    en: `This seat already has ${max} terminals open; close the terminal in another tab, then reload.`,
  };
}

const EXITED: Bilingual = { zh: '终端会话已结束，刷新页面可重新打开。', en: 'The terminal session ended; reload the page to open a new one.' };

/** Output waiting in the socket beyond this pauses the shell's stream (a slow browser must not grow memory). */
const HIGH_WATER = 1 << 20;

export interface BridgeOptions {
  driver: SandboxDriver;
  ref: SeatRef;
  log: Logger;
  cols?: number;
  rows?: number;
  /** How often an open terminal re-checks whether access is still open (a freeze or pause from another process). */
  freezeCheckMs: number;
  /** Why candidate access is closed now (session state, the seat's freeze marker), or null while open. */
  closedReason: () => Promise<ClosedReason | null>;
}

function sendClosed(ws: WebSocket, reason: CloseReason, message: Bilingual): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(JSON.stringify({ t: 'closed', reason, message }));
  ws.close(CLOSE[reason], reason);
}

async function reasonOf(opts: BridgeOptions): Promise<ClosedReason | null> {
  try {
    return await opts.closedReason();
  } catch {
    return null; // cannot tell right now; the next check tries again
  }
}

/** Why candidate access ended: a freeze, a pause, or the login was revoked (logout, code reissued). */
export type ClosedReason = 'frozen' | 'paused' | 'loggedOut';
const NOTICE = { frozen: TEXT.frozen, paused: TEXT.paused, loggedOut: TEXT.loggedOut } as const;

export async function bridgeTerminal(ws: WebSocket, opts: BridgeOptions): Promise<void> {
  const { driver, ref, log } = opts;
  // Keystrokes sent while the exec is still being created are kept, not lost.
  const early: z.infer<typeof ClientMessage>[] = [];
  let deliver: (m: z.infer<typeof ClientMessage>) => void = (m) => {
    if (early.length < 256) early.push(m);
  };
  ws.on('message', (data: RawData, isBinary: boolean) => {
    if (isBinary) return;
    let parsed: z.infer<typeof ClientMessage>;
    try {
      parsed = ClientMessage.parse(JSON.parse(data.toString()));
    } catch {
      return; // a malformed frame from the page is ignored, not fatal
    }
    deliver(parsed);
  });
  const before = await reasonOf(opts);
  if (before) {
    sendClosed(ws, before, NOTICE[before]);
    return;
  }
  let term: TerminalSession;
  try {
    term = await driver.openTerminal(ref, { cols: opts.cols ?? 80, rows: opts.rows ?? 24 });
  } catch (e) {
    const err = asDeploylabError(e);
    if (err.code === 'SANDBOX_SEAT_FROZEN') sendClosed(ws, 'frozen', TEXT.frozen);
    else {
      log.error({ err: e, ...ref }, 'terminal open failed');
      sendClosed(ws, 'error', { zh: `无法打开终端（${err.code}），请联系监考老师。`, en: `Cannot open the terminal (${err.code}); ask the examiner.` });
    }
    return;
  }
  if (ws.readyState !== ws.OPEN) {
    await term.hangUp().catch(() => undefined);
    return;
  }
  metrics.webTerminalsOpen.inc();
  log.info(ref, 'browser terminal opened');
  ws.send(JSON.stringify({ t: 'open' }));

  const { stream } = term;
  stream.on('data', (chunk: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(chunk, { binary: true }, () => {
      if (stream.isPaused() && ws.bufferedAmount < HIGH_WATER / 2) stream.resume();
    });
    if (ws.bufferedAmount > HIGH_WATER) stream.pause();
  });
  stream.on('error', (err) => log.warn({ err, ...ref }, 'terminal stream error'));

  deliver = (m) => {
    if (m.t === 'in') stream.write(m.d);
    else term.resize(m.cols, m.rows).catch((err: unknown) => log.debug({ err, ...ref }, 'resize failed'));
  };
  for (const m of early.splice(0)) deliver(m);

  // A freeze or pause only detaches (what the candidate started runs on for the graders); a closed
  // page or a revoked login hangs the shell up, as closing a real terminal does, so reloads do
  // not pile up shells until the seat's pids limit.
  // Decided once: a page closed after a freeze detached its terminal must not hang the shell up.
  let ended = false;
  let decided = false;
  const end = (reason: ClosedReason | null): void => {
    if (ended || decided) return;
    decided = true;
    if (reason === 'frozen' || reason === 'paused') term.close();
    else void term.hangUp().catch((err: unknown) => log.warn({ err, ...ref }, 'terminal hang-up failed'));
  };
  const check = setInterval(() => {
    void reasonOf(opts).then((reason) => {
      if (reason) end(reason);
    });
  }, opts.freezeCheckMs);
  check.unref();

  ws.on('close', () => end(null));

  await term.done.then(
    () => undefined,
    () => undefined,
  );
  ended = true;
  clearInterval(check);
  metrics.webTerminalsOpen.dec();
  const reason = await reasonOf(opts);
  log.info({ ...ref, reason }, 'browser terminal closed');
  if (reason) sendClosed(ws, reason, NOTICE[reason]);
  else sendClosed(ws, 'exited', EXITED);
}
