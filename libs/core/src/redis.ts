// The one way a service talks to Redis: commands fail fast while Redis is away (no offline
// queue, one retry), so a stage sees a transient error, pauses the partition and retries, instead
// of piling up commands; the client reconnects by itself meanwhile.
import { Redis } from 'ioredis';
import type { Logger } from './logger.ts';

/** A client that is not connected yet; `meanwhile` says, in the log, what a Redis outage costs. */
export function createRedisClient(url: string, logger: Logger, meanwhile: string): Redis {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', (error) =>
    logger.warn({ code: (error as { code?: string }).code }, `Redis unavailable: ${meanwhile}`),
  );
  return redis;
}

/** Connects; Redis being down at start-up is logged, not fatal (the client keeps trying). */
export async function connectRedis(redis: Redis, logger: Logger): Promise<void> {
  await redis
    .connect()
    .catch((error: Error) =>
      logger.warn({ error: error.message }, 'Redis not reachable at start-up; retrying'),
    );
}
