// up / down / status over the three parts.
import { mkdirSync, rmSync } from 'node:fs';
import {
  endpointsOf,
  HOST,
  resolveConfig,
  type StackConfig,
  type StackEndpoints,
  type StackOptions,
} from './config.ts';
import {
  fetchKafka,
  KAFKA_READY_TIMEOUT_MS,
  kafkaEndpoint,
  kafkaFormatted,
  kafkaLogPath,
  kafkaPid,
  kafkaPidFile,
  kafkaReady,
  startKafka,
  wipeKafkaData,
} from './kafka.ts';
import {
  commandLine,
  isAlive,
  JAVA_INSTALL_HINT,
  readPid,
  removePid,
  requireFreePort,
  requireTool,
  stopProcess,
  waitReady,
} from './process.ts';
import {
  checkExternalRedis,
  REDIS_READY_TIMEOUT_MS,
  redactedRedisUrl,
  redisLogPath,
  redisPid,
  redisPidFile,
  redisReady,
  startRedis,
} from './redis.ts';
import {
  fetchRegistry,
  REGISTRY_READY_TIMEOUT_MS,
  registryEndpoint,
  registryLogPath,
  registryPid,
  registryPidFile,
  registryReady,
  startRegistry,
} from './registry.ts';

export type PartName = 'kafka' | 'registry' | 'redis';

export interface PartReport {
  part: PartName;
  /** A process of this stack is alive (for an external Redis: it answered). */
  running: boolean;
  pid: number | null;
  endpoint: string;
  ready: boolean;
  /** Redis from REDIS_URL: not started or stopped by the stack. */
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
  stopped: { part: PartName; pid: number }[];
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
}

/** Leaves a live, ready process alone; otherwise starts one. Either way waits until it answers. */
async function ensure(config: StackConfig, part: Part, runningPid: number | undefined): Promise<PartReport> {
  const startedAt = Date.now();
  let pid = runningPid;
  if (pid === undefined) {
    pid = await part.start();
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
    },
  };
}

export async function stackUp(options: StackOptions = {}): Promise<StackReport> {
  const config = resolveConfig(options);
  const startedAt = Date.now();
  for (const dir of [config.paths.runDir, config.paths.logDir, config.paths.dataDir])
    mkdirSync(dir, { recursive: true });

  // One download after the other: both run Maven and print its progress.
  await fetchKafka(config);
  await fetchRegistry(config);
  requireTool('java', JAVA_INSTALL_HINT);

  let kafka = kafkaPid(config);
  let registry = registryPid(config);
  // The registry keeps schemas in memory, and records in Kafka carry schema ids. A registry that starts
  // empty would hand out the same ids for other schemas, so Kafka's data must start empty with it; and
  // when Kafka's data starts empty, the registry restarts empty too. Both always begin together.
  if (registry === undefined && kafkaFormatted(config)) {
    config.log(
      'registry starts empty (in-memory storage), so Kafka data is reset too: no record may carry an old schema id',
    );
    if (kafka !== undefined) {
      await stopProcess(kafka, 'kafka');
      removePid(kafkaPidFile(config));
      kafka = undefined;
    }
    wipeKafkaData(config);
  } else if (registry !== undefined && !kafkaFormatted(config)) {
    config.log('Kafka data is new, so the registry restarts empty too: schema ids start over with it');
    await stopProcess(registry, 'registry');
    removePid(registryPidFile(config));
    registry = undefined;
  }

  const all = parts(config);
  const redis = config.externalRedisUrl === undefined ? redisPid(config) : undefined;
  // Every port we are about to listen on must be free before anything starts, so a conflict leaves
  // nothing half-started behind.
  const toStart = [
    ...(kafka === undefined ? [all.kafka] : []),
    ...(registry === undefined ? [all.registry] : []),
    ...(config.externalRedisUrl === undefined && redis === undefined ? [all.redis] : []),
  ];
  for (const { port, envVar, label } of toStart.flatMap((part) => part.ports)) {
    await requireFreePort(HOST, port, label, envVar);
  }
  if (config.externalRedisUrl !== undefined) await checkExternalRedis(config);

  const pending: Promise<PartReport>[] = [
    ensure(config, all.kafka, kafka),
    ensure(config, all.registry, registry),
  ];
  if (config.externalRedisUrl === undefined) {
    pending.push(ensure(config, all.redis, redis));
  } else {
    config.log(`redis ready on ${all.redis.endpoint} (external, from REDIS_URL)`);
    pending.push(Promise.resolve({ ...externalRedisReport(config), running: true, ready: true }));
  }
  // Wait for every part even when one fails, so nothing is still starting when the error is reported.
  const results = await Promise.allSettled(pending);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  const reports = results.map((result) => (result as PromiseFulfilledResult<PartReport>).value);
  config.log(`stack ready in ${seconds(Date.now() - startedAt)}`);
  return { ready: true, parts: reports, endpoints: endpointsOf(config) };
}

function externalRedisReport(config: StackConfig): PartReport {
  return {
    part: 'redis',
    running: false,
    pid: null,
    endpoint: redactedRedisUrl(config),
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
  const externalRedis = async (): Promise<PartReport> => {
    const ready = await redisReady(config);
    return { ...externalRedisReport(config), running: ready, ready };
  };
  const reports = await Promise.all([
    report(all.kafka, kafkaPid(config)),
    report(all.registry, registryPid(config)),
    config.externalRedisUrl === undefined ? report(all.redis, redisPid(config)) : externalRedis(),
  ]);
  return { ready: reports.every((part) => part.ready), parts: reports, endpoints: endpointsOf(config) };
}

export async function stackDown(options: StackDownOptions = {}): Promise<StackDownResult> {
  const config = resolveConfig(options);
  const targets: { part: PartName; pidFile: string; pid: number | undefined }[] = [
    { part: 'kafka', pidFile: kafkaPidFile(config), pid: kafkaPid(config) },
    { part: 'registry', pidFile: registryPidFile(config), pid: registryPid(config) },
    { part: 'redis', pidFile: redisPidFile(config), pid: redisPid(config) },
  ];
  const stopped: StackDownResult['stopped'] = [];
  await Promise.all(
    targets.map(async ({ part, pidFile, pid }) => {
      if (pid === undefined) {
        const stale = readPid(pidFile);
        if (stale !== undefined && isAlive(stale)) {
          config.log(
            `${part}: pid file names pid ${stale}, which is not ours (${commandLine(stale)}); left alone`,
          );
        } else if (part === 'redis' && config.externalRedisUrl !== undefined) {
          config.log('redis is external (REDIS_URL); not stopped');
        } else {
          config.log(`${part} not running`);
        }
        removePid(pidFile);
        return;
      }
      const how = await stopProcess(pid, part);
      removePid(pidFile);
      stopped.push({ part, pid });
      config.log(`${part} stopped (pid ${pid}${how === 'killed' ? ', killed after 20 s' : ''})`);
    }),
  );
  if (options.wipe) {
    rmSync(config.paths.dataDir, { recursive: true, force: true });
    config.log(`data deleted: ${config.paths.dataDir}`);
  }
  return { stopped, wiped: options.wipe === true };
}

/**
 * The environment to run against: as given when KAFKA_BROKERS is set, else the local stack —
 * started if it is not running — with its endpoints filled in. `startedHere` says whether this
 * call started it (and so whoever called should stop it at the end).
 */
export async function localStackUnlessConfigured(
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
  return { env: result, startedHere: !before.ready };
}
