// npm run bench:passthrough — in one run on one broker: events/s of (a) a bare kafkajs
// consume → produce loop on raw bytes, (b) the runtime passing Avro events through,
// at-least-once and exactly-once; prints the ratios b/a. Last line: one JSON object.

import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { loadRuntimeConfig, progressBar } from '@mailpools/core';
import { useLocalStack } from '@mailpools/stack';
import { createEventProducer, startBarePassthrough } from '@mailpools/stream';
import { measureEventsPerSecond, sampleEvent } from '@mailpools/testkit';
import { createPassthroughStage } from '../test/fixtures/passthrough-stage.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
// BENCH_BODY_BYTES: the raw message's size, for the cost of bytes per hop (1,700: about 2 KB an event).
const BODY_BYTES = Number(process.env.BENCH_BODY_BYTES ?? 1_700);
const PARTITIONS = 3;

const releaseStack = await useLocalStack();
const namespace = `bench${randomUUID().slice(0, 6)}.`;
const base = {
  LOG_LEVEL: 'warn',
  MAILPOOLS_HTTP_PORT: '0',
  MAILPOOLS_NAMESPACE: namespace,
  MAILPOOLS_PARTITIONS: String(PARTITIONS),
};
const config = loadRuntimeConfig({ ...process.env, ...base });
const input = `${namespace}input`;

const producer = await createEventProducer(config);
await producer.ensureTopics(
  [input, `${namespace}out.bare`].map((topic) => ({ topic, partitions: PARTITIONS, compacted: false })),
);
const progress = progressBar('producing input', EVENTS);
let eventBytes = 0;
for (let sent = 0; sent < EVENTS; sent += 1_000) {
  const batch = Array.from({ length: Math.min(1_000, EVENTS - sent) }, (_, i) => {
    const id = `bench-${sent + i}`;
    return { key: id, value: sampleEvent(id, BODY_BYTES) };
  });
  if (sent === 0) eventBytes = (await producer.serde.encode('OutboundMessage', batch[0]?.value)).length;
  await producer.send(input, 'OutboundMessage', batch);
  progress.update(sent + batch.length);
}
progress.finish(EVENTS);
await producer.close();

const bare = await startBarePassthrough(config, input, `${namespace}out.bare`);
const bareRate = await measureEventsPerSecond('bare kafkajs loop', EVENTS, () => bare.processed());
await bare.stop();

const results: Record<string, number> = {};
for (const delivery of ['at-least-once', 'exactly-once'] as const) {
  const stageConfig = loadRuntimeConfig({
    ...process.env,
    ...base,
    MAILPOOLS_DELIVERY: delivery,
    MAILPOOLS_NAMESPACE: `${namespace}${delivery}.`,
  });
  const output = `${namespace}out.${delivery}`;
  const stage = createPassthroughStage(stageConfig, { input, output, partitions: PARTITIONS });
  const counter = stage.metrics.processed;
  let processed = 0;
  const poll = setInterval(async () => {
    processed = (await counter.get()).values.reduce((sum, v) => sum + v.value, 0);
  }, 5);
  await stage.start();
  results[delivery] = await measureEventsPerSecond(`runtime ${delivery}`, EVENTS, () => processed);
  clearInterval(poll);
  await stage.stop();
}

const alo = results['at-least-once'] ?? 0;
const eos = results['exactly-once'] ?? 0;
console.log('');
console.log(
  `machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model ?? ''}; node ${process.version}`,
);
console.log(`events: ${EVENTS} of ${eventBytes} bytes, ${PARTITIONS} partitions, one broker on loopback`);
console.log('| mode | events/s | vs bare kafkajs |');
console.log('|---|---:|---:|');
console.log(`| bare kafkajs consume→produce (raw bytes) | ${Math.round(bareRate)} | 1.00 |`);
console.log(
  `| runtime, at-least-once (Avro decode/encode) | ${Math.round(alo)} | ${(alo / bareRate).toFixed(2)} |`,
);
console.log(`| runtime, exactly-once (transactions) | ${Math.round(eos)} | ${(eos / bareRate).toFixed(2)} |`);
await releaseStack();
console.log(
  JSON.stringify({
    events: EVENTS,
    event_bytes: eventBytes,
    bare_kafkajs_events_per_s: Math.round(bareRate),
    runtime_at_least_once_events_per_s: Math.round(alo),
    runtime_exactly_once_events_per_s: Math.round(eos),
    ratio_at_least_once_vs_bare: Number((alo / bareRate).toFixed(3)),
    ratio_exactly_once_vs_bare: Number((eos / bareRate).toFixed(3)),
  }),
);
process.exit(0);
