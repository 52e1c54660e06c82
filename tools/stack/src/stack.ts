// up / down / status over the four parts.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  endpointsOf,
  HOST,
  resolveConfig,
  type StackConfig,
  type StackEndpoints,
  type StackOptions,
} from './config.ts';
import { StackError } from './errors.ts';
import {
  fetchKafka,
  KAFKA_READY_TIMEOUT_MS,
  kafkaEndpoint,
  kafkaFormatted,
  kafkaLogPath,
  kafkaReady,
  kafkaSaslCredentials,
  startKafka,
  wipeKafkaData,
} from './kafka.ts';
import {
  checkExternalPostgres,
  POSTGRES_READY_TIMEOUT_MS,
  postgresLogPath,
  postgresReady,
  redactedDatabaseUrl,
  startPostgres,
} from './postgres.ts';
import {
  JAVA_INSTALL_HINT,
  type PartName,
  requireFreePort,
  requireTool,
  stopProcess,
  type TaggedProcess,
  taggedProcesses,
  waitReady,
} from './process.ts';
import {
  checkExternalRedis,
  REDIS_READY_TIMEOUT_MS,
  redactedRedisUrl,
  redisLogPath,
  redisReady,
  startRedis,
} from './redis.ts';
import {
  fetchRegistry,
  REGISTRY_READY_TIMEOUT_MS,
  registryEndpoint,
  registryLogPath,
  registryReady,
  startRegistry,
} from './registry.ts';

export type { PartName } from './process.ts';

export interface PartReport {
  part: PartName;
  /** A process of this stack is alive (for an external Redis or PostgreSQL: it answered). */
  running: boolean;
  pid: number | null;
  endpoint: string;
  ready: boolean;
  /** Redis from REDIS_URL, PostgreSQL from DATABASE_URL: not started or stopped by the stack. */
  external: boolean;
  logPath: string | null;
}

export interface StackReport {
  ready: boolean;
  parts: PartReport[];
  endpoints: StackEndpoints;
}

export interface StackDownOptions extends StackOptions {
  /** Also delete the stack's data (Kafka's log dirs). Logs are kept. */
  wipe?: boolean;
}

export interface StackDownResult {
  /** What was stopped; `stackDir` is the stack a process belonged to (another one's for an orphan). */
  stopped: { part: PartName; pid: number; stackDir: string }[];
  wiped: boolean;
}

export function stackEndpoints(options: StackOptions = {}): StackEndpoints {
  return endpointsOf(resolveConfig(options));
}

interface Part {
  name: PartName;
  endpoint: string;
  /** Ports it listens on, with the variable that moves each. */
  ports: { port: number; envVar: string; label: string }[];
  logPath: string;
  timeoutMs: number;
  probe: () => Promise<boolean>;
  start: () => Promise<number>;
  /** Set when the part is someone else's (REDIS_URL, DATABASE_URL): checked, never started or stopped. */
  external?: { variable: string; check: () => Promise<void> };
  /** The signal that shuts it down cleanly without waiting for clients (PostgreSQL: SIGINT). */
  stopSignal?: NodeJS.Signals;
}

/** The pid of this stack's running process of a part, if any. */
function pidOf(config: StackConfig, part: PartName): number | undefined {
  return taggedProcesses().find((p) => p.part === part && p.stackDir === config.stackDir)?.pid;
}

/**
 * Leaves a live, ready process alone; otherwise starts one (and notes it in `started`). Either
 * way waits until it answers.
 */
