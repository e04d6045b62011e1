import type { Command } from 'commander';
import { contextOf } from './context.js';
import { createLogger } from '../core/logger.js';
import { startServer } from '../server/http-server.js';

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('启动考点服务 (start the runner server: /healthz, /metrics)')
    .option('--host <host>', '监听地址 (listen address)', '127.0.0.1')
    .option('--port <port>', '端口 (port)', '8700')
    .action(async (opts: { host: string; port: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      await startServer({ host: opts.host, port: Number(opts.port), log: createLogger(ctx.config.logLevel) });
      // Keep running until signalled.
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
    });
}
