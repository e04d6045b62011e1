import { pino, type Logger } from 'pino';

/** JSON logs on stderr; stdout is reserved for machine-readable results. */
export function createLogger(level: string = process.env.DEPLOYLAB_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { app: 'deploylab' } }, pino.destination({ fd: 2, sync: true }));
}

export const log: Logger = createLogger();
export type { Logger };
