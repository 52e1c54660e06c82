// The yardstick for the runtime's overhead: the plainest kafkajs consume → produce loop on raw
// bytes (no decoding, no handler, at-least-once). Used by `npm run bench:passthrough` only.
import { randomUUID } from 'node:crypto';
import { createLogger, type RuntimeConfig } from '@mailpools/core';
import { createKafka } from './kafka.ts';

export interface BareLoop {
  /** Records consumed, produced and committed so far. */
  processed(): number;
  stop(): Promise<void>;
}

export async function startBarePassthrough(
  config: RuntimeConfig,
  input: string,
  output: string,
): Promise<BareLoop> {
  const kafka = createKafka({
    config,
    clientId: 'bare-loop',
    logger: createLogger('bare-loop', config.logLevel),
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const consumer = kafka.consumer({
    groupId: `bare-${randomUUID()}`,
    maxBytesPerPartition: config.fetchMaxBytesPerPartition,
  });
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topics: [input], fromBeginning: true });
  let processed = 0;
  await consumer.run({
    partitionsConsumedConcurrently: config.partitionsConcurrently,
    eachBatch: async ({ batch }) => {
      // Same request-size bound as the runtime, so both pay for the same number of produce calls.
      for (let i = 0; i < batch.messages.length; i += 200) {
        const slice = batch.messages.slice(i, i + 200);
        await producer.send({
          topic: output,
          acks: -1,
          messages: slice.map((m) => ({ key: m.key, value: m.value })),
        });
      }
      processed += batch.messages.length;
    },
  });
  return {
    processed: () => processed,
    async stop() {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}
