// npm run bench:dns — in one run, against a real DNS server on loopback and real Redis:
// (a) lookups/s answered from the in-process LRU, (b) latency of misses (every lookup a new name,
// over UDP), (c) the cache hit ratio while replaying 100,000 events whose sender domains are
// drawn from 5,000 domains (Zipf-skewed, as real senders are), through dns-checker's own enrich().
// Last line: one JSON object.
import { randomUUID } from 'node:crypto';
import { loadRuntimeConfig, progressBar, seededRandom } from '@mailpools/core';
import { Resolver } from '@mailpools/dns';
import { useLocalStack } from '@mailpools/stack';
import { sampleEvent, startTestDnsServer, type TestZones } from '@mailpools/testkit';
import { Redis } from 'ioredis';
import { checkDomain, enrich } from '../src/check.ts';

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 5_000);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const HIT_LOOKUPS = 1_000_000;
const MISSES = 5_000;
const CONCURRENCY = 64; // events in flight, as in one consumed batch

const releaseStack = await useLocalStack();

const domainName = (i: number) => `d${i}.bench.example`;
const zones: TestZones = {};
for (let i = 0; i < DOMAINS; i++) {
  // One in twenty sender domains has no records at all (NXDOMAIN), one in ten no MX (NODATA).
  if (i % 20 === 19) continue;
  zones[domainName(i)] = [
    { type: 'A', data: `192.0.2.${i % 250}`, ttl: 3600 },
    ...(i % 10 === 9
      ? []
      : [{ type: 'MX' as const, data: { preference: 10, exchange: `mx.${domainName(i)}` } }]),
  ];
}
for (let i = 0; i < MISSES; i++) zones[`miss${i}.bench.example`] = [{ type: 'A', data: '192.0.2.1' }];
const server = await startTestDnsServer({ zones, negativeTtl: 3600 });
const transport = { servers: [{ host: server.host, port: server.port }], timeoutMs: 2_000, attempts: 2 };
const cacheLimits = { cacheSize: 100_000, maxTtlSeconds: 86_400, maxNegativeTtlSeconds: 3_600 };
const redis = new Redis(loadRuntimeConfig().redisUrl);
const redisPrefix = `mailpools:bench:${randomUUID().slice(0, 8)}:`;

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;

// (a) Cache hits: every name already in the LRU.
const hot = new Resolver({ ...transport, ...cacheLimits });
for (let i = 0; i < 1_000; i++) await hot.lookup(domainName(i), 'A');
let started = performance.now();
for (let i = 0; i < HIT_LOOKUPS; i++) await hot.lookup(domainName(i % 1_000), 'A');
const hitLookupsPerS = HIT_LOOKUPS / ((performance.now() - started) / 1000);
started = performance.now();
for (let i = 0; i < HIT_LOOKUPS / 3; i++) await checkDomain(domainName(i % 1_000), hot);
const hitVerdictsPerS = HIT_LOOKUPS / 3 / ((performance.now() - started) / 1000);

// (b) Misses: one at a time, so each is a full round trip to the server (UDP, no cache anywhere).
const cold = new Resolver({ ...transport, ...cacheLimits, cacheSize: 0 });
const missTimes: number[] = [];
for (let i = 0; i < MISSES; i++) {
  const t0 = performance.now();
  await cold.lookup(`miss${i}.bench.example`, 'A');
  missTimes.push(performance.now() - t0);
}
missTimes.sort((a, b) => a - b);

// (c) Replay: Zipf(s = 1) over the domains, with the same seed every run.
const random = seededRandom(42);
const weights = Array.from({ length: DOMAINS }, (_, i) => 1 / (i + 1));
const cumulative: number[] = [];
weights.reduce((sum, w, i) => {
  cumulative[i] = sum + w;
  return sum + w;
}, 0);
const total = cumulative[DOMAINS - 1] ?? 1;
const drawDomain = (): string => {
  const target = random() * total;
  let lo = 0;
  let hi = DOMAINS - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cumulative[mid] ?? 0) < target) lo = mid + 1;
    else hi = mid;
  }
  return domainName(lo);
};
const template = sampleEvent('bench');
// Two replicas share Redis, each with its own LRU; events alternate between them by batch.
const replicas = [0, 1].map(() => new Resolver({ ...transport, ...cacheLimits, redis, redisPrefix }));
const distinct = new Set<string>();
const progress = progressBar('replaying events', EVENTS);
started = performance.now();
for (let sent = 0; sent < EVENTS; sent += CONCURRENCY) {
  const resolver = replicas[(sent / CONCURRENCY) % 2] as Resolver;
  const batch = Array.from({ length: Math.min(CONCURRENCY, EVENTS - sent) }, (_, i) => {
    const domain = drawDomain();
    distinct.add(domain);
    const sender = `user${i}@${domain}`;
    return enrich(
      { ...template, messageId: `m${sent + i}`, envelopeSender: sender, fromHeader: sender },
      resolver,
    );
  });
  await Promise.all(batch);
  if (sent % 10_000 === 0) progress.update(sent);
}
progress.finish(EVENTS);
const replaySeconds = (performance.now() - started) / 1000;
const sum = (key: 'lruHits' | 'redisHits' | 'misses' | 'coalesced' | 'temporaryFailures') =>
  replicas.reduce((n, r) => n + r.stats[key], 0);
const lookups = sum('lruHits') + sum('redisHits') + sum('misses') + sum('coalesced');
const hitRatio = (lookups - sum('misses')) / lookups;

const keys = await redis.keys(`${redisPrefix}*`);
if (keys.length > 0) await redis.del(...keys);
redis.disconnect();
await server.close();

const figures = {
  cache_hit_lookups_per_s: Math.round(hitLookupsPerS),
  cache_hit_verdicts_per_s: Math.round(hitVerdictsPerS),
  miss_p50_ms: Number(percentile(missTimes, 0.5).toFixed(3)),
  miss_p99_ms: Number(percentile(missTimes, 0.99).toFixed(3)),
  replay_events: EVENTS,
  replay_distinct_domains: distinct.size,
  replay_hit_ratio: Number(hitRatio.toFixed(4)),
  replay_lru_hits: sum('lruHits'),
  replay_redis_hits: sum('redisHits'),
  replay_coalesced: sum('coalesced'),
  replay_misses: sum('misses'),
  replay_temporary_failures: sum('temporaryFailures'),
  replay_events_per_s: Math.round(EVENTS / replaySeconds),
};
console.log(
  [
    '| cache-hit lookups/s | cache-hit verdicts/s (3 lookups) | miss p50 ms | miss p99 ms | replay hit ratio | replay events/s |',
    '|---:|---:|---:|---:|---:|---:|',
    `| ${figures.cache_hit_lookups_per_s} | ${figures.cache_hit_verdicts_per_s} | ${figures.miss_p50_ms} | ${figures.miss_p99_ms} | ${figures.replay_hit_ratio} | ${figures.replay_events_per_s} |`,
  ].join('\n'),
);
await releaseStack();
console.log(JSON.stringify(figures));
