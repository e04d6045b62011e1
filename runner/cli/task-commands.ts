import type { Command } from 'commander';

/** `deploylab tasks ...` — filled in by the task module. */
export function registerTaskCommands(_program: Command): void {}
