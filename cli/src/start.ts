// `mailpools start` (npm start): the local stack when KAFKA_BROKERS is unset, the topics and
// schemas, then every service in services/ as its own process, until Ctrl-C; then a clean stop
// of the services and of the stack this command started.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  allTopics,
  createLogger,
  freePort,
  loadRuntimeConfig,
  logFormat,
  MailpoolsError,
  SERVICE_NODE_FLAGS,
  STAGES,
  stopChildProcess,
} from '@mailpools/core';
import { RECORD_NAMES } from '@mailpools/schemas';
import { servicesFile, useLocalStack } from '@mailpools/stack';
import { createEventProducer } from '@mailpools/stream';
import { DEV_MTA, type DevMta, prepareDevMta } from './dev-mta.ts';

const SERVICES_DIR = fileURLToPath(new URL('../../services/', import.meta.url));

/** Services that exist, the pipeline's stages first and in order. */
export function discoverServices(dir = SERVICES_DIR): string[] {
  const present = existsSync(dir)
    ? readdirSync(dir).filter((name) => existsSync(`${dir}/${name}/src/main.ts`))
    : [];
  const order = STAGES.map((s) => s.service);
  return present.sort(
    (a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
}

const ESCAPE = String.fromCharCode(27);

/** A log line of ours: JSON, or pino-pretty's, which starts with its time (coloured or not). */
function isLogLine(line: string): boolean {
  return line.startsWith('{') || line.startsWith(`${ESCAPE}[`) || /^\[\d\d:/.test(line);
}

/**
 * A service's output, line by line: its log lines as they are (each names its service, JSON or
 * pretty), anything else it prints (a crash's stack trace) prefixed with the service's name.
 */
function pipeLines(child: ChildProcess, name: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) process.stdout.write(isLogLine(line) ? `${line}\n` : `${name}| ${line}\n`);
    });
  }
}

/** `mailpools start [--json-logs]`: the log format for the services, from ours. */
function serviceLogEnv(argv: readonly string[]): Record<string, string> {
  if (argv.includes('--json-logs')) return { LOG_FORMAT: 'json' };
  const format = logFormat();
  // The services write to our pipe, not to the terminal: tell them what the terminal takes.
  return format === 'pretty' && process.stdout.isTTY && !process.env.NO_COLOR
    ? { LOG_FORMAT: 'pretty', FORCE_COLOR: '1' }
    : { LOG_FORMAT: format };
}

function usage(problem: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_USAGE', `mailpools start: ${problem}.`, {
    hint: 'Run `mailpools start [--json-logs] [--mta [--mta-port N]]` (docs/cli.md).',
  });
}

/** `--mta` and its port: Haraka in front of the pipeline, with the development profile. */
function mtaOption(argv: readonly string[]): { port: number } | undefined {
  let mta = false;
  let port = 2525;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json-logs') continue;
    if (arg === '--mta') mta = true;
    else if (arg === '--mta-port') {
      port = Number(argv[++i]);
      if (!Number.isInteger(port) || port < 1 || port > 65_535)
        throw usage(`--mta-port must be a port number, got "${argv[i]}"`);
    } else throw usage(`unknown option "${arg}"`);
  }
  if (!mta && argv.includes('--mta-port')) throw usage('--mta-port goes with --mta');
  return mta ? { port } : undefined;
}

export async function runStart(argv: readonly string[] = []): Promise<number> {
  const mta = mtaOption(argv);
  const logEnv = serviceLogEnv(argv);
  const log = createLogger(
    'mailpools',
    process.env.LOG_LEVEL ?? 'info',
    logEnv.LOG_FORMAT as 'json' | 'pretty',
  );
  // Leave a stack that was already running as it was.
  const releaseStack = await useLocalStack();
  const config = loadRuntimeConfig();
  const producer = await createEventProducer(config);
  try {
    await producer.ensureTopics(allTopics(config.namespace, config.partitions));
    for (const name of RECORD_NAMES) await producer.serde.register(name);
  } finally {
    await producer.close();
  }
  log.info(
    { brokers: config.kafkaBrokers, registry: config.schemaRegistryUrl },
    'topics and schemas in place',
  );

  let devMta: DevMta | undefined;
  if (mta) {
    devMta = await prepareDevMta(
      `${dirname(servicesFile(config.namespace))}/${config.namespace || 'default.'}dev-mta`,
      log,
      mta.port,
    );
    log.info(devMta.env, 'MTA profile: the development policy and DNS server');
  }
  const serviceEnv = { ...process.env, ...logEnv, ...devMta?.env };
  const services = discoverServices();
  // MAILPOOLS_HTTP_PORT is the first service's port and the others follow it in pipeline order;
  // 0 gives each a free port, so two namespaced pipelines can run side by side.
  const ports: number[] = [];
  for (const [index] of services.entries())
    ports.push(config.httpPort === 0 ? await freePort() : config.httpPort + index);
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  // Signal handlers do not keep Node running; this does, until Ctrl-C.
  const keepAlive = setInterval(() => undefined, 60_000);
  const stopped = new Promise<number>((resolve) => {
    const shutdown = async (reason: string, code: number) => {
      if (stopping) return;
      stopping = true;
      clearInterval(keepAlive);
      log.info({ reason }, 'stopping services');
      await devMta?.stop();
      await Promise.all([...children.values()].map((child) => stopChildProcess(child)));
      rmSync(servicesFile(config.namespace), { force: true });
      await releaseStack();
      resolve(code);
    };
    process.once('SIGINT', () => void shutdown('SIGINT', 0));
    process.once('SIGTERM', () => void shutdown('SIGTERM', 0));
    for (const [index, name] of services.entries()) {
      const child = spawn(
        process.execPath,
        [
          ...SERVICE_NODE_FLAGS,
          fileURLToPath(new URL(`../../services/${name}/src/main.ts`, import.meta.url)),
        ],
        {
          env: { ...serviceEnv, MAILPOOLS_HTTP_PORT: String(ports[index]) },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      pipeLines(child, name);
      child.once('exit', (code, signal) => {
        if (!stopping) void shutdown(`${name} exited (${signal ?? code})`, 1);
      });
      children.set(name, child);
      log.info({ service: name, metrics: `http://127.0.0.1:${ports[index]}/metrics` }, 'service started');
    }
    // For `mailpools top`: which services run, and where their metrics are.
    const file = servicesFile(config.namespace);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(
      file,
      JSON.stringify(
        services.map((name, index) => ({
          service: name,
          metrics: `http://127.0.0.1:${ports[index]}/metrics`,
        })),
      ),
    );
    if (services.length === 0)
      log.info('no services in services/ yet; the stack is up, feed events with `npx mailpools feed`');
    if (devMta)
      devMta.startHaraka(logEnv).then(
        (where) =>
          log.info(
            {
              ...where,
              user: DEV_MTA.user,
              password: DEV_MTA.password,
              try: `curl smtp://${where.smtp} --user ${DEV_MTA.user}:${DEV_MTA.password} --mail-from ${DEV_MTA.user} --mail-rcpt friend@example.test --upload-file message.eml`,
            },
            'Haraka takes submissions; every delivery is logged as it arrives',
          ),
        (error: Error) => void shutdown(`Haraka did not start: ${error.message}`, 1),
      );
    log.info('running; Ctrl-C stops everything');
  });
  return stopped;
}
