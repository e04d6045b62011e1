import type { Readable, Writable } from 'node:stream';
import type { SandboxDriver, SeatRef } from '../sandbox/driver.js';

type Tty = { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

/**
 * Attach a local terminal (or any pair of streams) to a seat's TTY shell until the shell ends.
 * A real TTY is put in raw mode so keys like Ctrl-C reach the seat, and its size follows the window.
 * Returns the shell's exit code (null when it was cut off, e.g. by a freeze).
 */
export async function attachTerminal(
  driver: SandboxDriver,
  ref: SeatRef,
  io: { stdin: Readable & Tty; stdout: Writable & { columns?: number; rows?: number } },
  opts: { user?: 'candidate' | 'root' } = {},
): Promise<number | null> {
  const { stdin, stdout } = io;
  const size = (): { cols: number; rows: number } => ({ cols: stdout.columns ?? 80, rows: stdout.rows ?? 24 });
  const term = await driver.openTerminal(ref, { ...size(), ...(opts.user ? { user: opts.user } : {}) });
  const raw = Boolean(stdin.isTTY && stdin.setRawMode);
  if (raw) stdin.setRawMode!(true);
  const onInput = (chunk: Buffer): void => {
    term.stream.write(chunk);
  };
  const onOutput = (chunk: Buffer): void => {
    stdout.write(chunk);
  };
  const onResize = (): void => {
    const s = size();
    term.resize(s.cols, s.rows).catch(() => undefined);
  };
  stdin.on('data', onInput);
  term.stream.on('data', onOutput);
  stdout.on('resize', onResize);
  stdin.resume();
  try {
    return await term.done;
  } finally {
    stdin.off('data', onInput);
    term.stream.off('data', onOutput);
    stdout.off('resize', onResize);
    if (raw) stdin.setRawMode!(false);
    stdin.pause();
  }
}
