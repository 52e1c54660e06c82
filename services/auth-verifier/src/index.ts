// auth-verifier: OutboundMessage from mail.outbound.dns-checked → with `auth` filled in →
// mail.outbound.verified. Wiring only; the logic is in verify.ts.
import {
  connectRedis,
  createLogger,
  createRedisClient,
  integer,
  loadRuntimeConfig,
  setting,
} from '@mailpools/core';
import { nodeStyleResolve, resolverFromEnv } from '@mailpools/dns';
import { loadPolicy } from '@mailpools/policy';
import { createEnrichmentStage, eachEvent, stopOnSignals } from '@mailpools/stream';
import { Counter } from 'prom-client';
import { enrich } from './verify.ts';

const SERVICE = 'auth-verifier';
const config = loadRuntimeConfig();
const logger = createLogger(SERVICE, config.logLevel);
const policy = loadPolicy();
const redis = createRedisClient(config.redisUrl, logger, 'DNS answers are cached in-process only meanwhile');

const stage = createEnrichmentStage({
  service: SERVICE,
  config,
  logger,
  enrich: eachEvent(async (event) => {
    const enriched = await enrich(event, deps);
    const auth = enriched.auth;
    if (auth) {
      results.inc({ check: 'spf', result: auth.spf });
      results.inc({ check: 'dmarc', result: auth.dmarc });
      results.inc({ check: 'arc', result: auth.arc });
      results.inc({ check: 'dkim_sender', result: auth.dkimPassForSender ? 'pass' : 'none' });
      verdicts.inc({ status: auth.status, vouched: String(auth.vouched) });
    }
    return enriched;
  }),
});
const results = new Counter({
  name: 'mailpools_auth_results_total',
  help: 'Authentication results by check (spf, dmarc, arc, dkim_sender) and result.',
  labelNames: ['check', 'result'],
  registers: [stage.metrics.registry],
});
const verdicts = new Counter({
  name: 'mailpools_auth_verdicts_total',
  help: 'auth enrichments by status (VERIFIED, PARTIAL, SKIPPED) and whether the sender was vouched for.',
  labelNames: ['status', 'vouched'],
  registers: [stage.metrics.registry],
});

const deps = {
  resolve: nodeStyleResolve(resolverFromEnv(process.env, config.namespace, redis, stage.metrics.registry)),
  policy: () => policy,
  maxBytes: integer(process.env, 'MAILPOOLS_AUTH_MAX_BYTES', 1_024, 64 * 1_048_576),
  timeoutMs: integer(process.env, 'MAILPOOLS_AUTH_TIMEOUT_MS', 50, 120_000),
  mta: setting(process.env, 'MAILPOOLS_AUTH_MTA'),
};
await connectRedis(redis, logger);
logger.info({ policy: policy.version }, 'policy loaded');
stopOnSignals(stage, logger);
await stage.start();
