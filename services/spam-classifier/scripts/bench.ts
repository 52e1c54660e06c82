// npm run bench:spam — messages/s on one core through the service's own classifyBatch():
// MIME parsing, features, model, and the submitters' profiles in Redis, in batches of 100 as the
// stage gets them (one profile script call per batch). messages/s per core: messages over this
// process's CPU time for the batches (the profile script runs on Redis's core; its call time is
// reported on its own). A message's cost for p50/p99: its own content time plus its share of its
// batch's profile call. Redis: REDIS_URL, else 127.0.0.1:6379;
// the profiles live under a fresh namespace that is deleted afterwards. Last line: one JSON object.
import { randomUUID } from 'node:crypto';
import { withRedis } from '@mailpools/core';
import { DEFAULT_POLICY } from '@mailpools/policy';
import { type OutboundMessage, unenriched } from '@mailpools/schemas';
import { classifyBatch, DEFAULT_EXTRACT, DEFAULT_MODEL_PATH } from '../src/classify.ts';
import { loadCorpus, signalsOf } from '../src/corpus.ts';
import { loadModel } from '../src/model.ts';
import { loadModernCorpus } from '../src/modern.ts';
import { createProfileStore, spamPrefix } from '../src/profile.ts';

const BATCH = 100;
const SENDERS = 500;
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const messages = [
  ...loadCorpus().map((m) => ({ raw: m.raw, addresses: signalsOf(m.raw).recipientAddresses })),
  ...loadModernCorpus().map((m) => ({ raw: m.raw, addresses: m.signals.recipientAddresses })),
];
const events: OutboundMessage[] = messages.map((m, i) => {
  const sender = `sender${i % SENDERS}@tenant${i % 20}.example`;
  return {
    messageId: `bench-${i}`,
    tenantId: `tenant${i % 20}`,
    eventTime: Date.UTC(2026, 10, 1) + i * 1_000,
    submitter: sender,
    envelopeSender: sender,
    fromHeader: sender,
    recipients: m.addresses.map((address) => ({ address, scope: 'EXTERNAL' as const })),
    clientIp: '127.0.0.1',
    helo: 'localhost',
    connector: null,
    origin: 'CLIENT_SUBMISSION',
    messageClass: 'NORMAL',
    dsn: null,
    raw: m.raw,
    rawTruncated: false,
    rawSize: m.raw.length,
    ...unenriched(),
  };
});

await withRedis(redisUrl, async (redis) => {
  const prefix = spamPrefix(`bench${randomUUID().slice(0, 8)}.`);
  const store = createProfileStore(redis, { prefix, dedupTtlSeconds: 3_600, keyTtlSeconds: 3_600 });
  const deps = {
    model: loadModel(DEFAULT_MODEL_PATH),
    policy: () => DEFAULT_POLICY,
    extract: DEFAULT_EXTRACT,
  };
  // The profile call timed on its own, wrapped around the store the classifier uses.
  let profileMs = 0;
  const timedStore = {
    ...store,
    async observe(inputs: Parameters<typeof store.observe>[0]) {
      const t0 = performance.now();
      try {
        return await store.observe(inputs);
      } finally {
        profileMs = performance.now() - t0;
      }
    },
  };
  const profiled = { ...deps, profiles: timedStore };
  try {
    // Warm-up: the JIT, and profiles that already have a history (the second pass hits them).
    for (let i = 0; i < 1_000; i += BATCH) await classifyBatch(events.slice(i, i + BATCH), profiled);
    const latencies: number[] = [];
    const profileCalls: number[] = [];
    let profileTotal = 0;
    const started = performance.now();
    let batchCpuUs = 0;
    let batchMessages = 0;
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < events.length; i += BATCH) {
        const batch = events.slice(i, i + BATCH).map((e) => ({ ...e, messageId: `${e.messageId}-${pass}` }));
        // Content time per message: the same classifier without the profile, message by message.
        const content: number[] = [];
        for (const event of batch) {
          const t0 = performance.now();
          await classifyBatch([event], deps);
          content.push(performance.now() - t0);
        }
        // Then the batch as the stage runs it; this process's CPU is what a core pays for it
        // (Redis runs the profile script on its own core: reported as the call's time).
        profileMs = 0;
        const cpu = process.cpuUsage();
        await classifyBatch(batch, profiled);
        const used = process.cpuUsage(cpu);
        batchCpuUs += used.user + used.system;
        batchMessages += batch.length;
        profileCalls.push(profileMs);
        profileTotal += profileMs;
        for (const ms of content) latencies.push(ms + profileMs / batch.length);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    profileCalls.sort((a, b) => a - b);
    const pct = (list: number[], p: number) =>
      list[Math.min(list.length - 1, Math.floor(p * list.length))] ?? 0;
    const rate = batchMessages / (batchCpuUs / 1e6);
    console.error(
      `scored ${latencies.length} messages (corpus and modern set, ${SENDERS} submitters) in batches of ${BATCH} in ${seconds.toFixed(1)} s`,
    );
    console.log(
      `| messages/s per core | cost p50 ms | cost p99 ms | profile call p50 ms | profile call p99 ms | profile µs per message |\n|---:|---:|---:|---:|---:|---:|\n| ${Math.round(rate)} | ${pct(latencies, 0.5).toFixed(3)} | ${pct(latencies, 0.99).toFixed(3)} | ${pct(profileCalls, 0.5).toFixed(2)} | ${pct(profileCalls, 0.99).toFixed(2)} | ${((profileTotal / latencies.length) * 1000).toFixed(1)} |`,
    );
    console.log(
      JSON.stringify({
        messages_per_s_per_core: Math.round(rate),
        p50_ms: Number(pct(latencies, 0.5).toFixed(3)),
        p99_ms: Number(pct(latencies, 0.99).toFixed(3)),
        cpu_us_per_message: Math.round(batchCpuUs / batchMessages),
        profile_call_p99_ms: Number(pct(profileCalls, 0.99).toFixed(3)),
        profile_us_per_message: Number(((profileTotal / latencies.length) * 1000).toFixed(1)),
        batch: BATCH,
        messages: latencies.length,
      }),
    );
  } finally {
    const keys = await redis.keys(`${prefix}*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
  }
});
