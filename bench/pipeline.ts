// npm run bench:pipeline — in one run on one broker, exactly-once, every stage its own process:
// a chain of five pass-through stages (the runtime's cost of a hop), then the pipeline
// (spam-classifier → limit-counter → dns-checker → auth-verifier → pool-router). For each:
// - capacity: events/s through a backlog, and the CPU µs per event of every stage over it;
// - latency at 25 %, 50 % and 80 % of that capacity: from the moment an event is handed to the
//   producer to the moment its output can be read committed at the end of the chain, and CPU
//   per event at each rate;
// - the first record after every stage was restarted (its partitions newly assigned): its delay
//   per stage, against the per-stage delay of records in steady state.
// Last line: one JSON object of the figures.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { DECISION_CHAIN, loadRuntimeConfig, progressBar, STAGES, topicName } from '@mailpools/core';
import type { OutboundMessage } from '@mailpools/schemas';
import { useLocalStack } from '@mailpools/stack';
import { createEventProducer, followTopic, readTopic } from '@mailpools/stream';
import {
  measureEventsPerSecond,
  type ServiceProcess,
  sampleEvent,
  scrapeMetric,
  startService,
  startStageProcess,
  startTestDnsServer,
} from '@mailpools/testkit';

const THROUGHPUT_EVENTS = Number(process.env.BENCH_EVENTS ?? 5_000);
const PACED_SECONDS = Number(process.env.BENCH_PACED_SECONDS ?? 12);
const LOADS = [0.25, 0.5, 0.8] as const;
const WARM_UP_EVENTS = 600;
const PARTITIONS = 3;
/** The chain's services, in pipeline order (the ones an assignment waits for). */
const SERVICES = DECISION_CHAIN;
const PASSTHROUGH = fileURLToPath(new URL('../test/fixtures/passthrough-stage.ts', import.meta.url));

const releaseStack = await useLocalStack();
const namespace = `bench${randomUUID().slice(0, 6)}.`;
const config = loadRuntimeConfig({ ...process.env, MAILPOOLS_NAMESPACE: namespace, LOG_LEVEL: 'warn' });
const dns = await startTestDnsServer({
  zones: Object.fromEntries(
    Array.from({ length: 50 }, (_, i) => [
      `tenant${i}.test`,
      [
        { type: 'A' as const, data: `192.0.2.${i + 1}` },
        { type: 'MX' as const, data: { preference: 10, exchange: `mx.tenant${i}.test` } },
        { type: 'TXT' as const, data: 'v=spf1 ip4:198.51.100.0/24 -all' },
      ],
    ]),
  ),
});

const BODY =
  'Hi Bob,\r\n\r\nI had a look at the build failure from last night. The test in the parser module times out because the fixture file moved; I pushed a fix to the branch, can you review it when you have a minute?\r\n\r\nThanks,\r\nAlice\r\n';
function eventAt(i: number, prefix: string): OutboundMessage {
  const tenant = i % 50;
  const sender = `user${i % 2_000}@tenant${tenant}.test`;
  const base = sampleEvent(`${prefix}${i}`, 100, Date.UTC(2026, 10, 23, 9) + i * 50);
  const raw = Buffer.from(
    `From: ${sender}\r\nTo: bob@fabrikam.test\r\nSubject: build ${i}\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\nMessage-ID: <${prefix}${i}@tenant${tenant}.test>\r\n\r\n${BODY.repeat(6)}`,
  );
  return {
    ...base,
    tenantId: `tenant${tenant}`,
    submitter: sender,
    envelopeSender: sender,
    fromHeader: sender,
    clientIp: `198.51.100.${i % 250}`,
    raw,
    rawSize: raw.length,
  };
}

interface Chain {
  readonly label: string;
  /** The input topic, then each stage's output topic, in order. */
  readonly topics: readonly string[];
  readonly outputSchema: 'OutboundMessage' | 'PoolAssignment';
  readonly stages: { readonly name: string; readonly start: () => Promise<ServiceProcess> }[];
}

