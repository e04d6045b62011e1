import type { Command } from 'commander';
import { DockerDriver } from '../sandbox/docker-driver.js';
import { attachTerminal } from '../web/attach.js';
import { contextOf } from './context.js';

/** `deploylab seat shell SESSION SEAT`: an examiner's terminal into a seat, on this TTY. */
export function registerSeatCommands(program: Command): void {
  const seat = program.command('seat').description('考位操作（监考用）(seat operations for examiners)');
  seat
    .command('shell')
    .description('以考生用户打开考位终端 (open a terminal in a seat as the candidate user)')
    .argument('<session>', '场次 (session id)')
    .argument('<seat>', '考位 (seat id)')
    .action(async (session: string, seatId: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const driver = new DockerDriver({ host: ctx.config.docker.host });
      const code = await attachTerminal(driver, { session, seat: seatId }, { stdin: process.stdin, stdout: process.stdout });
      process.exitCode = code ?? 1;
    });
}
