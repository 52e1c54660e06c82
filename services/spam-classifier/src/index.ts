// spam-classifier's process: configuration, Redis, policy, then the stage (stage.ts) until SIGTERM.
import { connectRedis, createLogger, createRedisClient, loadRuntimeConfig } from '@mailpools/core';
import { loadPolicy } from '@mailpools/policy';
import { stopOnSignals } from '@mailpools/stream';
import { createSpamClassifierStage, SERVICE } from './stage.ts';

const config = loadRuntimeConfig();
const logger = createLogger(SERVICE, config.logLevel);
const policy = loadPolicy();
const redis = createRedisClient(config.redisUrl, logger, 'partitions pause and retry');
await connectRedis(redis, logger);
const stage = createSpamClassifierStage({ config, logger, policy: () => policy, redis, env: process.env });
stopOnSignals(stage, logger);
await stage.start();