async function ensure(
  config: StackConfig,
  part: Part,
  runningPid: number | undefined,
  started: { part: Part; pid: number }[],
): Promise<PartReport> {
  const startedAt = Date.now();
  let pid = runningPid;
  if (pid === undefined) {
    pid = await part.start();
    started.push({ part, pid });
    config.log(`${part.name} starting on ${part.endpoint} (pid ${pid}, log ${part.logPath})`);
  }
  await waitReady({
    part: part.name,
    pid,
    logPath: part.logPath,
    timeoutMs: part.timeoutMs,
    probe: part.probe,
  });
  const how = runningPid === undefined ? `started in ${seconds(Date.now() - startedAt)}` : 'already running';
  config.log(`${part.name} ready on ${part.endpoint} (pid ${pid}, ${how})`);
  return {
    part: part.name,
    running: true,
    pid,
    endpoint: part.endpoint,
    ready: true,
    external: false,
    logPath: part.logPath,
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function parts(config: StackConfig): Record<PartName, Part> {
  return {
    kafka: {
      name: 'kafka',
      endpoint: kafkaEndpoint(config),
      ports: [
        { port: config.kafkaPort, envVar: 'MAILPOOLS_KAFKA_PORT', label: 'Kafka' },
        {
          port: config.kafkaControllerPort,
          envVar: 'MAILPOOLS_KAFKA_CONTROLLER_PORT',
          label: 'the Kafka controller',
        },
        {
          port: config.kafkaSaslPort,
          envVar: 'MAILPOOLS_KAFKA_SASL_PORT',
          label: 'the Kafka SASL_SSL listener',
        },
      ],
      logPath: kafkaLogPath(config),
      timeoutMs: KAFKA_READY_TIMEOUT_MS,
      probe: () => kafkaReady(config),
      start: () => startKafka(config),
    },
    registry: {
      name: 'registry',
      endpoint: registryEndpoint(config),
      ports: [{ port: config.registryPort, envVar: 'MAILPOOLS_REGISTRY_PORT', label: 'the schema registry' }],
      logPath: registryLogPath(config),
      timeoutMs: REGISTRY_READY_TIMEOUT_MS,
      probe: () => registryReady(config),
      start: () => startRegistry(config),
    },
    redis: {
      name: 'redis',
      endpoint: redactedRedisUrl(config),
      ports: [{ port: config.redisPort, envVar: 'MAILPOOLS_REDIS_PORT', label: 'Redis' }],
      logPath: redisLogPath(config),
      timeoutMs: REDIS_READY_TIMEOUT_MS,
      probe: () => redisReady(config),
      start: () => startRedis(config),
      ...(config.externalRedisUrl === undefined
        ? {}
        : { external: { variable: 'REDIS_URL', check: () => checkExternalRedis(config) } }),
    },
    postgres: {
      name: 'postgres',
      endpoint: redactedDatabaseUrl(config),
      ports: [{ port: config.postgresPort, envVar: 'MAILPOOLS_POSTGRES_PORT', label: 'PostgreSQL' }],
      logPath: postgresLogPath(config),
      timeoutMs: POSTGRES_READY_TIMEOUT_MS,
      probe: () => postgresReady(config),
      start: () => startPostgres(config),
      stopSignal: 'SIGINT',
      ...(config.externalDatabaseUrl === undefined
        ? {}
        : { external: { variable: 'DATABASE_URL', check: () => checkExternalPostgres(config) } }),
    },
  };
}

export async function stackUp(options: StackOptions = {}): Promise<StackReport> {
  const config = resolveConfig(options);
  const startedAt = Date.now();
  for (const dir of [config.paths.logDir, config.paths.dataDir]) mkdirSync(dir, { recursive: true });

  // One download after the other: both run Maven and print its progress.
  await fetchKafka(config);
  await fetchRegistry(config);
  requireTool('java', JAVA_INSTALL_HINT);

  let kafka = pidOf(config, 'kafka');
  let registry = pidOf(config, 'registry');
  // The registry keeps schemas in memory, and records in Kafka carry schema ids. A registry that starts
  // empty would hand out the same ids for other schemas, so Kafka's data must start empty with it; and
  // when Kafka's data starts empty, the registry restarts empty too. Both always begin together.
  if (registry === undefined && kafkaFormatted(config)) {
    config.log(
      'registry starts empty (in-memory storage), so Kafka data is reset too: no record may carry an old schema id',
    );
    if (kafka !== undefined) {
      await stopProcess(kafka, 'kafka');
      kafka = undefined;
    }
    wipeKafkaData(config);
  } else if (registry !== undefined && !kafkaFormatted(config)) {
    config.log('Kafka data is new, so the registry restarts empty too: schema ids start over with it');
    await stopProcess(registry, 'registry');
    registry = undefined;
  }

  const all = parts(config);
  const running: Record<PartName, number | undefined> = {
    kafka,
    registry,
    redis: all.redis.external ? undefined : pidOf(config, 'redis'),
    postgres: all.postgres.external ? undefined : pidOf(config, 'postgres'),
  };
  const own = Object.values(all).filter((part) => !part.external);
  // Every port we are about to listen on must be free before anything starts, so a conflict leaves
  // nothing half-started behind.
  const toStart = own.filter((part) => running[part.name] === undefined);
  for (const { port, envVar, label } of toStart.flatMap((part) => part.ports)) {
    await requireFreePort(HOST, port, label, envVar);
  }
  const external = Object.values(all).filter((part) => part.external);
  for (const part of external) await part.external?.check();

  const started: { part: Part; pid: number }[] = [];
  const pending: Promise<PartReport>[] = own.map((part) =>
    ensure(config, part, running[part.name], started).catch((error: unknown) => {
      throw failedPart(part, error);
    }),
  );
  for (const part of external) {
    config.log(`${part.name} ready on ${part.endpoint} (external, from ${part.external?.variable})`);
    pending.push(Promise.resolve({ ...externalReport(part), running: true, ready: true }));
  }
  // Wait for every part even when one fails, so nothing is still starting when the error is reported.
  const results = await Promise.allSettled(pending);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) {
    // Half a stack is worse than none: stop what this call started, then say what failed.
    const error = failed.reason as StackError;
    config.log(`${error.part} failed: ${error.message}`);
    for (const { part, pid } of started.reverse()) {
      await stopProcess(pid, part.name, part.stopSignal);
      config.log(`${part.name} stopped (pid ${pid}): started by this \`up\`, which failed`);
    }
    throw error;
  }
  const reports = results.map((result) => (result as PromiseFulfilledResult<PartReport>).value);
  config.log(`stack ready in ${seconds(Date.now() - startedAt)}`);
  return { ready: true, parts: reports, endpoints: endpointsOf(config) };
}

/** The error of a part that did not start, with the part's name on it. */
function failedPart(part: Part, error: unknown): StackError {
  const stackError =
    error instanceof StackError
      ? error
      : new StackError(
          'MAILPOOLS_ERR_STACK_PROCESS_EXITED',
          `${part.name} could not be started: ${error instanceof Error ? error.message : String(error)}`,
          { hint: `Read ${part.logPath} for the cause.`, logPath: part.logPath },
        );
  stackError.part ??= part.name;
  return stackError;
}

function externalReport(part: Part): PartReport {
  return {
    part: part.name,
    running: false,
    pid: null,
    endpoint: part.endpoint,
    ready: false,
    external: true,
    logPath: null,
  };
}

export async function stackStatus(options: StackOptions = {}): Promise<StackReport> {
  const config = resolveConfig(options);
  const all = parts(config);
  const report = async (part: Part, pid: number | undefined): Promise<PartReport> => ({
    part: part.name,
    running: pid !== undefined,
    pid: pid ?? null,
    endpoint: part.endpoint,
    ready: pid !== undefined && (await part.probe()),
    external: false,
    logPath: part.logPath,
  });
  const external = async (part: Part): Promise<PartReport> => {
    const ready = await part.probe();
    return { ...externalReport(part), running: ready, ready };
  };
  const reports = await Promise.all(
    Object.values(all).map((part) =>
      part.external ? external(part) : report(part, pidOf(config, part.name)),
    ),
  );
  return { ready: reports.every((part) => part.ready), parts: reports, endpoints: endpointsOf(config) };
}

/**
 * Stops this stack's processes, and those of stacks whose directory no longer exists (a checkout
 * moved or deleted while its stack ran): nobody else can stop those, and they hold the ports.
 * Both are found by the tag on their command lines.
 */
export async function stackDown(options: StackDownOptions = {}): Promise<StackDownResult> {
  const config = resolveConfig(options);
  const all = parts(config);
  const stopped: StackDownResult['stopped'] = [];
  const tagged = taggedProcesses();
  const ours = tagged.filter((p) => p.stackDir === config.stackDir);
  const orphans = tagged.filter((p) => p.stackDir !== config.stackDir && !existsSync(p.stackDir));
  const stop = async ({ pid, part, stackDir }: TaggedProcess) => {
    const how = await stopProcess(pid, part, all[part].stopSignal);
    stopped.push({ part, pid, stackDir });
    const whose = stackDir === config.stackDir ? '' : `, of ${stackDir}, which no longer exists`;
    config.log(`${part} stopped (pid ${pid}${whose}${how === 'killed' ? ', killed after 20 s' : ''})`);
  };
  await Promise.all([...ours, ...orphans].map(stop));
  for (const part of Object.values(all)) {
    if (ours.some((p) => p.part === part.name)) continue;
    config.log(
      part.external
        ? `${part.name} is external (${part.external.variable}); not stopped`
        : `${part.name} not running`,
    );
  }
  if (options.wipe) {
    for (const dir of [config.paths.dataDir, config.paths.postgresDataDir]) {
      rmSync(dir, { recursive: true, force: true });
      config.log(`data deleted: ${dir}`);
    }
  }
  return { stopped, wiped: options.wipe === true };
}

/**
 * Where `mailpools start` notes the services it runs (their metrics URLs) for `mailpools top`:
 * one file per namespace in the stack directory.
 */
export function servicesFile(namespace: string, options: StackOptions = {}): string {
  return join(
    resolveConfig({ log: () => undefined, ...options }).stackDir,
    'run',
    `${namespace || 'default.'}services.json`,
  );
}

/** The SASL_SSL listener's address, SCRAM user and password, and the certificate to trust. */
export function stackKafkaCredentials(options: StackOptions = {}) {
  return kafkaSaslCredentials(resolveConfig(options));
}

/**
 * Stops one part of the stack and starts it again, keeping its data: what a crash-and-restart of
 * a broker or a cache looks like to the services (the chaos run uses it). Redis, which keeps
 * nothing on disk here, is shut down with SAVE and reloads that snapshot once.
 */
export async function stackRestart(part: PartName, options: StackOptions = {}): Promise<void> {
  const config = resolveConfig(options);
  const target = parts(config)[part];
  const pid = pidOf(config, part);
  if (target.external || pid === undefined)
    throw new StackError('MAILPOOLS_ERR_STACK_NOT_READY', `${part} is not a running part of this stack.`, {
      hint: "Run `mailpools stack up` first; parts given by REDIS_URL or DATABASE_URL are not the stack's to restart.",
    });
  if (part === 'redis') {
    const client = new Redis(endpointsOf(config).redisUrl, {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => {});
    await client.call('SHUTDOWN', 'SAVE').catch(() => undefined); // the connection drops as it exits
    client.disconnect();
  }
  await stopProcess(pid, part, target.stopSignal);
  await stackUp(options);
  // The snapshot was for this one restart; the next ordinary start begins empty, as always.
  if (part === 'redis') rmSync(join(config.stackDir, 'dump.rdb'), { force: true });
}

/**
 * The environment to run against: as given when KAFKA_BROKERS is set, else the local stack —
 * started if it is not running — with its endpoints filled in. `startedHere` says whether this
 * call started it (and so whoever called should stop it at the end).
 */
async function localStackUnlessConfigured(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<{ env: Record<string, string | undefined>; startedHere: boolean }> {
  const result: Record<string, string | undefined> = { ...env };
  if (result.KAFKA_BROKERS) return { env: result, startedHere: false };
  const before = await stackStatus({ log: () => undefined });
  await stackUp();
  const endpoints = stackEndpoints();
  result.KAFKA_BROKERS = endpoints.kafkaBrokers.join(',');
  result.SCHEMA_REGISTRY_URL = endpoints.schemaRegistryUrl;
  result.REDIS_URL = endpoints.redisUrl;
  result.DATABASE_URL = endpoints.databaseUrl;
  return { env: result, startedHere: !before.ready };
}

/**
 * For a script (a benchmark, an evaluation): the local stack unless Kafka is configured, its
 * endpoints in process.env, and what to call at the end — it stops the stack if this started it,
 * reporting on stderr so that the script's last line stays its own.
 */
export async function useLocalStack(): Promise<() => Promise<void>> {
  const { env, startedHere } = await localStackUnlessConfigured();
  Object.assign(process.env, env);
  return async () => {
    if (startedHere) await stackDown({ log: (line) => console.error(line) });
  };
}
