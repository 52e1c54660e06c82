// The one way a service talks to Redis: commands fail fast while Redis is away (no offline
// queue, one retry), so a stage sees a transient error, pauses the partition and retries, instead
// of piling up commands; the client reconnects by itself meanwhile.
import { Redis } from 'ioredis';
import { redactUrl } from './config.ts';
import { MailpoolsError } from './errors.ts';
import type { Logger } from './logger.ts';

const FAIL_FAST = { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false } as const;

/** A client that is not connected yet; `meanwhile` says, in the log, what a Redis outage costs. */
export function createRedisClient(url: string, logger: Logger, meanwhile: string): Redis {
  const redis = new Redis(url, FAIL_FAST);
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

/** For a command: connects, runs `work`, disconnects; Redis being away is an error that says so. */
export async function withRedis<T>(url: string, work: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, FAIL_FAST);
  redis.on('error', () => undefined); // reported by the command that fails
  try {
    await redis.connect().catch((error: Error) => {
      throw new MailpoolsError(
        'MAILPOOLS_ERR_REDIS_UNAVAILABLE',
        `Redis at ${redactUrl(url)} did not answer: ${error.message}.`,
        {
          hint: 'Set REDIS_URL to the Redis the services use (or start the local stack).',
        },
      );
    });
    return await work(redis);
  } finally {
    redis.disconnect();
  }
}
