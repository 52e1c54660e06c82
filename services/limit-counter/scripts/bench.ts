// npm run bench:limits — in one run on the real stack: events/s of limit-counter alone (its own
// process, reading a topic filled beforehand) beside the runtime's pass-through stage on the
// same events (the ceiling any stage has here), and Redis round trips per batch. Last line: one
// JSON object.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadRuntimeConfig, progressBar, TOPICS } from '@mailpools/core';
import type { OutboundMessage } from '@mailpools/schemas';
import { useLocalStack } from '@mailpools/stack';
import { createEventProducer } from '@mailpools/stream';
import {
  measureEventsPerSecond,
  type ServiceProcess,
  sampleEvent,
  scrapeMetric,
  startService,
  startStageProcess,
} from '@mailpools/testkit';
import { Redis } from 'ioredis';
import { limitsPrefix } from '../src/store.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const SENDERS = 20_000;
const TENANTS = 100;
const PARTITIONS = 6;
const PASSTHROUGH = fileURLToPath(new URL('../../../test/fixtures/passthrough-stage.ts', import.meta.url));

const releaseStack = await useLocalStack();
const namespace = `bench${randomUUID().slice(0, 6)}.`;
const config = loadRuntimeConfig({ ...process.env, MAILPOOLS_NAMESPACE: namespace, LOG_LEVEL: 'warn' });
const input = `${namespace}${TOPICS.classified}`;

// An hour of event time from 20,000 senders of 100 tenants, 1–8 recipients each, 1.7 KB bodies.
const template = sampleEvent('bench', 1_700);
const eventAt = (i: number): OutboundMessage => {
  const sender = `user${(i * 7_919) % SENDERS}@tenant${i % TENANTS}.example`;
  const recipients = Array.from({ length: 1 + (i % 8) }, (_, r) => ({
    address: `r${r}@${r % 2 ? 'else' : `tenant${i % TENANTS}`}.example`,
    scope: r % 2 ? ('EXTERNAL' as const) : ('INTERNAL' as const),
  }));
  return {
    ...template,
    messageId: `b${i}`,
    tenantId: `tenant${i % TENANTS}`,
    eventTime: template.eventTime + Math.floor((i / EVENTS) * 3_600_000),
    submitter: sender,
    envelopeSender: sender,
    fromHeader: sender,
    recipients,
  };
};
const producer = await createEventProducer(config);
await producer.ensureTopics([{ topic: input, partitions: PARTITIONS, compacted: false }]);
const progress = progressBar('producing input', EVENTS);
for (let sent = 0; sent < EVENTS; sent += 1_000) {
  const batch = Array.from({ length: Math.min(1_000, EVENTS - sent) }, (_, i) => eventAt(sent + i));
  await producer.send(
    input,
    'OutboundMessage',
    batch.map((e) => ({ key: e.messageId, value: e })),
  );
  progress.update(sent + batch.length);
}
progress.finish(EVENTS);
await producer.close();

/** Events/s from the first to the last processed record, read from the process's own metrics. */
const measure = (label: string, stage: ServiceProcess) =>
  measureEventsPerSecond(
    label,
    EVENTS,
    () => scrapeMetric(stage.port, 'mailpools_stage_records_processed_total'),
    50,
  );

const common = { MAILPOOLS_PARTITIONS: String(PARTITIONS), LOG_LEVEL: 'warn' };
const passthrough = await startStageProcess(PASSTHROUGH, {
  ...common,
  MAILPOOLS_NAMESPACE: `${namespace}baseline.`,
  PASSTHROUGH_INPUT: input,
  PASSTHROUGH_OUTPUT: `${namespace}baseline.out`,
});
const passthroughRate = await measure('pass-through stage', passthrough);
await passthrough.stop();

const redis = new Redis(config.redisUrl);
/** Microseconds Redis spent running scripts so far (INFO commandstats). */
const scriptMicros = async () =>
  [...(await redis.info('commandstats')).matchAll(/cmdstat_eval(?:sha)?:calls=\d+,usec=(\d+)/g)].reduce(
    (sum, m) => sum + Number(m[1]),
    0,
  );
const scriptBefore = await scriptMicros();
const limits = await startService('limit-counter', { ...common, MAILPOOLS_NAMESPACE: namespace });
const limitsRate = await measure('limit-counter', limits);
const roundTrips = await scrapeMetric(limits.port, 'mailpools_limits_redis_round_trips_total');
const batches = await scrapeMetric(limits.port, 'mailpools_stage_batch_records_count');
const decisions = await scrapeMetric(limits.port, 'mailpools_limits_decisions_total');
await limits.stop();
const scriptMicrosSpent = (await scriptMicros()) - scriptBefore;
const keys = await redis.keys(`${limitsPrefix(namespace)}*`);
for (let i = 0; i < keys.length; i += 10_000) await redis.del(...keys.slice(i, i + 10_000));
redis.disconnect();

const figures = {
  events: EVENTS,
  partitions: PARTITIONS,
  limit_counter_events_per_s: Math.round(limitsRate),
  passthrough_events_per_s: Math.round(passthroughRate),
  ratio_vs_passthrough: Number((limitsRate / passthroughRate).toFixed(3)),
  batches,
  mean_events_per_batch: Math.round(decisions / batches),
  redis_round_trips_per_batch: Number((roundTrips / batches).toFixed(3)),
  redis_script_us_per_event: Number((scriptMicrosSpent / EVENTS).toFixed(1)),
};
console.log(
  `machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB; node ${process.version}; Kafka, Redis and the stage share them`,
);
console.log(
  [
    '| stage | events/s | vs pass-through | Redis round trips per batch | events per batch | Redis script µs per event |',
    '|---|---:|---:|---:|---:|---:|',
    `| pass-through (runtime only) | ${figures.passthrough_events_per_s} | 1.00 | – | – | – |`,
    `| limit-counter | ${figures.limit_counter_events_per_s} | ${figures.ratio_vs_passthrough.toFixed(2)} | ${figures.redis_round_trips_per_batch} | ${figures.mean_events_per_batch} | ${figures.redis_script_us_per_event} |`,
  ].join('\n'),
);
await releaseStack();
console.log(JSON.stringify(figures));
process.exit(0);
