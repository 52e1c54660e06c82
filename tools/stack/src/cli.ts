// `mailpools stack up|down|status`: human-readable lines on stdout, errors on stderr, an exit code back.
import type { StackOptions } from './config.ts';
import { StackError } from './errors.ts';
import { type StackReport, stackDown, stackKafkaCredentials, stackStatus, stackUp } from './stack.ts';

const USAGE = `usage: mailpools stack <command>
  up               start Kafka, the schema registry, Redis and PostgreSQL on 127.0.0.1 (idempotent)
  down [--wipe]    stop what \`up\` started; --wipe also deletes the data
  status [--json]  show each part; exit code 0 when all are ready, 3 otherwise
  credentials      the environment that points a service at Kafka's SASL_SSL listener (SCRAM over TLS)`;

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_NOT_READY = 3;

function printReport(report: StackReport, log: (line: string) => void): void {
  for (const part of report.parts) {
    const state = part.external ? 'external' : part.running ? 'running' : 'stopped';
    const pid = part.pid === null ? '-' : `pid ${part.pid}`;
    const health = part.ready ? 'ready' : part.running || part.external ? 'NOT ready' : '-';
    log(`${part.part.padEnd(9)} ${state.padEnd(9)} ${pid.padEnd(11)} ${health.padEnd(10)} ${part.endpoint}`);
  }
}

function printError(error: unknown): void {
  const stackError =
    error instanceof StackError
      ? error
      : new StackError(
          'MAILPOOLS_ERR_STACK_INTERNAL',
          error instanceof Error ? error.message : String(error),
          {
            hint: 'This is a bug in @mailpools/stack; the stack trace follows.',
          },
        );
  console.error(`error ${stackError.code}: ${stackError.message}`);
  console.error(`hint: ${stackError.hint}`);
  if (stackError.logTail.length > 0) {
    console.error(stackError.logPath ? `last lines of ${stackError.logPath}:` : 'last lines of output:');
    for (const line of stackError.logTail) console.error(`  | ${line}`);
  }
  if (stackError.logPath) console.error(`log: ${stackError.logPath}`);
  if (!(error instanceof StackError) && error instanceof Error && error.stack) console.error(error.stack);
}

export async function runStackCli(argv: string[], options: StackOptions = {}): Promise<number> {
  const log = options.log ?? ((line: string) => console.log(line));
  const [command, ...flags] = argv;
  const allowed: Record<string, string[]> = { up: [], down: ['--wipe'], status: ['--json'], credentials: [] };
  try {
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      log(USAGE);
      return command === undefined ? EXIT_ERROR : EXIT_OK;
    }
    const unknown =
      allowed[command] === undefined ? command : flags.find((flag) => !allowed[command]?.includes(flag));
    if (unknown !== undefined) {
      throw new StackError(
        'MAILPOOLS_ERR_STACK_USAGE',
        `Unknown ${unknown === command ? 'command' : 'option'} "${unknown}".`,
        {
          hint: USAGE,
        },
      );
    }
    if (command === 'up') {
      await stackUp({ ...options, log });
      return EXIT_OK;
    }
    if (command === 'down') {
      await stackDown({ ...options, log, wipe: flags.includes('--wipe') });
      return EXIT_OK;
    }
    if (command === 'credentials') {
      const kafka = stackKafkaCredentials(options);
      log(`KAFKA_BROKERS=${kafka.brokers.join(',')}`);
      log(`KAFKA_SECURITY_PROTOCOL=${kafka.protocol}`);
      log(`KAFKA_SASL_MECHANISM=${kafka.mechanism}`);
      log(`KAFKA_SASL_USERNAME=${kafka.username}`);
      log(`KAFKA_SASL_PASSWORD=${kafka.password}`);
      log(`NODE_EXTRA_CA_CERTS=${kafka.caFile}`);
      return EXIT_OK;
    }
    const report = await stackStatus({ ...options, log });
    if (flags.includes('--json')) log(JSON.stringify(report, null, 2));
    else printReport(report, log);
    return report.ready ? EXIT_OK : EXIT_NOT_READY;
  } catch (error) {
    printError(error);
    return EXIT_ERROR;
  }
}
