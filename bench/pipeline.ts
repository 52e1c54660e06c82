// npm run bench:pipeline — in one run on one broker: the full pipeline (spam-classifier,
// limit-counter, dns-checker, auth-verifier, pool-router, each its own process) beside a chain of
// as many pass-through stages (decode/encode only), on the same events. For each: events/s
// through a backlog, then latency (first input to last output) at half that rate, and CPU
// microseconds per event of every stage from its own metrics. Last line: one JSON object.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadRuntimeConfig, progressBar, TOPICS } from '@mailpools/core';
import type { OutboundMessage } from '@mailpools/schemas';
import { useLocalStack } from '@mailpools/stack';
import { createEventProducer, readTopic } from '@mailpools/stream';
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
const LATENCY_EVENTS = Number(process.env.BENCH_LATENCY_EVENTS ?? 1_500);
const WARM_UP_EVENTS = 600;
const PARTITIONS = 3;
const SERVICES = ['spam-classifier', 'limit-counter', 'dns-checker', 'auth-verifier', 'pool-router'];
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
  readonly input: string;
  readonly output: string;
  readonly stages: { name: string; process: ServiceProcess }[];
}

async function startPipeline(): Promise<Chain> {
  const env = {
    MAILPOOLS_NAMESPACE: namespace,
    MAILPOOLS_PARTITIONS: String(PARTITIONS),
    MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}`,
    LOG_LEVEL: 'warn',
  };
  const stages = [];
  for (const name of SERVICES) stages.push({ name, process: await startService(name, env) });
  return {
    label: 'pipeline',
    input: `${namespace}${TOPICS.submitted}`,
    output: `${namespace}${TOPICS.routed}`,
    stages,
  };
}

async function startPassthroughChain(): Promise<Chain> {
  const topic = (i: number) => `${namespace}chain.${i}`;
  const stages = [];
  for (let i = 0; i < SERVICES.length; i++) {
    const process = await startStageProcess(PASSTHROUGH, {
      MAILPOOLS_NAMESPACE: `${namespace}pt${i}.`,
      MAILPOOLS_PARTITIONS: String(PARTITIONS),
      PASSTHROUGH_INPUT: topic(i),
      PASSTHROUGH_OUTPUT: topic(i + 1),
      LOG_LEVEL: 'warn',
    });
    stages.push({ name: `pass-through ${i + 1}`, process });
  }
  return { label: 'pass-through chain', input: topic(0), output: topic(SERVICES.length), stages };
}

const producer = await createEventProducer(config);
async function produce(topic: string, events: OutboundMessage[], ratePerS?: number): Promise<void> {
  const chunk = ratePerS ? Math.max(1, Math.round(ratePerS / 20)) : 500;
  for (let sent = 0; sent < events.length; sent += chunk) {
    const started = Date.now();
    const slice = events.slice(sent, sent + chunk);
    await producer.send(
      topic,
      'OutboundMessage',
      slice.map((e) => ({ key: e.messageId, value: e })),
    );
    if (ratePerS)
      await new Promise((r) =>
        setTimeout(r, Math.max(0, (slice.length / ratePerS) * 1000 - (Date.now() - started))),
      );
  }
}

const cpuSeconds = (stage: ServiceProcess) => scrapeMetric(stage.port, 'mailpools_process_cpu_seconds_total');
const processed = (stage: ServiceProcess) =>
  scrapeMetric(stage.port, 'mailpools_stage_records_processed_total');

interface Measured {
  events_per_s: number;
  p50_ms: number;
  p99_ms: number;
  cpu_us_per_event: Record<string, number>;
}

async function measure(chain: Chain, prefix: string): Promise<Measured> {
  const last = chain.stages[chain.stages.length - 1]?.process as ServiceProcess;
  // Warm-up, not measured: every stage joins, fences each partition's transactional id and
  // re-reads its committed offset (a second per partition), and the JIT warms. Steady state is
  // what the ratio compares.
  const warmUp = Array.from({ length: WARM_UP_EVENTS }, (_, i) => eventAt(i, `${prefix}w`));
  await produce(chain.input, warmUp);
  await measureEventsPerSecond(`${chain.label} (warm-up)`, WARM_UP_EVENTS, () => processed(last), 100);
  const cpuBefore = await Promise.all(chain.stages.map((s) => cpuSeconds(s.process)));
  const backlog = Array.from({ length: THROUGHPUT_EVENTS }, (_, i) => eventAt(i, `${prefix}t`));
  await produce(chain.input, backlog);
  const rate = await measureEventsPerSecond(
    chain.label,
    THROUGHPUT_EVENTS,
    async () => (await processed(last)) - WARM_UP_EVENTS,
    100,
  );
  const cpuAfter = await Promise.all(chain.stages.map((s) => cpuSeconds(s.process)));
  const cpu: Record<string, number> = {};
  chain.stages.forEach((s, i) => {
    cpu[s.name] = Math.round((((cpuAfter[i] ?? 0) - (cpuBefore[i] ?? 0)) * 1e6) / THROUGHPUT_EVENTS);
  });
  // Latency at half the throughput: the input's produce time to the output's, per event.
  const paced = Array.from({ length: LATENCY_EVENTS }, (_, i) =>
    eventAt(THROUGHPUT_EVENTS + i, `${prefix}l`),
  );
  const progress = progressBar(`${chain.label}: latency at ${Math.round(rate / 2)} events/s`, LATENCY_EVENTS);
  await produce(chain.input, paced, rate / 2);
  progress.finish(LATENCY_EVENTS);
  const total = WARM_UP_EVENTS + THROUGHPUT_EVENTS + LATENCY_EVENTS;
  const [inputs, outputs] = await Promise.all([
    readTopic(config, { topic: chain.input, count: total, timeoutMs: 600_000 }),
    readTopic(config, { topic: chain.output, count: total, timeoutMs: 600_000 }),
  ]);
  const sentAt = new Map(inputs.map((r) => [r.key, r.timestamp]));
  const latencies = outputs
    .filter((r) => r.key?.startsWith(`${prefix}l`))
    .map((r) => r.timestamp - (sentAt.get(r.key) ?? r.timestamp))
    .sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return { events_per_s: Math.round(rate), p50_ms: pct(0.5), p99_ms: pct(0.99), cpu_us_per_event: cpu };
}

await producer.ensureTopics(
  Array.from({ length: SERVICES.length + 1 }, (_, i) => ({
    topic: `${namespace}chain.${i}`,
    partitions: PARTITIONS,
    compacted: false,
  })),
);
const results: Record<string, Measured> = {};
for (const start of [startPassthroughChain, startPipeline]) {
  const chain = await start();
  try {
    results[chain.label] = await measure(chain, chain.label === 'pipeline' ? 'p' : 'c');
  } finally {
    for (const stage of chain.stages) await stage.process.stop();
  }
}
await producer.close();
await dns.close();

const pipeline = results.pipeline as Measured;
const chain = results['pass-through chain'] as Measured;
const ratio = pipeline.events_per_s / chain.events_per_s;
console.log(
  `machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB; node ${process.version}; Kafka, Redis and ${SERVICES.length} stage processes share them`,
);
console.log('| chain | events/s | vs pass-through chain | p50 ms | p99 ms |');
console.log('|---|---:|---:|---:|---:|');
console.log(
  `| pass-through chain (${SERVICES.length} stages) | ${chain.events_per_s} | 1.00 | ${chain.p50_ms} | ${chain.p99_ms} |`,
);
console.log(
  `| pipeline | ${pipeline.events_per_s} | ${ratio.toFixed(2)} | ${pipeline.p50_ms} | ${pipeline.p99_ms} |`,
);
console.log('| stage | CPU µs per event |');
console.log('|---|---:|');
for (const [stage, us] of Object.entries({ ...chain.cpu_us_per_event, ...pipeline.cpu_us_per_event }))
  console.log(`| ${stage} | ${us} |`);
await releaseStack();
console.log(
  JSON.stringify({
    events: THROUGHPUT_EVENTS,
    pipeline_events_per_s: pipeline.events_per_s,
    passthrough_chain_events_per_s: chain.events_per_s,
    ratio_vs_passthrough: Number(ratio.toFixed(3)),
    pipeline_p50_ms: pipeline.p50_ms,
    pipeline_p99_ms: pipeline.p99_ms,
    passthrough_p50_ms: chain.p50_ms,
    passthrough_p99_ms: chain.p99_ms,
    cpu_us_per_event: Object.fromEntries(
      Object.entries(pipeline.cpu_us_per_event).map(([k, v]) => [k.replace(/-/g, '_'), v]),
    ),
    passthrough_cpu_us_per_event: Object.values(chain.cpu_us_per_event),
  }),
);
process.exit(0);
