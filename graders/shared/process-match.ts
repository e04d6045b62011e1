/**
 * Which of the seat's processes a check means: by the executable's name and the command line as
 * the host's process table shows them. Selecting proves nothing about a process (see
 * process-identity.ts).
 */
import type { z } from 'zod';
import type { ProcessMatchSchema } from '../params.js';
import type { SeatProcess } from '../probe.js';

export type ProcessMatch = z.output<typeof ProcessMatchSchema>;

/** argv from a host `ps` args column: whitespace-separated (quoting is not recoverable there). */
export function argvOf(command: string): string[] {
  return command.trim().split(/\s+/).filter(Boolean);
}

/** Executable basename of argv[0] (`sh -c 'exec llama-server …'` shows as llama-server once exec'd). */
export function exeOf(argv: readonly string[]): string {
  const base = (s: string): string => s.slice(s.lastIndexOf('/') + 1);
  return base(argv[0] ?? '');
}

export function matches(p: SeatProcess, m: ProcessMatch): boolean {
  const argv = argvOf(p.command);
  if (m.exe !== undefined && exeOf(argv) !== m.exe) return false;
  if (m.commandMatches !== undefined && !new RegExp(m.commandMatches).test(p.command)) return false;
  return true;
}
