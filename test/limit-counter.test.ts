// limit-counter on the real stack: two replicas of the service, as processes, share one
// 6-partition input topic and one Redis. The counters they leave must equal the exact sums
// computed offline from the same events, and replaying the whole topic must change none of them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupId, seededRandom, TOPICS } from '@mailpools/core';
import { limitCounterMismatches } from '@mailpools/limit-counter/offline';
import { createLimitStore, limitsPrefix } from '@mailpools/limit-counter/store';
import { type OutboundMessage, Serde } from '@mailpools/schemas';
import { createEventProducer, readTopic, rewindGroup } from '@mailpools/stream';
import { sampleEvent, startService, testConfig } from '@mailpools/testkit';
import { Redis } from 'ioredis';

const EVENTS = 3_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 10, 20);

/** A seeded stream of events: 2 tenants, 40 submitters, 30 hours, inside every default limit. */
function makeEvents(): OutboundMessage[] {
  const random = seededRandom(7);
  return Array.from({ length: EVENTS }, (_, index) => {
    const tenantId = index % 2 === 0 ? 'contoso' : 'fabrikam';
    const submitter = `user${Math.floor(random() * 20)}@${tenantId}.example`;
    const external = Math.floor(random() * 8);
    const internal = Math.floor(random() * 5) + (external === 0 ? 1 : 0);
    const messageClass = random() < 0.1 ? ('AUTO_REPLY' as const) : ('NORMAL' as const);
    return {
      ...sampleEvent(`m${index}`, 200, T0 + Math.floor((index / EVENTS) * 30 * HOUR + random() * 60_000)),
      tenantId,
      submitter,
      envelopeSender: submitter,
      fromHeader: submitter,
      messageClass,
      recipients: [
        ...Array.from({ length: external }, (_, i) => ({
          address: `x${i}@else.example`,
          scope: 'EXTERNAL' as const,
        })),
        ...Array.from({ length: internal }, (_, i) => ({
          address: `i${i}@${tenantId}.example`,
          scope: 'INTERNAL' as const,
        })),
      ],
    };
  });
}

/** Every key of the deployment and what it holds (TTLs aside). */
async function snapshot(redis: Redis, prefix: string): Promise<Record<string, unknown>> {
  const keys = (await redis.keys(`${prefix}*`)).sort();
  const result: Record<string, unknown> = {};
  for (const key of keys) {
    const type = await redis.type(key);
    if (type === 'zset') result[key] = await redis.zrange(key, '0', '-1', 'WITHSCORES');
    else if (type === 'hash') result[key] = await redis.hgetall(key);
    else result[key] = await redis.get(key);
  }
  return result;
}

test('two replicas on a 6-partition topic count exactly what offline sums say; a replay changes no counter', {
  timeout: 240_000,
}, async () => {
  const config = testConfig({ MAILPOOLS_PARTITIONS: '6' });
  const env = {
    MAILPOOLS_NAMESPACE: config.namespace,
    MAILPOOLS_PARTITIONS: '6',
    // The replicas may drift apart by hours of event time while they catch up on the topic;
    // a grace that covers the whole stream keeps every event at its own time.
    MAILPOOLS_LIMITS_GRACE_S: String(2 * 86_400),
  };
  const events = makeEvents();
  const input = `${config.namespace}${TOPICS.classified}`;
  const output = `${config.namespace}${TOPICS.counted}`;
  const redis = new Redis(config.redisUrl);
  const prefix = limitsPrefix(config.namespace);
  const producer = await createEventProducer(config);
  const replicas = [await startService('limit-counter', env), await startService('limit-counter', env)];
  try {
    await producer.send(
      input,
      'OutboundMessage',
      events.map((e) => ({ key: e.messageId, value: e })),
    );
    const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
    const firstRun = await readTopic(config, { topic: output, count: EVENTS, timeoutMs: 120_000 });
    const verdicts = new Map<string, string>();
    for (const record of firstRun) {
      const event = await serde.decode<OutboundMessage>('OutboundMessage', record.value);
      assert.ok(event.limits, event.messageId);
      assert.ok(!verdicts.has(event.messageId), `${event.messageId} came out twice`);
      assert.ok(
        ['ALLOW', 'WARN'].includes(event.limits.decision),
        `${event.messageId}: ${event.limits.decision}`,
      );
      verdicts.set(event.messageId, JSON.stringify(event.limits));
    }
    assert.equal(verdicts.size, EVENTS);
    const served = await Promise.all(
      replicas.map(
        async (r) =>
          (await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text()).match(
            /mailpools_stage_records_processed_total\{stage="limit-counter"\} (\d+)/,
          )?.[1],
      ),
    );
    assert.ok(
      served.every((n) => Number(n) > 0),
      `both replicas worked: ${served.join(' + ')}`,
    );

    const store = createLimitStore(redis, {
      prefix,
      graceMs: 2 * DAY,
      dedupTtlSeconds: 3_600,
      maxDeferMinutes: 1_440,
    });
    assert.deepEqual(
      await limitCounterMismatches(events, store.usage),
      [],
      'counters equal the offline sums',
    );

    // Replay: both replicas stop, the group goes back to offset 0, one replica reads it all again.
    for (const replica of replicas.splice(0)) assert.equal(await replica.stop(), 0);
    const before = await snapshot(redis, prefix);
    await rewindGroup(config, groupId('limit-counter', config.namespace), input);
    replicas.push(await startService('limit-counter', env));
    const both = await readTopic(config, { topic: output, count: 2 * EVENTS, timeoutMs: 120_000 });
    assert.equal(both.length, 2 * EVENTS);
    for (const record of both.slice(EVENTS)) {
      const event = await serde.decode<OutboundMessage>('OutboundMessage', record.value);
      assert.equal(
        JSON.stringify(event.limits),
        verdicts.get(event.messageId),
        `${event.messageId}: same verdict on replay`,
      );
    }
    const metrics = await (await fetch(`http://127.0.0.1:${replicas[0]?.port}/metrics`)).text();
    assert.match(metrics, new RegExp(`mailpools_limits_duplicates_total ${EVENTS}\\b`));
    assert.deepEqual(await snapshot(redis, prefix), before, 'the replay changed no key');
  } finally {
    for (const replica of replicas) await replica.stop();
    await producer.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
});
