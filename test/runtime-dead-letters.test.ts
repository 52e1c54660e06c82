import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type OutboundMessage, Serde } from '@mailpools/schemas';
import { createEventProducer, DLQ_HEADERS, readTopic } from '@mailpools/stream';
import { sampleEvent, testConfig } from '@mailpools/testkit';
import { createPassthroughStage, POISON_PREFIX } from './fixtures/passthrough-stage.ts';

test('garbage bytes, an unknown schema id and a handler error land in the DLQ with their reasons; the events around them flow on', {
  timeout: 120_000,
}, async () => {
  const config = testConfig();
  const input = `${config.namespace}in`;
  const output = `${config.namespace}out`;
  const stage = createPassthroughStage(config, { input, output, partitions: 1 });
  const producer = await createEventProducer(config);
  try {
    await producer.ensureTopics([{ topic: input, partitions: 1, compacted: false }]);
    const good = (id: string) =>
      producer.send(input, 'OutboundMessage', [{ key: id, value: sampleEvent(id) }]);
    const garbage = Buffer.from('this is not avro at all');
    const valid = await producer.serde.encode('OutboundMessage', sampleEvent('ok-template'));
    const unknownSchema = Buffer.from(valid);
    unknownSchema.writeInt32BE(987_654_321, 1);
    const truncated = valid.subarray(0, 12);

    await good('ok-1');
    await producer.sendRaw(input, [{ key: 'garbage', value: garbage }]);
    await good('ok-2');
    await producer.sendRaw(input, [{ key: 'unknown-schema', value: unknownSchema }]);
    await good('ok-3');
    await producer.send(input, 'OutboundMessage', [
      { key: `${POISON_PREFIX}1`, value: sampleEvent(`${POISON_PREFIX}1`) },
    ]);
    await producer.sendRaw(input, [{ key: 'truncated', value: truncated, headers: { origin: 'test' } }]);
    await good('ok-4');

    await stage.start();
    const outputs = await readTopic(config, { topic: output, count: 4, timeoutMs: 60_000 });
    const dead = await readTopic(config, { topic: `${input}.dlq`, count: 4, timeoutMs: 60_000 });

    const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
    const ids = await Promise.all(
      outputs.map(async (r) => (await serde.decode<OutboundMessage>('OutboundMessage', r.value)).messageId),
    );
    assert.deepEqual(ids, ['ok-1', 'ok-2', 'ok-3', 'ok-4']);

    const byKey = new Map(dead.map((r) => [r.key, r]));
    assert.equal(dead.length, 4);
    assert.equal(byKey.get('garbage')?.headers[DLQ_HEADERS.code], 'MAILPOOLS_ERR_NOT_WIRE_FORMAT');
    assert.deepEqual(byKey.get('garbage')?.value, garbage, 'the original bytes are kept');
    assert.equal(byKey.get('unknown-schema')?.headers[DLQ_HEADERS.code], 'MAILPOOLS_ERR_UNKNOWN_SCHEMA_ID');
    assert.deepEqual(byKey.get('unknown-schema')?.value, unknownSchema);
    assert.equal(byKey.get(`${POISON_PREFIX}1`)?.headers[DLQ_HEADERS.code], 'MAILPOOLS_ERR_TEST_POISON');
    assert.match(byKey.get(`${POISON_PREFIX}1`)?.headers[DLQ_HEADERS.message] ?? '', /poison by design/);
    assert.equal(byKey.get('truncated')?.headers[DLQ_HEADERS.code], 'MAILPOOLS_ERR_DECODE_FAILED');
    assert.equal(byKey.get('truncated')?.headers.origin, 'test', 'original headers are kept');
    for (const record of dead) {
      assert.equal(record.headers[DLQ_HEADERS.topic], input);
      assert.equal(record.headers[DLQ_HEADERS.stage], 'passthrough');
      assert.match(record.headers[DLQ_HEADERS.offset] ?? '', /^\d+$/);
    }
  } finally {
    await stage.stop();
    await producer.close();
  }
});

test('a transient handler failure is retried with back-off and nothing is dropped', {
  timeout: 120_000,
}, async () => {
  const config = testConfig();
  const input = `${config.namespace}in`;
  const output = `${config.namespace}out`;
  const stage = createPassthroughStage(config, { input, output, partitions: 2, transientFailures: 3 });
  const producer = await createEventProducer(config);
  try {
    await producer.ensureTopics([{ topic: input, partitions: 2, compacted: false }]);
    const ids = Array.from({ length: 200 }, (_, i) => `t-${i}`);
    await producer.send(
      input,
      'OutboundMessage',
      ids.map((id) => ({ key: id, value: sampleEvent(id, 100) })),
    );
    await stage.start();
    const outputs = await readTopic(config, { topic: output, count: ids.length, timeoutMs: 60_000 });
    assert.equal(outputs.length, ids.length);
    assert.deepEqual(new Set(outputs.map((r) => r.key)), new Set(ids));
    const failures = await stage.metrics.registry.getSingleMetricAsString(
      'mailpools_stage_transient_failures_total',
    );
    assert.match(failures, /code="MAILPOOLS_ERR_TEST_TRANSIENT"\} 3/);
    const dead = await readTopic(config, { topic: `${input}.dlq`, idleMs: 1_000, timeoutMs: 10_000 });
    assert.equal(dead.length, 0, 'a transient failure never dead-letters');
  } finally {
    await stage.stop();
    await producer.close();
  }
});
