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

    const commitOffset = async (offset: number) => {
      const transaction = await producer.transaction();
      await transaction.sendOffsets({
        consumerGroupId: groupId,
        topics: [{ topic, partitions: [{ partition: 0, offset: String(offset) }] }],
      });
      return transaction;
    };
    await (await commitOffset(7)).commit();
    const started = performance.now();
    assert.equal(await committedOffset(reader, groupId, topic, 0), 7);
    assert.ok(performance.now() - started < 500, 'a settled offset is read at once');
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
  } finally {
    await producer.disconnect();
    await reader.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
});
