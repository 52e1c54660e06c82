// pool-router: OutboundMessage from mail.outbound.verified → PoolAssignment to
// mail.outbound.routed, keyed by message id. Wiring only; the logic is in route.ts. The policy
// file is reloaded when it changes; the originals of short SRS addresses are kept in Redis.
import {
  connectRedis,
  createLogger,
  createRedisClient,
  loadRuntimeConfig,
  MailpoolsError,
  wireStage,
} from '@mailpools/core';
import { tenantMetricLabels, watchPolicy } from '@mailpools/policy';
import type { OutboundMessage } from '@mailpools/schemas';
import { createStage, perRecord, stopOnSignals } from '@mailpools/stream';
import { Counter, Histogram } from 'prom-client';
import { route } from './route.ts';
import { srsKeyPrefix } from './srs.ts';

const SERVICE = 'pool-router';
const config = loadRuntimeConfig();
const logger = createLogger(SERVICE, config.logLevel);
const policy = watchPolicy(process.env, {
  changed: (next) => logger.info({ policy: next.version }, 'policy reloaded'),
  refused: (error) =>
    logger.error({ code: error.code }, `policy change refused, keeping the previous one: ${error.message}`),
});
const redis = createRedisClient(config.redisUrl, logger, 'partitions pause and retry');
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
    const current = policy.current();
    const { assignment, srsRecord } = route(value, current, now);
    if (srsRecord) {
      // Kept before the assignment is produced, so a bounce to the address can always be reversed.
      await redis
        .set(`${srsPrefix}${srsRecord.key}`, srsRecord.original, 'EX', srsRecord.ttlSeconds)
        .catch((error: Error) => {
          throw new MailpoolsError(
            'MAILPOOLS_ERR_REDIS_UNAVAILABLE',
            `Redis did not keep an SRS address: ${error.message}.`,
            {
              hint: 'Check REDIS_URL; the partition pauses and retries meanwhile.',
              retriable: true,
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
const assignments = new Counter({
  name: 'mailpools_router_assignments_total',
  help: 'Pool assignments by pool, the rule that decided (none: good mail), tenant (listed ones; other) and tenant class.',
  labelNames: ['pool', 'rule', 'tenant', 'tenant_class'],
  registers: [stage.metrics.registry],
});
const eventAge = new Histogram({
  name: 'mailpools_router_event_age_seconds',
  help: "From the event's own time (set by the platform at submission) to its routing: the pipeline's end-to-end latency (a replay shows the replayed events' age).",
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [stage.metrics.registry],
});
const rewritten = new Counter({
  name: 'mailpools_router_srs_rewritten_total',
  help: 'Envelope senders rewritten with SRS.',
  registers: [stage.metrics.registry],
});

await connectRedis(redis, logger);
logger.info({ policy: policy.current().version }, 'policy loaded');
stopOnSignals(stage, logger);
await stage.start();
