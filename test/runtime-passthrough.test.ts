import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type OutboundMessage, Serde } from '@mailpools/schemas';
import { createEventProducer, readTopic } from '@mailpools/stream';
import { sampleEvent, testConfig } from '@mailpools/testkit';
import { createPassthroughStage } from './fixtures/passthrough-stage.ts';

for (const delivery of ['exactly-once', 'at-least-once'] as const) {
  test(`a pass-through stage moves 10,000 events from a 3-partition topic, each once (${delivery})`, {
    timeout: 180_000,
  }, async () => {
    const config = testConfig({ MAILPOOLS_DELIVERY: delivery });
    const input = `${config.namespace}in`;
    const output = `${config.namespace}out`;
    const stage = createPassthroughStage(config, { input, output, partitions: 3 });
    const producer = await createEventProducer(config);
    try {
      await producer.ensureTopics([
        { topic: input, partitions: 3, compacted: false },
        { topic: output, partitions: 3, compacted: false },
      ]);
      const ids = Array.from({ length: 10_000 }, (_, i) => `m-${i}`);
      for (let i = 0; i < ids.length; i += 1_000) {
        await producer.send(
          input,
          'OutboundMessage',
          ids.slice(i, i + 1_000).map((id) => ({ key: id, value: sampleEvent(id, 200) })),
        );
      }
      await stage.start();
      const records = await readTopic(config, { topic: output, count: ids.length, timeoutMs: 120_000 });
      const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
      const seen = new Map<string, number>();
      for (const record of records) {
        const event = await serde.decode<OutboundMessage>('OutboundMessage', record.value);
        assert.equal(record.key, event.messageId);
        assert.deepEqual(
          event.hops.map((h) => h.stage),
          ['passthrough'],
        );
        seen.set(event.messageId, (seen.get(event.messageId) ?? 0) + 1);
      }
      assert.equal(records.length, 10_000, 'exactly 10,000 records read back');
      assert.equal(seen.size, 10_000, 'every input appears');
      assert.ok(
        [...seen.values()].every((n) => n === 1),
        'no input appears twice',
      );
      const base = `http://127.0.0.1:${stage.httpPort()}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /mailpools_stage_records_processed_total\{stage="passthrough"\} 10000/);
      assert.match(
        metrics,
        /mailpools_stage_consumer_lag_records\{stage="passthrough",topic="[^"]+",partition="2"\} 0/,
      );
      assert.match(
        metrics,
        new RegExp(
          `mailpools_stage_batch_duration_seconds_count\\{stage="passthrough",delivery="${delivery}"\\} [1-9]`,
        ),
      );
    } finally {
      await stage.stop();
      await producer.close();
    }
  });
}
