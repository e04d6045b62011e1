import type { Command } from 'commander';
import { sandboxDriverFor } from '../sandbox/backend.js';
import { sandboxesOf } from '../sessions/paper.js';
import { attachTerminal } from '../web/attach.js';
import { contextOf } from './context.js';

/** `deploylab seat shell SESSION SEAT [--task ID]`: an examiner's terminal into a seat, on this TTY. */
export function registerSeatCommands(program: Command): void {
  const seat = program.command('seat').description('考位操作（监考用）(seat operations for examiners)');
  seat
    .command('shell')
    .description('打开考位终端：默认为考生用户；--root 为考官的 root 终端，考位冻结后仍可用 (a terminal in a seat: the candidate user by default; --root is the examiners\' root shell, also on a frozen seat)')
    .argument('<session>', '场次 (session id)')
    .argument('<seat>', '考位 (seat id, or the sandbox name <seat>-<task>)')
    .option('--task <id>', '进入该试题的沙箱 (the sandbox of this task: one per task of the paper)')
    .option('--root', '以 root 进入（考官检查用）(as root, for examiners)')
    .action(async (session: string, seatId: string, o: { task?: string; root?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const driver = sandboxDriverFor(ctx.config);
      const ref = o.task ? sandboxesOf(session, seatId, [o.task])[0]!.ref : { session, seat: seatId };
      const code = await attachTerminal(driver, ref, { stdin: process.stdin, stdout: process.stdout }, { user: o.root ? 'root' : 'candidate' });
      process.exitCode = code ?? 1;
    });
}
