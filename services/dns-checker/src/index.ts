// dns-checker: OutboundMessage from mail.outbound.counted → with `dns` filled in →
// mail.outbound.dns-checked. Wiring only; the logic is in check.ts.
import { connectRedis, createLogger, createRedisClient, loadRuntimeConfig } from '@mailpools/core';
import { resolverFromEnv } from '@mailpools/dns';
import { createEnrichmentStage, eachEvent, stopOnSignals } from '@mailpools/stream';
import { Counter } from 'prom-client';
import { enrich } from './check.ts';

const SERVICE = 'dns-checker';
const config = loadRuntimeConfig();
const logger = createLogger(SERVICE, config.logLevel);
const redis = createRedisClient(config.redisUrl, logger, 'DNS answers are cached in-process only meanwhile');

const stage = createEnrichmentStage({
  service: SERVICE,
  config,
  logger,
  enrich: eachEvent(async (event) => {
    const enriched = await enrich(event, resolver);
    verdicts.inc({ status: enriched.dns?.status ?? 'none' });
    return enriched;
  }),
});
const verdicts = new Counter({
  name: 'mailpools_dns_verdicts_total',
  help: 'dns enrichments by status.',
  labelNames: ['status'],
  registers: [stage.metrics.registry],
});
const resolver = resolverFromEnv(process.env, config.namespace, redis, stage.metrics.registry);

await connectRedis(redis, logger);
stopOnSignals(stage, logger);
await stage.start();
