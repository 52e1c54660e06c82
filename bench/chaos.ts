// npm run chaos — the whole pipeline with two replicas of every service on the local stack, fed
// seeded events and a few poison records, while instances are SIGKILLed and restarted, the Kafka
// broker and Redis are restarted, and the DNS server stops answering for a while. At the end it
// checks that every input has exactly one PoolAssignment (read_committed), that the limit counters
// equal the counts computed offline from the same events, and that the dead-letter topics hold
// exactly the poison records. Last line: one JSON object. CHAOS_EVENTS, CHAOS_POISON,
// CHAOS_KILLS, CHAOS_DNS_OUTAGE_S and CHAOS_FEED_S change the size; test/chaos.test.ts runs a
// shorter variant in CI.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  deadLetterTopic,
  loadRuntimeConfig,
  progressBar,
  STAGES,
  seededRandom,
  TOPICS,
} from '@mailpools/core';
import { limitCounterMismatches } from '@mailpools/limit-counter/offline';
import { createLimitStore, limitsPrefix } from '@mailpools/limit-counter/store';
import { type OutboundMessage, type PoolAssignment, Serde } from '@mailpools/schemas';
import { stackEndpoints, stackRestart, stackStatus, useLocalStack } from '@mailpools/stack';
import { createEventProducer, readTopic } from '@mailpools/stream';
import {
  type ServiceProcess,
  sampleEvent,
  scrapeMetric,
  startService,
  startTestDnsServer,
} from '@mailpools/testkit';
import { Redis } from 'ioredis';

export interface ChaosOptions {
  events: number;
  poison: number;
  replicas: number;
  /** SIGKILLs of random service instances (each restarted). */
  kills: number;
  restartKafka: boolean;
  restartRedis: boolean;
  dnsOutageMs: number;
  /** The platform submits the events over this long, so the faults land while mail flows. */
  feedSeconds: number;
  seed: number;
  log: (line: string) => void;
}

export interface ChaosReport {
  events: number;
  poison_injected: number;
  instances: number;
  kills: number;
  /** Kills while events were still being routed (not after the last one). */
  kills_while_routing: number;
  kafka_restarts: number;
  redis_restarts: number;
  dns_outage_s: number;
  unexpected_exits: number;
  assignments: number;
  lost: number;
  duplicates: number;
  counter_mismatches: number;
  poison_in_dlq: number;
  unexpected_in_dlq: number;
  duration_s: number;
  events_per_s: number;
  /** Back-pressure: the largest consumer lag each stage reached, and the largest process seen. */
  max_lag_records: Record<string, number>;
  peak_rss_mb: number;
  passed: boolean;
}

const SERVICES = STAGES.map((stage) => stage.service);
const TENANTS = 10;
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 16);

/** Seeded events: 10 tenants, 200 submitters, 30 hours of event time, inside every limit. */
function makeEvents(count: number, seed: number): OutboundMessage[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, index) => {
    const tenant = index % TENANTS;
    const submitter = `user${Math.floor(random() * 20)}@tenant${tenant}.chaos.test`;
    const external = Math.floor(random() * 6);
    const internal = Math.floor(random() * 4) + (external === 0 ? 1 : 0);
    return {
      ...sampleEvent(`chaos-${index}`, 300, T0 + Math.floor((index / count) * 30 * HOUR + random() * 60_000)),
      tenantId: `tenant${tenant}`,
      submitter,
      envelopeSender: submitter,
      fromHeader: submitter,
      clientIp: '198.51.100.7',
      messageClass: random() < 0.1 ? ('AUTO_REPLY' as const) : ('NORMAL' as const),
      recipients: [
        ...Array.from({ length: external }, (_, i) => ({
          address: `x${i}@else.example`,
          scope: 'EXTERNAL' as const,
        })),
        ...Array.from({ length: internal }, (_, i) => ({
          address: `i${i}@tenant${tenant}.chaos.test`,
          scope: 'INTERNAL' as const,
        })),
      ],
    };
  });
}

