import type { Command } from 'commander';

/** `deploylab sandbox ...` — filled in by the sandbox module. */
export function registerSandboxCommands(_program: Command): void {}
