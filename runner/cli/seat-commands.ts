import type { Command } from 'commander';
import { DockerDriver } from '../sandbox/docker-driver.js';
import { sandboxesOf } from '../sessions/paper.js';
import { attachTerminal } from '../web/attach.js';
import { contextOf } from './context.js';

/** `deploylab seat shell SESSION SEAT [--task ID]`: an examiner's terminal into a seat, on this TTY. */
export function registerSeatCommands(program: Command): void {
  const seat = program.command('seat').description('考位操作（监考用）(seat operations for examiners)');
  seat
    .command('shell')
    .description('以考生用户打开考位终端 (open a terminal in a seat as the candidate user)')
    .argument('<session>', '场次 (session id)')
    .argument('<seat>', '考位 (seat id, or the sandbox name <seat>-<task>)')
    .option('--task <id>', '进入该试题的沙箱 (the sandbox of this task: one per task of the paper)')
    .action(async (session: string, seatId: string, o: { task?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const driver = new DockerDriver({ host: ctx.config.docker.host });
      const ref = o.task ? sandboxesOf(session, seatId, [o.task])[0]!.ref : { session, seat: seatId };
      const code = await attachTerminal(driver, ref, { stdin: process.stdin, stdout: process.stdout });
      process.exitCode = code ?? 1;
    });
}
