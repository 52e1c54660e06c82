// What every service's process does around its stage, once: configuration, logger, the tenant
// policy (reloaded when its file changes), Redis when the stage asks for it, the signals that
// drain it, and closing what was opened. A service's main.ts is one call:
//
//   await runService('dns-checker', createDnsCheckerStage);
//
// and its stage factory takes the ServiceContext, so tests build the same stage in-process.
import {
  connectRedis,
  createLogger,
  createRedisClient,
  type Logger,
  loadRuntimeConfig,
  type RuntimeConfig,
} from '@mailpools/core';
import { type Policy, watchPolicy } from '@mailpools/policy';
import type { Redis } from 'ioredis';
import type { Stage } from './stage.ts';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ServiceContext {
  /** The service folder name: consumer group id, metric label, log name. */
  readonly service: string;
  readonly config: RuntimeConfig;
  readonly logger: Logger;
  /** The tenant policy as it is now; a changed file applies from the next call. */
  readonly policy: () => Policy;
  readonly env: Env;
  /** The one Redis client of the process, created on first use and connected before the stage starts. */
  redis(): Redis;
}

/** A stage, or a stage with more to start and close around it (an HTTP API, a database pool). */
export type ServiceParts = Stage | { readonly stage: Stage; close?(): Promise<void> };

export type StageFactory = (context: ServiceContext) => ServiceParts | Promise<ServiceParts>;

export interface RunningContext {
  readonly context: ServiceContext;
  /** Connects what the stage asked for (Redis, if it did). */
  connect(): Promise<void>;
  close(): Promise<void>;
}

/** The context a service runs with; tests pass their own env (a namespace, a Redis). */
export function createServiceContext(service: string, env: Env = process.env): RunningContext {
  const config = loadRuntimeConfig(env);
  const logger = createLogger(service, config.logLevel);
  const watcher = watchPolicy(env, {
    changed: (next) => logger.info({ policy: next.version }, 'policy reloaded'),
    refused: (error) =>
      logger.error({ code: error.code }, `policy change refused, keeping the previous one: ${error.message}`),
  });
  let redis: Redis | undefined;
  const context: ServiceContext = {
    service,
    config,
    logger,
    policy: watcher.current,
    env,
    redis() {
      redis ??= createRedisClient(config.redisUrl, logger, 'partitions pause and retry');
      return redis;
    },
  };
  return {
    context,
    connect: async () => {
      if (redis) await connectRedis(redis, logger);
    },
    close: async () => {
      watcher.stop();
      redis?.disconnect();
    },
  };
}

/** Builds the stage, connects what it asked for, runs it until SIGTERM or SIGINT, then drains and exits. */
export async function runService(
  service: string,
  factory: StageFactory,
  env: Env = process.env,
): Promise<void> {
  const running = createServiceContext(service, env);
  const { logger } = running.context;
  const built = await factory(running.context);
  const stage = 'stage' in built ? built.stage : built;
  const closeParts = 'stage' in built ? built.close : undefined;
  await running.connect();
  logger.info({ policy: running.context.policy().version }, 'policy loaded');

  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without draining');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'draining: finishing the batch in hand, then exiting');
    stage
      .stop()
      .then(() => closeParts?.())
      .then(() => running.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'error while draining');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  await stage.start();
}
