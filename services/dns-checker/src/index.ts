// dns-checker: OutboundMessage from mail.outbound.counted → with `dns` filled in →
// mail.outbound.dns-checked. Wiring only; the logic is in check.ts.
import { createLogger, loadRuntimeConfig } from '@mailpools/core';
import { cacheLimitsFromEnv, Resolver, transportFromEnv } from '@mailpools/dns';
import { createEnrichmentStage, stopOnSignals } from '@mailpools/stream';
import { Redis } from 'ioredis';
import { Counter } from 'prom-client';
import { enrich } from './check.ts';

const SERVICE = 'dns-checker';
const config = loadRuntimeConfig();
const logger = createLogger(SERVICE, config.logLevel);
const redis = new Redis(config.redisUrl, {
  lazyConnect: true,
  maxRetriesPerRequest: 1,
  enableOfflineQueue: false,
});
redis.on('error', (error) =>
  logger.warn(
    { code: (error as { code?: string }).code },
    'Redis unavailable: DNS answers are cached in-process only meanwhile',
  ),
);

const stage = createEnrichmentStage({
  service: SERVICE,
  config,
  logger,
  enrich: async (event) => {
    const enriched = await enrich(event, resolver);
    verdicts.inc({ status: enriched.dns?.status ?? 'none' });
    return enriched;
  },
});
const verdicts = new Counter({
  name: 'mailpools_dns_verdicts_total',
  help: 'dns enrichments by status.',
  labelNames: ['status'],
  registers: [stage.metrics.registry],
});
const lookups = new Counter({
  name: 'mailpools_dns_lookups_total',
  help: 'DNS lookups by where they were answered: LRU, Redis, network (misses), coalesced, or failed for now.',
  labelNames: ['source'],
  registers: [stage.metrics.registry],
});
const resolver = new Resolver({
  ...transportFromEnv(process.env),
  ...cacheLimitsFromEnv(process.env),
  redis,
  observe: (source) => lookups.inc({ source }),
});

await redis
  .connect()
  .catch((error: Error) => logger.warn({ error: error.message }, 'Redis not reachable at start-up'));
stopOnSignals(stage, logger);
await stage.start();
