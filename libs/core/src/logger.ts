// Logs: one line per event worth reading. JSON for machines (a collector, `jq`); readable,
// coloured lines for a person at a terminal, through pino-pretty. LOG_FORMAT chooses: `json`,
// `pretty`, or `auto` (the default: pretty when stdout is a terminal, JSON otherwise).
// `mailpools start` sets it for the services it runs, whose stdout is its pipe.
import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

/** The format LOG_FORMAT asks for; `auto` (or unset) looks at whether stdout is a terminal. */
export function logFormat(env: Readonly<Record<string, string | undefined>> = process.env): LogFormat {
  const asked = (env.LOG_FORMAT ?? '').trim().toLowerCase();
  if (asked === 'json' || asked === 'pretty') return asked;
  return process.stdout.isTTY ? 'pretty' : 'json';
}

export function createLogger(
  name: string,
  level = process.env.LOG_LEVEL ?? 'info',
  format: LogFormat = logFormat(),
): Logger {
  const options = { name, level, base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === 'json') return pino(options);
  // Synchronous, in the process: a line is on the screen when the call returns, also at exit.
  return pino(
    options,
    // Colour when the output is a terminal (or FORCE_COLOR says so, as `mailpools start` does
    // for the services it pipes to one); never with NO_COLOR.
    pretty({
      sync: true,
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,service,name',
      messageFormat: '{name}: {msg}',
    }),
  );
}

/** An address fit for logs and alerts: the domain and the local part's first letter. */
export function maskAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return at <= 0 ? '***' : `${address[0]}***${address.slice(at)}`;
}
