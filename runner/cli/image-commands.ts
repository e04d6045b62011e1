import type { Command } from 'commander';

/** `deploylab images build|ls` — filled in by the images module. */
export function registerImageCommands(_program: Command): void {}