const pipeline: Chain = {
  label: 'pipeline',
  topics: [
    topicName('submitted', namespace),
    ...SERVICES.map((service) => {
      const stage = STAGES.find((s) => s.service === service);
      return topicName(stage?.outputs[0] ?? 'routed', namespace);
    }),
  ],
  outputSchema: 'PoolAssignment',
  stages: SERVICES.map((name) => ({
    name,
    start: () =>
      startService(name, {
        MAILPOOLS_NAMESPACE: namespace,
        MAILPOOLS_PARTITIONS: String(PARTITIONS),
        MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}`,
        LOG_LEVEL: 'warn',
      }),
  })),
};

const chainTopic = (i: number) => `${namespace}chain.${i}`;
const passthroughChain: Chain = {
  label: 'pass-through chain',
  topics: Array.from({ length: SERVICES.length + 1 }, (_, i) => chainTopic(i)),
  outputSchema: 'OutboundMessage',
  stages: SERVICES.map((_, i) => ({
    name: `pass-through ${i + 1}`,
    start: () =>
      startStageProcess(PASSTHROUGH, {
        MAILPOOLS_NAMESPACE: `${namespace}pt${i}.`,
        MAILPOOLS_PARTITIONS: String(PARTITIONS),
        PASSTHROUGH_INPUT: chainTopic(i),
        PASSTHROUGH_OUTPUT: chainTopic(i + 1),
        LOG_LEVEL: 'warn',
      }),
  })),
};

const producer = await createEventProducer(config);
/** When each event was handed to the producer (performance.now()), by message id. */
const sentAt = new Map<string, number>();

async function produce(topic: string, events: OutboundMessage[]): Promise<void> {
  for (let sent = 0; sent < events.length; sent += 500) {
    const slice = events.slice(sent, sent + 500);
    await producer.send(
      topic,
      'OutboundMessage',
      slice.map((e) => ({ key: e.messageId, value: e })),
    );
  }
}

/** Sends events at a steady rate, in ticks of 10 ms, noting each one's send time. */
async function producePaced(topic: string, events: OutboundMessage[], ratePerS: number): Promise<void> {
  const started = performance.now();
  let sent = 0;
  while (sent < events.length) {
    // At most 300 a request: a producer that fell behind must not exceed the broker's 1 MiB.
    const due = Math.min(
      events.length,
      sent + 300,
      Math.floor(((performance.now() - started) / 1000) * ratePerS) + 1,
    );
    if (due > sent) {
      const slice = events.slice(sent, due);
      const now = performance.now();
      for (const e of slice) sentAt.set(e.messageId, now);
      await producer.send(
        topic,
        'OutboundMessage',
        slice.map((e) => ({ key: e.messageId, value: e })),
      );
      sent = due;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Reads the chain's output live (read_committed): when each message id became readable there. */
async function followOutput(chain: Chain) {
  const arrived = new Map<string, number>();
  const follower = await followTopic<{ messageId: string }>(config, {
    topic: chain.topics[chain.topics.length - 1] as string,
    schema: chain.outputSchema,
    onRecord: (value) => arrived.set(value.messageId, performance.now()),
  });
  await follower.ready;
  return {
    arrived,
    /** Resolves once every id has arrived at the end of the chain. */
    async waitFor(ids: readonly string[], timeoutMs = 600_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (ids.some((id) => !arrived.has(id))) {
        if (Date.now() > deadline) throw new Error(`${chain.label}: events did not arrive in time`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: () => follower.stop(),
  };
}

/**
 * Each stage's delay per event, from the record timestamps (set by each stage's producer) on its
 * input and its output topic; read after the run, so that no live reader competes for the cores.
 */
async function stageDelayReader(chain: Chain, stages: readonly string[], total: number) {
  const timestamps = await Promise.all(
    chain.topics.map(async (topic) => {
      const records = await readTopic(config, { topic, count: total, timeoutMs: 300_000 });
      return new Map(records.map((r) => [r.key ?? '', r.timestamp]));
    }),
  );
  return (ids: readonly string[]) =>
    Object.fromEntries(
      stages.map((name, i) => [
        name,
        round1(
          median(ids.map((id) => (timestamps[i + 1]?.get(id) ?? Number.NaN) - (timestamps[i]?.get(id) ?? 0))),
        ),
      ]),
    );
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number);
const median = (values: readonly number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
const round1 = (n: number) => Math.round(n * 10) / 10;

interface AtLoad {
  load: number;
  events_per_s: number;
  p50_ms: number;
  p99_ms: number;
  cpu_us_per_event_total: number;
  /** Median delay per stage, from readable on its input to readable on its output. */
  stage_p50_ms: Record<string, number>;
}

interface Measured {
  capacity_events_per_s: number;
  cpu_us_per_event: Record<string, number>;
  cpu_us_per_event_total: number;
  loads: AtLoad[];
  steady_stage_ms: Record<string, number>;
  first_record_stage_ms: Record<string, number>;
  first_record_extra_ms_per_stage_max: number;
  first_record_end_to_end_ms: number;
}

async function measure(chain: Chain, prefix: string): Promise<Measured> {
  let stages: { name: string; process: ServiceProcess }[] = [];
  for (const stage of chain.stages) stages.push({ name: stage.name, process: await stage.start() });
  const input = chain.topics[0] as string;
  const cpuOf = () =>
    Promise.all(stages.map((s) => scrapeMetric(s.process.port, 'mailpools_process_cpu_seconds_total')));
  const processedByLast = () =>
    scrapeMetric(stages[stages.length - 1]?.process.port ?? 0, 'mailpools_stage_records_processed_total');
  const cpuPerEvent = (before: number[], after: number[], events: number) =>
    Object.fromEntries(
      stages.map((s, i) => [s.name, Math.round((((after[i] ?? 0) - (before[i] ?? 0)) * 1e6) / events)]),
    );
  const sum = (values: Record<string, number>) => Object.values(values).reduce((a, b) => a + b, 0);
  let n = 0;
  const next = (count: number, tag: string) =>
    Array.from({ length: count }, () => eventAt(n++, `${prefix}${tag}`));

  // Warm-up, not measured: every stage joins, fences its partitions and warms its JIT.
  await produce(input, next(WARM_UP_EVENTS, 'w'));
  await measureEventsPerSecond(`${chain.label} (warm-up)`, WARM_UP_EVENTS, processedByLast, 100);

  // Capacity: a backlog, from the first to the last event out of the last stage.
  const cpuBefore = await cpuOf();
  await produce(input, next(THROUGHPUT_EVENTS, 't'));
  const capacity = await measureEventsPerSecond(
    chain.label,
    THROUGHPUT_EVENTS,
    async () => (await processedByLast()) - WARM_UP_EVENTS,
    100,
  );
  const cpu = cpuPerEvent(cpuBefore, await cpuOf(), THROUGHPUT_EVENTS);

  const follower = await followOutput(chain);
  const end = follower.arrived;
  // Not measured: the reader has just joined and every stage has been idle since the backlog.
  const settle = next(Math.round(capacity * 0.25 * 3), 'settle');
  await producePaced(input, settle, capacity * 0.25);
  await follower.waitFor(settle.map((e) => e.messageId));
  const loads: (AtLoad & { ids: string[] })[] = [];
  for (const load of LOADS) {
    const rate = capacity * load;
    const events = next(Math.max(200, Math.round(rate * PACED_SECONDS)), `l${load}-`);
    const progress = progressBar(
      `${chain.label}: ${Math.round(rate)} events/s (${load * 100} %)`,
      events.length,
    );
    const before = await cpuOf();
    await producePaced(input, events, rate);
    await follower.waitFor(events.map((e) => e.messageId));
    progress.finish(events.length);
    const latencies = events
      .map((e) => (end.get(e.messageId) ?? 0) - (sentAt.get(e.messageId) ?? 0))
      .sort((a, b) => a - b);
    loads.push({
      load,
      events_per_s: Math.round(rate),
      p50_ms: round1(percentile(latencies, 0.5)),
      p99_ms: round1(percentile(latencies, 0.99)),
      cpu_us_per_event_total: sum(cpuPerEvent(before, await cpuOf(), events.length)),
      stage_p50_ms: {},
      ids: events.map((e) => e.messageId),
    });
  }
  const slow = next(20, 's');
  await producePaced(input, slow, 20);
  await follower.waitFor(slow.map((e) => e.messageId));

  // The first records after a restart of every stage: each one's partitions are newly assigned.
  await Promise.all(stages.map((s) => s.process.stop()));
  stages = await Promise.all(chain.stages.map(async (s) => ({ name: s.name, process: await s.start() })));
  const first = next(2 * PARTITIONS, 'f');
  const firstSent = performance.now();
  await producer.send(
    input,
    'OutboundMessage',
    first.map((e) => ({ key: e.messageId, value: e })),
  );
  const firstIds = first.map((e) => e.messageId);
  await follower.waitFor(firstIds);
  const firstEndToEnd = median(firstIds.map((id) => (end.get(id) ?? 0) - firstSent));
  await follower.stop();
  await Promise.all(stages.map((s) => s.process.stop()));

  const stageDelays = await stageDelayReader(
    chain,
    stages.map((s) => s.name),
    n,
  );
  for (const l of loads) l.stage_p50_ms = stageDelays(l.ids);
  const steady = stageDelays(slow.map((e) => e.messageId));
  const firstStages = stageDelays(firstIds);
  return {
    capacity_events_per_s: Math.round(capacity),
    cpu_us_per_event: cpu,
    cpu_us_per_event_total: sum(cpu),
    loads: loads.map(({ ids: _ids, ...l }) => l),
    steady_stage_ms: steady,
    first_record_stage_ms: firstStages,
    first_record_extra_ms_per_stage_max: round1(
      Math.max(...Object.keys(firstStages).map((k) => (firstStages[k] ?? 0) - (steady[k] ?? 0))),
    ),
    first_record_end_to_end_ms: round1(firstEndToEnd),
  };
}

await producer.ensureTopics(
  passthroughChain.topics.map((topic) => ({ topic, partitions: PARTITIONS, compacted: false })),
);
// BENCH_CHAINS=pipeline (or passthrough) measures one chain only, for a quicker look.
const only = process.env.BENCH_CHAINS;
const results: Record<string, Measured> = {};
if (!only || only === 'passthrough') results.passthrough = await measure(passthroughChain, 'c');
if (!only || only === 'pipeline') results.pipeline = await measure(pipeline, 'p');
await producer.close();
await dns.close();

console.log(
  `machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model ?? ''}; node ${process.version}; Kafka, Redis and ${SERVICES.length} stage processes share them`,
);
for (const [label, m] of Object.entries(results)) {
  console.log(`\n${label}: capacity ${m.capacity_events_per_s} events/s`);
  console.log('| load | events/s | p50 ms | p99 ms | stage CPU µs per event | p50 ms per stage |');
  console.log('|---:|---:|---:|---:|---:|---|');
  for (const l of m.loads)
    console.log(
      `| ${l.load * 100} % | ${l.events_per_s} | ${l.p50_ms} | ${l.p99_ms} | ${l.cpu_us_per_event_total} | ${Object.values(l.stage_p50_ms).join(' · ')} |`,
    );
  console.log('| stage | CPU µs per event at capacity | steady delay ms | first record after restart ms |');
  console.log('|---|---:|---:|---:|');
  for (const stage of Object.keys(m.cpu_us_per_event))
    console.log(
      `| ${stage} | ${m.cpu_us_per_event[stage]} | ${m.steady_stage_ms[stage]} | ${m.first_record_stage_ms[stage]} |`,
    );
  console.log(
    `| total | ${m.cpu_us_per_event_total} | | end to end ${m.first_record_end_to_end_ms} (worst stage +${m.first_record_extra_ms_per_stage_max}) |`,
  );
}
await releaseStack();
const snake = (record: Record<string, number>) =>
  Object.fromEntries(Object.entries(record).map(([k, v]) => [k.replace(/[- ]/g, '_'), v]));
const figures = (m: Measured) => ({
  capacity_events_per_s: m.capacity_events_per_s,
  ...Object.fromEntries(
    m.loads.flatMap((l) => [
      [`p50_ms_at_${l.load * 100}pct`, l.p50_ms],
      [`p99_ms_at_${l.load * 100}pct`, l.p99_ms],
      [`cpu_us_per_event_at_${l.load * 100}pct`, l.cpu_us_per_event_total],
    ]),
  ),
  cpu_us_per_event_total: m.cpu_us_per_event_total,
  cpu_us_per_event: snake(m.cpu_us_per_event),
  first_record_extra_ms_per_stage_max: m.first_record_extra_ms_per_stage_max,
  first_record_end_to_end_ms: m.first_record_end_to_end_ms,
});
console.log(JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, m]) => [k, figures(m)]))));
process.exit(0);
