import type { Command } from 'commander';

/** `deploylab host check|prepare` — filled in by the host module. */
export function registerHostCommands(_program: Command): void {}
