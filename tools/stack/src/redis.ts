// Redis: the one named by REDIS_URL, or our own without persistence on MAILPOOLS_REDIS_PORT.
import { join } from 'node:path';
import { redactUrl } from '@mailpools/core';
import { endpointsOf, HOST, type StackConfig, stackTag } from './config.ts';
import { StackError } from './errors.ts';
import { probeRedis } from './probe.ts';
import { requireTool, spawnDetached } from './process.ts';

export const REDIS_READY_TIMEOUT_MS = 10_000;

export const redisLogPath = (config: StackConfig) => join(config.paths.logDir, 'redis.log');

export const redisUrl = (config: StackConfig) => endpointsOf(config).redisUrl;
export const redisReady = (config: StackConfig) => probeRedis(redisUrl(config));

/** The URL without its password, for printing. */
export function redactedRedisUrl(config: StackConfig): string {
  return redactUrl(redisUrl(config));
}

export async function checkExternalRedis(config: StackConfig): Promise<void> {
  if (await redisReady(config)) return;
  throw new StackError(
    'MAILPOOLS_ERR_STACK_REDIS_UNREACHABLE',
    `REDIS_URL (${redactedRedisUrl(config)}) does not answer PING.`,
    {
      hint: 'Start that Redis or correct REDIS_URL; or unset REDIS_URL and the stack starts its own on MAILPOOLS_REDIS_PORT.',
    },
  );
}

export async function startRedis(config: StackConfig): Promise<number> {
  requireTool(
    'redis-server',
    'Install Redis (apt-get install redis-server), or set REDIS_URL to a Redis the stack should use instead.',
  );
  const pid = spawnDetached(
    'redis-server',
    [
      '--port',
      String(config.redisPort),
      '--bind',
      HOST,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      // Keeps the stack's tag visible in /proc/<pid>/cmdline, where `down` looks for it.
      '--proc-title-template',
      `{title} {listen-addr} ${stackTag(config)}`,
    ],
    config.stackDir,
    redisLogPath(config),
  );
  return pid;
}