/** The stack's own parts, whatever REDIS_URL and DATABASE_URL say (they may point at them). */
const LOCAL = { redisUrl: null, databaseUrl: null, log: () => undefined };

/** The pipeline must run on the local stack, whose Kafka and Redis this run may restart. */
async function requireLocalStack(config: {
  kafkaBrokers: readonly string[];
  redisUrl: string;
}): Promise<void> {
  const local = stackEndpoints(LOCAL);
  const status = await stackStatus(LOCAL);
  const running = (part: string) => status.parts.some((p) => p.part === part && p.running && !p.external);
  if (
    config.kafkaBrokers.join(',') !== local.kafkaBrokers.join(',') ||
    config.redisUrl !== local.redisUrl ||
    !running('kafka') ||
    !running('redis')
  )
    throw new Error(
      `chaos restarts the local stack's Kafka and Redis, so it must run on them (${local.kafkaBrokers.join(',')}, ${local.redisUrl}): unset KAFKA_BROKERS and REDIS_URL, or point them there.`,
    );
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { log } = options;
  const releaseStack = await useLocalStack();
  const started = Date.now();
  const namespace = `chaos${randomUUID().slice(0, 6)}.`;
  const config = loadRuntimeConfig({ ...process.env, MAILPOOLS_NAMESPACE: namespace, LOG_LEVEL: 'error' });
  await requireLocalStack(config);
  const random = seededRandom(options.seed);
  const events = makeEvents(options.events, options.seed);
  const dns = await startTestDnsServer({
    zones: Object.fromEntries(
      Array.from({ length: TENANTS }, (_, i) => [
        `tenant${i}.chaos.test`,
        [
          { type: 'A' as const, data: `192.0.2.${i + 1}` },
          { type: 'MX' as const, data: { preference: 10, exchange: `mx.tenant${i}.chaos.test` } },
          { type: 'TXT' as const, data: 'v=spf1 ip4:198.51.100.0/24 -all' },
        ],
      ]),
    ),
  });
  const policyFile = join(mkdtempSync(join(tmpdir(), 'mailpools-chaos-')), 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({
      version: 'chaos-1',
      tenants: Object.fromEntries(
        Array.from({ length: TENANTS }, (_, i) => [`tenant${i}`, { directory: { licenses: 10_000 } }]),
      ),
    }),
  );
  const env = {
    MAILPOOLS_NAMESPACE: namespace,
    MAILPOOLS_PARTITIONS: '4',
    MAILPOOLS_POLICY_FILE: policyFile,
    MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}`,
    MAILPOOLS_DNS_TIMEOUT_MS: '300',
    // Cache answers for a second only, so the DNS outage is felt rather than hidden by the cache.
    MAILPOOLS_DNS_MAX_TTL_S: '1',
    MAILPOOLS_DNS_MAX_NEGATIVE_TTL_S: '1',
    // A SIGKILLed member holds its partitions until its session expires: 10 s, not the default 30 s.
    MAILPOOLS_SESSION_TIMEOUT_MS: '10000',
    // Replicas drift apart in event time while they catch up after kills: keep every event at its own time.
    MAILPOOLS_LIMITS_GRACE_S: String(2 * 86_400),
    LOG_LEVEL: 'error',
  };

  // Every instance is supervised like `restart: on-failure`: an exit we did not cause is counted and restarted.
  const instances: { name: string; process: ServiceProcess; killed: boolean }[] = [];
  let unexpectedExits = 0;
  let stopping = false;
  // Starts still under way; the end waits for them, so that no instance outlives the run.
  const launching = new Set<Promise<void>>();
  // Restarts after kills and the DNS outage, which run while the schedule goes on.
  const background: Promise<void>[] = [];
  function launch(name: string, slot?: number): Promise<void> {
    const started = (async () => {
      const process = await startService(name, env, 120_000);
      const instance = { name, process, killed: false };
      if (slot === undefined) instances.push(instance);
      else instances[slot] = instance;
      process.child.once('exit', () => {
        if (stopping || instance.killed) return;
        unexpectedExits++;
        log(`chaos: ${name} exited on its own (code ${process.child.exitCode}); restarting it`);
        launch(name, instances.indexOf(instance)).catch((error: Error) =>
          log(`chaos: ${name} did not come back: ${error.message}`),
        );
      });
    })();
    launching.add(started);
    void started.finally(() => launching.delete(started)).catch(() => undefined);
    return started;
  }

  const producer = await createEventProducer(config);
  const submitted = `${namespace}${TOPICS.submitted}`;
  const poisonKeys = Array.from({ length: options.poison }, (_, i) => `poison-${i}`);
  const report: ChaosReport = {
    events: options.events,
    poison_injected: options.poison,
    instances: SERVICES.length * options.replicas,
    kills: 0,
    kills_while_routing: 0,
    kafka_restarts: 0,
    redis_restarts: 0,
    dns_outage_s: 0,
    unexpected_exits: 0,
    assignments: 0,
    lost: 0,
    duplicates: 0,
    counter_mismatches: 0,
    poison_in_dlq: 0,
    unexpected_in_dlq: 0,
    duration_s: 0,
    events_per_s: 0,
    max_lag_records: {},
    peak_rss_mb: 0,
    passed: false,
  };
  // Every 2 s: each instance's consumer lag and resident memory, from its own /metrics.
  const sampler = setInterval(() => {
    for (const { name, process: instance } of instances) {
      void Promise.all([
        scrapeMetric(instance.port, 'mailpools_stage_consumer_lag_records'),
        scrapeMetric(instance.port, 'mailpools_process_resident_memory_bytes'),
      ]).then(
        ([lag, rss]) => {
          report.max_lag_records[name] = Math.max(report.max_lag_records[name] ?? 0, lag);
          report.peak_rss_mb = Math.max(report.peak_rss_mb, Math.round(rss / 1024 / 1024));
        },
        () => undefined, // an instance being killed or restarted
      );
    }
  }, 2_000);
  try {
    log(`chaos: starting ${options.replicas} replicas of ${SERVICES.length} services`);
    await producer.ensureTopics([{ topic: submitted, partitions: 4, compacted: false }]);
    const starts = await Promise.allSettled(
      SERVICES.flatMap((name) => Array.from({ length: options.replicas }, () => launch(name))),
    );
    for (const start of starts) if (start.status === 'rejected') throw start.reason;

    // The platform's submissions, paced; paused (between sends, never inside one) while the broker
    // restarts, as a careful producer would, so that no input is sent twice.
    log(
      `chaos: ${options.events} events and ${options.poison} poison records into ${submitted} over ${options.feedSeconds} s`,
    );
    let feedPaused = false;
    let feedIdle = Promise.resolve();
    const feed = (async () => {
      const chunk = Math.max(50, Math.round(options.events / (options.feedSeconds * 4)));
      const feedStarted = Date.now();
      for (let at = 0, p = 0; at < events.length; at += chunk) {
        while (feedPaused) await new Promise((r) => setTimeout(r, 100));
        let sent: () => void = () => undefined;
        feedIdle = new Promise((r) => {
          sent = r;
        });
        const slice = events.slice(at, at + chunk);
        await producer.send(
          submitted,
          'OutboundMessage',
          slice.map((e) => ({ key: e.messageId, value: e })),
        );
        while (
          p < poisonKeys.length &&
          (p + 1) / (poisonKeys.length + 1) <= (at + slice.length) / events.length
        ) {
          await producer.sendRaw(submitted, [
            { key: poisonKeys[p] as string, value: Buffer.from(`poison ${p}: not Avro`) },
          ]);
          p++;
        }
        sent();
        const due = feedStarted + ((at + slice.length) / events.length) * options.feedSeconds * 1000;
        await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
      }
    })();
    feed.catch(() => undefined); // awaited below; this only keeps an early failure from being "unhandled"

    let routedSoFar = 0;
    const routedTopic = `${namespace}${TOPICS.routed}`;
    const firstPass = readTopic(config, {
      topic: routedTopic,
      count: options.events,
      timeoutMs: 30 * 60_000,
      idleMs: 30 * 60_000,
      distinctKeys: true,
      onProgress: (n) => {
        routedSoFar = n;
      },
    });
    const progress = progressBar('routed', options.events);
    const ticker = setInterval(() => progress.update(routedSoFar), 1_000);
    const reached = async (share: number) => {
      while (routedSoFar < share * options.events) await new Promise((r) => setTimeout(r, 200));
    };

    // The faults, spread over the run by progress.
    const faults: { at: number; run: () => Promise<void> }[] = [];
    // A kill does not wait for its victim to come back: the schedule goes on while it restarts.
    for (let k = 0; k < options.kills; k++)
      faults.push({
        at: 0.05 + (0.7 * k) / Math.max(1, options.kills),
        run: async () => {
          const alive = instances.flatMap((instance, slot) => (instance.killed ? [] : [{ instance, slot }]));
          const pick = alive[Math.floor(random() * alive.length)];
          if (!pick) return;
          const { instance: victim, slot } = pick;
          victim.killed = true;
          victim.process.child.kill('SIGKILL');
          report.kills++;
          if (routedSoFar < options.events) report.kills_while_routing++;
          log(`chaos: SIGKILL ${victim.name} (pid ${victim.process.child.pid})`);
          background.push(
            (async () => {
              await new Promise((r) => setTimeout(r, 500));
              await launch(victim.name, slot);
            })(),
          );
        },
      });
    if (options.restartKafka)
      faults.push({
        at: 0.3,
        run: async () => {
          log('chaos: restarting the Kafka broker');
          feedPaused = true;
          await feedIdle;
          try {
            await stackRestart('kafka', LOCAL);
          } finally {
            feedPaused = false;
          }
          report.kafka_restarts++;
        },
      });
    if (options.restartRedis)
      faults.push({
        at: 0.5,
        run: async () => {
          log('chaos: restarting Redis');
          await stackRestart('redis', LOCAL);
          report.redis_restarts++;
        },
      });
    if (options.dnsOutageMs > 0)
      faults.push({
        at: 0.6,
        run: async () => {
          log(`chaos: the DNS server stops answering for ${options.dnsOutageMs / 1000} s`);
          dns.setMode('*', 'silent');
          background.push(
            (async () => {
              await new Promise((r) => setTimeout(r, options.dnsOutageMs));
              dns.setMode('*', 'normal');
              report.dns_outage_s = options.dnsOutageMs / 1000;
            })(),
          );
        },
      });
    faults.sort((a, b) => a.at - b.at);
    for (const fault of faults) {
      await reached(fault.at);
      await fault.run();
    }
    await Promise.all(background);

    await feed;
    await firstPass;
    clearInterval(ticker);
    progress.finish(routedSoFar);

    // The verdict, read committed: everything that reached the routed topic, after it went quiet.
    const routed = await readTopic(config, { topic: routedTopic, idleMs: 5_000, timeoutMs: 120_000 });
    const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
    const seen = new Map<string, number>();
    for (const record of routed) {
      const assignment = await serde.decode<PoolAssignment>('PoolAssignment', record.value as Buffer);
      seen.set(assignment.messageId, (seen.get(assignment.messageId) ?? 0) + 1);
    }
    report.assignments = routed.length;
    report.lost = events.filter((e) => !seen.has(e.messageId)).length;
    report.duplicates = [...seen.values()].reduce((n, c) => n + (c - 1), 0);

    const deadLetters = [];
    // Every stage input has a dead-letter topic; routed feeds two stages but has one.
    for (const topic of new Set(STAGES.map((stage) => TOPICS[stage.input])))
      deadLetters.push(
        ...(await readTopic(config, {
          topic: deadLetterTopic(`${namespace}${topic}`),
          idleMs: 1_000,
          timeoutMs: 30_000,
        })),
      );
    const poisonSet = new Set(poisonKeys);
    report.poison_in_dlq = new Set(
      deadLetters.filter((r) => poisonSet.has(r.key ?? '')).map((r) => r.key),
    ).size;
    report.unexpected_in_dlq = deadLetters.length - report.poison_in_dlq;

    const redis = new Redis(config.redisUrl);
    try {
      const store = createLimitStore(redis, {
        prefix: limitsPrefix(namespace),
        graceMs: 2 * 86_400_000,
        dedupTtlSeconds: 3_600,
        maxDeferMinutes: 1_440,
      });
      const mismatches = await limitCounterMismatches(events, store.usage);
      for (const line of mismatches.slice(0, 10)) log(`chaos: counter mismatch ${line}`);
      report.counter_mismatches = mismatches.length;
    } finally {
      redis.disconnect();
    }
  } finally {
    clearInterval(sampler);
    await Promise.allSettled(background);
    stopping = true;
    await Promise.allSettled([...launching]);
    await Promise.all(instances.map((i) => i.process.stop()));
    await producer.close();
    await dns.close();
    await releaseStack();
  }
  report.unexpected_exits = unexpectedExits;
  report.duration_s = Math.round((Date.now() - started) / 1000);
  report.events_per_s = Math.round(options.events / report.duration_s);
  report.passed =
    report.lost === 0 &&
    report.duplicates === 0 &&
    report.counter_mismatches === 0 &&
    report.poison_in_dlq === options.poison &&
    report.unexpected_in_dlq === 0 &&
    report.assignments === options.events;
  return report;
}

export function printChaosReport(report: ChaosReport, log: (line: string) => void): void {
  log('');
  log('| fault or check | figure |');
  log('|---|---|');
  log(`| events | ${report.events} (through ${report.instances} service instances) |`);
  log(
    `| instances SIGKILLed and restarted | ${report.kills} (${report.kills_while_routing} while routing) |`,
  );
  log(`| Kafka broker restarts | ${report.kafka_restarts} |`);
  log(`| Redis restarts | ${report.redis_restarts} |`);
  log(`| DNS server unresponsive | ${report.dns_outage_s} s |`);
  log(`| instances that exited on their own | ${report.unexpected_exits} |`);
  log(`| events lost | ${report.lost} |`);
  log(`| duplicate assignments | ${report.duplicates} |`);
  log(`| counter mismatches | ${report.counter_mismatches} |`);
  log(`| poison records in the DLQ | ${report.poison_in_dlq} of ${report.poison_injected} |`);
  log(`| anything else in a DLQ | ${report.unexpected_in_dlq} |`);
  log(`| duration | ${report.duration_s} s (${report.events_per_s} events/s) |`);
  log(`| largest consumer lag per stage | ${JSON.stringify(report.max_lag_records)} |`);
  log(`| peak resident memory of one process | ${report.peak_rss_mb} MB |`);
  log(report.passed ? 'chaos: PASSED' : 'chaos: FAILED');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const log = (line: string) => console.error(line);
  const report = await runChaos({
    events: Number(process.env.CHAOS_EVENTS ?? 100_000),
    poison: Number(process.env.CHAOS_POISON ?? 25),
    replicas: 2,
    kills: Number(process.env.CHAOS_KILLS ?? 12),
    restartKafka: true,
    restartRedis: true,
    dnsOutageMs: Number(process.env.CHAOS_DNS_OUTAGE_S ?? 30) * 1000,
    feedSeconds: Number(process.env.CHAOS_FEED_S ?? 240),
    seed: 2026,
    log,
  });
  printChaosReport(report, log);
  console.log(JSON.stringify(report));
  process.exit(report.passed ? 0 : 1);
}
