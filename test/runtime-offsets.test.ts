// The offset the runtime resumes a partition from after fencing, read stable (KIP-447's
// require_stable, patched into kafkajs): it must never be the offset from before a transaction
// that is still open, and it must not cost the second the old "unchanged for a second" read did.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '@mailpools/core';
import { committedOffset, createKafka, offsetReader } from '@mailpools/stream';
import { testConfig } from '@mailpools/testkit';

test('a stable offset read waits out an open transaction and then returns what it committed', {
  timeout: 60_000,
}, async () => {
  const config = testConfig();
  const topic = `${config.namespace}offsets`;
  const groupId = `${config.namespace}group`;
  const kafka = createKafka({ config, clientId: 'offsets-test', logger: createLogger('test', 'warn') });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  const reader = offsetReader(kafka);
  await reader.connect();
  const producer = kafka.producer({
    transactionalId: `${groupId}.t`,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  try {
    assert.equal(await committedOffset(reader, groupId, topic, 0), -1, 'nothing committed yet');

    /** A transaction holding `offset` for `partition`, not yet ended. */
    const commitOffsetOn = async (partition: number, offset: number) => {
      for (;;) {
        const transaction = await producer.transaction();
        try {
          await transaction.sendOffsets({
            consumerGroupId: groupId,
            topics: [{ topic, partitions: [{ partition, offset: String(offset) }] }],
          });
          return transaction;
        } catch (error) {
          // The previous transaction's markers are still being written: try again in a moment.
          await transaction.abort().catch(() => undefined);
          if ((error as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS') throw error;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const commitOffset = (offset: number) => commitOffsetOn(0, offset);
    await (await commitOffset(7)).commit();
    const started = performance.now();
    assert.equal(await committedOffset(reader, groupId, topic, 0), 7);
    // (The old rule re-read for a second at least; a fresh broker's first reads can be slow, so
    // the bound is loose.)
    assert.ok(performance.now() - started < 3_000, 'a settled offset is read without waiting');
    assert.equal(await committedOffset(reader, groupId, topic, 1), -1, 'the other partition is untouched');

    // A transaction holds offset 12 for partition 0 and has not committed yet.
    const open = await commitOffset(12);
    let settled: number | undefined;
    const reading = committedOffset(reader, groupId, topic, 0).then((offset) => {
      settled = offset;
      return offset;
    });
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(settled, undefined, 'the read waits while the transaction is open instead of answering 7');
    await open.commit();
    assert.equal(await reading, 12);

    // A zombie's transaction open on partition 1 (offsets committed, never ended) does not hold
    // a stable read of partition 0.
    const zombie = await commitOffsetOn(1, 3);
    const other = performance.now();
    assert.equal(await committedOffset(reader, groupId, topic, 0), 12);
    assert.ok(performance.now() - other < 3_000, 'partition 0 is read without waiting for partition 1');
    await zombie.abort();
  } finally {
    await producer.disconnect();
    await reader.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
});
