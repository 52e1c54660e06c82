// limit-counter as a stage: OutboundMessage from mail.outbound.classified → with `limits` filled
// in → mail.outbound.counted; a sender it restricts → mail.sender.restrictions (compacted: the
// current table) and mail.sender.restriction-audit (the whole history). Its logic is limits.ts,
// the counting count.lua (through store.ts).
import { maskAddress, wireStage } from '@mailpools/core';
import { tenantMetricLabels } from '@mailpools/policy';
import type { OutboundMessage } from '@mailpools/schemas';
import { createStage, type ServiceContext, type Stage } from '@mailpools/stream';
import { Counter, Gauge } from 'prom-client';
import { countBatch, type LimitTopics, outputsOf } from './limits.ts';
import { LIMITS_SETTINGS } from './settings.ts';
import { createLimitStore, limitsPrefix } from './store.ts';

export const SERVICE = 'limit-counter';

export function createLimitCounterStage({ config, logger, policy, env, redis }: ServiceContext): Stage {
  const store = createLimitStore(redis(), {
    prefix: limitsPrefix(config.namespace),
    graceMs: LIMITS_SETTINGS.integer(env, 'MAILPOOLS_LIMITS_GRACE_S') * 1000,
    dedupTtlSeconds: LIMITS_SETTINGS.integer(env, 'MAILPOOLS_LIMITS_DEDUP_TTL_S'),
    maxDeferMinutes: LIMITS_SETTINGS.integer(env, 'MAILPOOLS_LIMITS_MAX_DEFER_MIN'),
  });
  const wired = wireStage(SERVICE, config.namespace, config.partitions);
  const topics = wired.outputs as unknown as LimitTopics;

  const stage = createStage<OutboundMessage>({
    service: SERVICE,
    config,
    logger,
    input: { topic: wired.input, schema: 'OutboundMessage' },
    topics: wired.topics,
    handle: async (records) => {
      const results = await countBatch(
        records.map((r) => r.value),
        { store, policy },
      );
      return results.map((counted) => {
        const { event, restriction, duplicate } = counted;
        const verdict = event.limits;
        decisions.inc({ decision: verdict?.decision ?? 'none', limit: verdict?.limit ?? 'none' });
        if (duplicate) duplicates.inc();
        if (verdict?.decision === 'ALERT') alerts.inc({ alert: 'sending_limit_exceeded' });
        if (verdict?.decision === 'WARN') alerts.inc({ alert: 'near_limit' });
        if (restriction) {
          restrictions.inc({
            action: restriction.action,
            limit: restriction.limit,
            ...tenantMetricLabels(policy(), restriction.tenantId),
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
        }
        return outputsOf(counted, topics, SERVICE);
      });
    },
  });
  const registers = [stage.metrics.registry];
  const decisions = new Counter({
    name: 'mailpools_limits_decisions_total',
    help: 'limits verdicts by decision and the limit that decided.',
    labelNames: ['decision', 'limit'],
    registers,
  });
  const restrictions = new Counter({
    name: 'mailpools_limits_restrictions_total',
    help: 'Senders restricted, by action, limit, tenant (listed ones; other) and tenant class.',
    labelNames: ['action', 'limit', 'tenant', 'tenant_class'],
    registers,
  });
  new Gauge({
    name: 'mailpools_limits_restricted_senders',
    help: 'Senders restricted now (in Redis, shared by every replica: aggregate with max, not sum).',
    registers,
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
    registers,
  });
  const duplicates = new Counter({
    name: 'mailpools_limits_duplicates_total',
    help: 'Events already counted (replays after a crash or rebalance): answered from the stored verdict.',
    registers,
  });
  new Counter({
    name: 'mailpools_limits_redis_round_trips_total',
    help: 'Redis round trips of the counting (one per batch).',
    registers,
    // The store counts its calls; the metric reads that count when scraped.
    collect() {
      this.reset();
      this.inc(store.roundTrips());
    },
  });
  return stage;
}
