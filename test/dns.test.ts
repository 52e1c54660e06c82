// The shared resolver (libs/dns) against a real DNS server on loopback, with the real Redis.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Resolver, ResolverOptions } from '@mailpools/dns';
import { loopbackResolver, startTestDnsServer, type TestDnsServer } from '@mailpools/testkit';
import { Redis } from 'ioredis';
import { checkDomain } from '../services/dns-checker/src/check.ts';

let server: TestDnsServer;
let redis: Redis;
const zones = {
  'mail.test': [
    { type: 'A' as const, data: '192.0.2.10', ttl: 120 },
    { type: 'AAAA' as const, data: '2001:db8::10', ttl: 120 },
    { type: 'MX' as const, data: { preference: 10, exchange: 'mx.mail.test' }, ttl: 60 },
  ],
  'nullmx.test': [
    { type: 'A' as const, data: '192.0.2.11' },
    { type: 'MX' as const, data: { preference: 0, exchange: '.' } },
  ],
  'mxonly.test': [{ type: 'MX' as const, data: { preference: 5, exchange: 'mx.elsewhere.test' } }],
  'big.test': Array.from({ length: 60 }, (_, i) => ({ type: 'A' as const, data: `198.51.100.${i + 1}` })),
  'short.test': [{ type: 'A' as const, data: '192.0.2.12', ttl: 2 }],
};

function resolver(overrides: Partial<ResolverOptions> = {}): Resolver {
  return loopbackResolver(server, {
    timeoutMs: 200,
    redis,
    redisPrefix: `test:${randomUUID()}:`,
    ...overrides,
  });
}

before(async () => {
  server = await startTestDnsServer({ zones, negativeTtl: 30 });
  redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6380');
});
after(async () => {
  await server.close();
  redis.disconnect();
});

test('A, AAAA and MX of a domain: has A, has AAAA, has MX, with the smallest TTL', async () => {
  const verdict = await checkDomain('mail.test', resolver());
  assert.deepEqual(
    { ...verdict },
    {
      domain: 'mail.test',
      status: 'OK',
      hasA: true,
      hasAaaa: true,
      hasMx: true,
      nullMx: false,
      ttlSeconds: 60,
      fromCache: false,
    },
  );
});

test('a null MX (RFC 7505) counts as no MX; NODATA is an answer, not an error', async () => {
  const nullMx = await checkDomain('nullmx.test', resolver());
  assert.equal(nullMx.nullMx, true);
  assert.equal(nullMx.hasMx, false);
  assert.equal(nullMx.hasA, true);
  assert.equal(nullMx.hasAaaa, false, 'NODATA');
  const mxOnly = await checkDomain('mxonly.test', resolver());
  assert.deepEqual([mxOnly.status, mxOnly.hasA, mxOnly.hasMx], ['OK', false, true]);
});

test('NXDOMAIN is cached for the SOA negative TTL, then asked again', async () => {
  let now = Date.now();
  const r = resolver({ now: () => now });
  server.resetQueries();
  const first = await checkDomain('nowhere.test', r);
  assert.equal(first.status, 'NXDOMAIN');
  assert.equal(first.ttlSeconds, 30);
  const asked = server.queries.length;
  const second = await checkDomain('nowhere.test', r);
  assert.equal(second.fromCache, true);
  assert.equal(server.queries.length, asked, 'the negative cache answered');
  now += 31_000;
  await checkDomain('nowhere.test', r);
  assert.ok(server.queries.length > asked, 'asked again after the negative TTL');
});

test('a positive answer expires with its TTL', async () => {
  let now = Date.now();
  const r = resolver({ now: () => now });
  server.resetQueries();
  assert.equal((await r.lookup('short.test', 'A')).ttl, 2);
  assert.equal((await r.lookup('short.test', 'A')).fromCache, true);
  now += 2_500;
  assert.equal((await r.lookup('short.test', 'A')).fromCache, false);
  assert.equal(server.queries.filter((q) => q.name === 'short.test').length, 2);
});

test('a server that never answers gives TEMPERROR after bounded tries, and nothing is cached', async () => {
  server.setMode('silent.test', 'silent');
  server.resetQueries();
  const r = resolver();
  const started = Date.now();
  const verdict = await checkDomain('silent.test', r);
  assert.equal(verdict.status, 'TEMPERROR');
  assert.ok(Date.now() - started < 2_000, 'bounded');
  assert.equal(
    server.queries.filter((q) => q.name === 'silent.test' && q.type === 'A').length,
    2,
    'two tries',
  );
  assert.ok(r.stats.temporaryFailures > 0);
  await checkDomain('silent.test', r);
  assert.equal(
    server.queries.filter((q) => q.name === 'silent.test' && q.type === 'A').length,
    4,
    'not cached',
  );
});

test('SERVFAIL is retried, then TEMPERROR', async () => {
  server.setMode('broken.test', 'servfail');
  server.resetQueries();
  const verdict = await checkDomain('broken.test', resolver());
  assert.equal(verdict.status, 'TEMPERROR');
  assert.equal(server.queries.filter((q) => q.name === 'broken.test' && q.type === 'MX').length, 2);
});

test('a truncated UDP answer is asked again over TCP', async () => {
  server.resetQueries();
  const result = await resolver().lookup('big.test', 'A');
  assert.equal(result.records.length, 60);
  assert.deepEqual(
    server.queries.filter((q) => q.name === 'big.test').map((q) => q.transport),
    ['udp', 'tcp'],
  );
});

test('concurrent lookups of one name coalesce into one query', async () => {
  server.resetQueries();
  const r = resolver();
  const results = await Promise.all(Array.from({ length: 20 }, () => r.lookup('mail.test', 'MX')));
  assert.ok(results.every((x) => x.records[0] === '10 mx.mail.test'));
  assert.equal(server.queries.filter((q) => q.name === 'mail.test' && q.type === 'MX').length, 1);
  assert.equal(r.stats.coalesced, 19);
});

test('a second replica is answered from the Redis cache the first one filled', async () => {
  const prefix = `test:${randomUUID()}:`;
  const first = resolver({ redisPrefix: prefix });
  const second = resolver({ redisPrefix: prefix });
  server.resetQueries();
  await checkDomain('mail.test', first);
  const verdict = await checkDomain('mail.test', second);
  assert.equal(verdict.fromCache, true);
  assert.equal(second.stats.redisHits, 3);
  assert.equal(second.stats.misses, 0);
  assert.equal(server.queries.length, 3, 'only the first replica asked the server');
});
