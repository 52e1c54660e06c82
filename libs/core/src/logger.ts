import { type Logger, pino } from 'pino';

export type { Logger };

/** JSON logs, one line per event worth reading; the service name is the logger's name. */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime });
}
