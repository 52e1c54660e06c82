// limit-counter: OutboundMessage from mail.outbound.classified → with `limits` filled in →
// mail.outbound.counted; a sender it restricts → mail.sender.restrictions (compacted: the current
// table) and mail.sender.restriction-audit (the whole history). Wiring only; the logic is in
// limits.ts, the counting in count.lua.
import {
  connectRedis,
  createLogger,
  createRedisClient,
  integer,
  loadRuntimeConfig,
  wireStage,
} from '@mailpools/core';
import { loadPolicy, tenantMetricLabels } from '@mailpools/policy';
import type { OutboundMessage } from '@mailpools/schemas';
import { createStage, type OutputRecord, stopOnSignals } from '@mailpools/stream';
import { Counter, Gauge } from 'prom-client';
import { countBatch, maskAddress } from './limits.ts';
import { createLimitStore, limitsPrefix } from './store.ts';

const SERVICE = 'limit-counter';
const config = loadRuntimeConfig();
const logger = createLogger(SERVICE, config.logLevel);
const policy = loadPolicy();
const redis = createRedisClient(config.redisUrl, logger, 'partitions pause and retry');
const store = createLimitStore(redis, {
  prefix: limitsPrefix(config.namespace),
  graceMs: integer(process.env, 'MAILPOOLS_LIMITS_GRACE_S', 0, 7 * 86_400) * 1000,
  dedupTtlSeconds: integer(process.env, 'MAILPOOLS_LIMITS_DEDUP_TTL_S', 3_600, 90 * 86_400),
  maxDeferMinutes: integer(process.env, 'MAILPOOLS_LIMITS_MAX_DEFER_MIN', 1, 7 * 1_440),
});
const wired = wireStage(SERVICE, config.namespace, config.partitions);
const { counted, senderRestrictions, restrictionAudit } = wired.outputs as Record<string, string>;

const stage = createStage<OutboundMessage>({
  service: SERVICE,
  config,
  logger,
  input: { topic: wired.input, schema: 'OutboundMessage' },
  topics: wired.topics,
  handle: async (records) => {
    const results = await countBatch(
      records.map((r) => r.value),
      { store, policy: () => policy },
    );
    return results.map(({ event, restriction, duplicate }) => {
      const verdict = event.limits;
      decisions.inc({ decision: verdict?.decision ?? 'none', limit: verdict?.limit ?? 'none' });
      if (duplicate) duplicates.inc();
      if (verdict?.decision === 'ALERT') alerts.inc({ alert: 'sending_limit_exceeded' });
      if (verdict?.decision === 'WARN') alerts.inc({ alert: 'near_limit' });
      const outputs: OutputRecord[] = [
        { topic: counted as string, schema: 'OutboundMessage', key: event.messageId, value: event },
      ];
      if (restriction) {
        restrictions.inc({
          action: restriction.action,
          limit: restriction.limit,
          ...tenantMetricLabels(policy, restriction.tenantId),
        });
        alerts.inc({ alert: 'sender_restricted' });
        if (!duplicate)
          logger.warn(
            {
              tenantId: restriction.tenantId,
              sender: maskAddress(restriction.sender),
              limit: restriction.limit,
              action: restriction.action,
            },
            'sender restricted',
          );
        const key = `${restriction.tenantId}/${restriction.sender}`;
        outputs.push(
          { topic: senderRestrictions as string, schema: 'SenderRestriction', key, value: restriction },
          { topic: restrictionAudit as string, schema: 'SenderRestriction', key, value: restriction },
        );
      }
      return outputs;
    });
  },
});
const decisions = new Counter({
  name: 'mailpools_limits_decisions_total',
  help: 'limits verdicts by decision and the limit that decided.',
  labelNames: ['decision', 'limit'],
  registers: [stage.metrics.registry],
});
const restrictions = new Counter({
  name: 'mailpools_limits_restrictions_total',
  help: 'Senders restricted, by action, limit, tenant (listed ones; other) and tenant class.',
  labelNames: ['action', 'limit', 'tenant', 'tenant_class'],
  registers: [stage.metrics.registry],
});
new Gauge({
  name: 'mailpools_limits_restricted_senders',
  help: 'Senders restricted now (in Redis, shared by every replica: aggregate with max, not sum).',
  registers: [stage.metrics.registry],
  // Read from Redis when scraped; a scrape while Redis is away keeps the last value.
  async collect() {
    const now = Date.now();
    const entries = await store.restrictions().catch(() => undefined);
    if (entries) this.set(entries.filter((e) => e.until === null || e.until > now).length);
  },
});
const alerts = new Counter({
  name: 'mailpools_limits_alerts_total',
  help: 'Alerts: sending_limit_exceeded (an Alert policy), sender_restricted, near_limit (past the warning share).',
  labelNames: ['alert'],
  registers: [stage.metrics.registry],
});
const duplicates = new Counter({
  name: 'mailpools_limits_duplicates_total',
  help: 'Events already counted (replays after a crash or rebalance): answered from the stored verdict.',
  registers: [stage.metrics.registry],
});
new Counter({
  name: 'mailpools_limits_redis_round_trips_total',
  help: 'Redis round trips of the counting (one per batch).',
  registers: [stage.metrics.registry],
  // The store counts its calls; the metric reads that count when scraped.
  collect() {
    this.reset();
    this.inc(store.roundTrips());
  },
});

await connectRedis(redis, logger);
logger.info({ policy: policy.version }, 'policy loaded');
stopOnSignals(stage, logger);
await stage.start();
