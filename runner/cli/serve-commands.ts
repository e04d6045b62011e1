import type { Command } from 'commander';
import { contextOf } from './context.js';
import { createLogger } from '../core/logger.js';
import { startServer } from '../server/http-server.js';
import { webAppFromConfig } from '../web/from-config.js';

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('启动考点服务：考生页面、浏览器终端、考官接口、/healthz、/metrics (start the runner server: candidate pages, browser terminals, examiner API, /healthz, /metrics)')
    .option('--host <host>', '监听地址 (listen address)', '127.0.0.1')
    .option('--port <port>', '端口 (port)', '8700')
    .option('--no-supervise', '不看管各场次的计时（改用 deploylab session supervise）(do not keep the rooms\' clocks; use `deploylab session supervise` instead)')
    .action(async (opts: { host: string; port: string; supervise: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const log = createLogger(ctx.config.logLevel);
      const app = webAppFromConfig(ctx.config, log, { supervise: opts.supervise });
      const { server } = await startServer({ host: opts.host, port: Number(opts.port), log, web: app.web });
      // Keep running until signalled, then close connections and the store.
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.close();
    });
}
