// pool-router as a stage: OutboundMessage from mail.outbound.verified → PoolAssignment to
// mail.outbound.routed, keyed by message id. Its logic is route.ts; the originals of short SRS
// addresses are kept in Redis before the assignment that carries them is produced.
import { MailpoolsError, wireStage } from '@mailpools/core';
import { tenantMetricLabels } from '@mailpools/policy';
import type { OutboundMessage } from '@mailpools/schemas';
import { createStage, perRecord, type ServiceContext, type Stage } from '@mailpools/stream';
import { Counter, Histogram } from 'prom-client';
import { route } from './route.ts';
import { srsKeyPrefix } from './srs.ts';

export const SERVICE = 'pool-router';

export function createPoolRouterStage({ config, logger, policy, redis }: ServiceContext): Stage {
  const srsPrefix = srsKeyPrefix(config.namespace);
  const wired = wireStage(SERVICE, config.namespace, config.partitions);
  const routed = wired.outputs.routed as string;
  const stage = createStage<OutboundMessage>({
    service: SERVICE,
    config,
    logger,
    input: { topic: wired.input, schema: 'OutboundMessage' },
    topics: wired.topics,
    handle: perRecord(async ({ value }) => {
      const now = Date.now();
      const current = policy();
      const { assignment, srsRecord } = route(value, current, now);
      if (srsRecord) {
        // Kept before the assignment is produced, so a bounce to the address can always be reversed.
        await redis()
          .set(`${srsPrefix}${srsRecord.key}`, srsRecord.original, 'EX', srsRecord.ttlSeconds)
          .catch((error: Error) => {
            throw new MailpoolsError(
              'MAILPOOLS_ERR_REDIS_UNAVAILABLE',
              `Redis did not keep an SRS address: ${error.message}.`,
              {
                hint: 'Check REDIS_URL; the partition pauses and retries meanwhile.',
              },
            );
          });
      }
      assignments.inc({
        pool: assignment.pool,
        rule: assignment.trace.find((t) => t.matched)?.rule ?? 'none',
        ...tenantMetricLabels(current, value.tenantId),
      });
      eventAge.observe(Math.max(0, now - value.eventTime) / 1000);
      if (assignment.rewrittenSender) rewritten.inc();
      return [{ topic: routed, schema: 'PoolAssignment', key: assignment.messageId, value: assignment }];
    }),
  });
  const registers = [stage.metrics.registry];
  const assignments = new Counter({
    name: 'mailpools_router_assignments_total',
    help: 'Pool assignments by pool, the rule that decided (none: good mail), tenant (listed ones; other) and tenant class.',
    labelNames: ['pool', 'rule', 'tenant', 'tenant_class'],
    registers,
  });
  const eventAge = new Histogram({
    name: 'mailpools_router_event_age_seconds',
    help: "From the event's own time (set by the platform at submission) to its routing: the pipeline's end-to-end latency (a replay shows the replayed events' age).",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers,
  });
  const rewritten = new Counter({
    name: 'mailpools_router_srs_rewritten_total',
    help: 'Envelope senders rewritten with SRS.',
    registers,
  });
  redis(); // connected before the stage starts
  return stage;
}
