// What the mail platform and the tools use to talk to the pipeline: a producer of events in the
// wire format, and a reader of whole topics (read_committed) for checks, tests and benchmarks.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { createLogger, type Logger, type RuntimeConfig, type TopicSpec } from '@mailpools/core';
import { type RecordName, Serde } from '@mailpools/schemas';
import type { Kafka, Producer } from 'kafkajs';
import { createKafka, ensureTopics } from './kafka.ts';

export interface RawRecord {
  key: string | null;
  value: Buffer | null;
  headers?: Record<string, string>;
}

export interface EventProducer {
  /** Encodes and produces records of one schema; resolves when the broker acknowledged all. */
  send(topic: string, schema: RecordName, records: readonly { key: string; value: unknown }[]): Promise<void>;
  /** Produces bytes as they are (replays, tests of poison records). */
  sendRaw(topic: string, records: readonly RawRecord[]): Promise<void>;
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  readonly serde: Serde;
  close(): Promise<void>;
}

export async function createEventProducer(
  config: RuntimeConfig,
  logger: Logger = createLogger('producer', config.logLevel),
): Promise<EventProducer> {
  const kafka = createKafka({
    config,
    clientId: `producer-${randomUUID().slice(0, 8)}`,
    logger,
  });
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  const serde = new Serde({ registryUrl: config.schemaRegistryUrl, auth: config.schemaRegistryAuth });
  const sendRaw = async (topic: string, records: readonly RawRecord[]) => {
    if (records.length === 0) return;
    await producer.send({
      topic,
      acks: -1,
      messages: records.map((r) => ({ key: r.key, value: r.value, headers: r.headers ?? {} })),
    });
  };
  return {
    serde,
    async send(topic, schema, records) {
      const encoded: RawRecord[] = [];
      for (const record of records)
        encoded.push({ key: record.key, value: await serde.encode(schema, record.value) });
      await sendRaw(topic, encoded);
    },
    sendRaw,
    ensureTopics: (specs) => ensureTopics(kafka, specs),
    close: () => producer.disconnect(),
  };
}

export interface ReadRecord {
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  partition: number;
  offset: string;
  /** Kafka record timestamp (ms): when its producer created it. */
  timestamp: number;
}

export interface ReadOptions {
  topic: string;
  /** Stop once this many records were read. */
  count?: number;
  /** Stop when nothing new arrived for this long (after the first record, or from the start). */
  idleMs?: number;
  timeoutMs?: number;
  logger?: Logger;
  onProgress?: (read: number) => void;
  /**
   * Count distinct keys (toward `count` and in onProgress) rather than records: a reader whose
   * group restarts from the beginning (after a broker restart) does not count anything twice.
   */
  distinctKeys?: boolean;
}

/** Reads a topic from the beginning with read_committed under a throw-away group id. */
export async function readTopic(config: RuntimeConfig, options: ReadOptions): Promise<ReadRecord[]> {
  const logger = options.logger ?? createLogger('reader', config.logLevel);
  const kafka: Kafka = createKafka({ config, clientId: 'reader', logger });
  const consumer = kafka.consumer({
    groupId: `reader-${randomUUID()}`,
    readUncommitted: false,
    maxBytesPerPartition: 4 * 1024 * 1024,
  });
  const records: ReadRecord[] = [];
  const keys = new Set<string | null>();
  const read = () => (options.distinctKeys ? keys.size : records.length);
  let lastArrival = Date.now();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [options.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          keys.add(m.key?.toString() ?? null);
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(m.headers ?? {}))
            if (v !== undefined) headers[k] = v.toString();
          records.push({
            key: m.key?.toString() ?? null,
            value: m.value,
            headers,
            partition: batch.partition,
            offset: m.offset,
            timestamp: Number(m.timestamp),
          });
        }
        lastArrival = Date.now();
        options.onProgress?.(read());
      },
    });
    const started = Date.now();
    const timeoutMs = options.timeoutMs ?? 60_000;
    const idleMs = options.idleMs ?? 3_000;
    for (;;) {
      if (options.count !== undefined && read() >= options.count) {
        await new Promise((r) => setTimeout(r, Math.min(idleMs, 1_000))); // catch any extra (duplicate) record
        break;
      }
      if (options.count === undefined && Date.now() - lastArrival >= idleMs) break;
      if (Date.now() - started >= timeoutMs) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await consumer.disconnect();
  }
  return records;
}

/** Moves a stopped consumer group back to the start of a topic: the next run replays every record. */
export async function rewindGroup(config: RuntimeConfig, groupId: string, topic: string): Promise<void> {
  const kafka: Kafka = createKafka({
    config,
    clientId: 'rewind',
    logger: createLogger('rewind', config.logLevel),
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.resetOffsets({ groupId, topic, earliest: true });
  } finally {
    await admin.disconnect();
  }
}

export interface FollowOptions<T> {
  topic: string;
  schema: RecordName;
  /** Each record as it is committed; a record that does not decode goes to onPoison. */
  onRecord(value: T, record: { partition: number; offset: string; timestamp: number }): void;
  onPoison?(error: Error, record: { partition: number; offset: string }): void;
  logger?: Logger;
}

export interface Follower {
  /** Resolves once the reader is assigned its partitions and reads from their end. */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Reads a topic from its end on, read_committed, under a throw-away group id: what is produced
 * from now on, as it commits (`mailpools tail`).
 */
export async function followTopic<T>(config: RuntimeConfig, options: FollowOptions<T>): Promise<Follower> {
  const logger = options.logger ?? createLogger('follower', config.logLevel);
  const sockets = new Set<Socket>();
  const kafka: Kafka = createKafka({ config, clientId: 'follower', logger, sockets });
  const serde = new Serde({ registryUrl: config.schemaRegistryUrl, auth: config.schemaRegistryAuth });
  const consumer = kafka.consumer({ groupId: `follower-${randomUUID()}`, readUncommitted: false });
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  consumer.on(consumer.events.GROUP_JOIN, () => markReady());
  await consumer.connect();
  await consumer.subscribe({ topics: [options.topic], fromBeginning: false });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const where = { partition, offset: message.offset, timestamp: Number(message.timestamp) };
      try {
        options.onRecord(await serde.decode<T>(options.schema, message.value), where);
      } catch (error) {
        options.onPoison?.(error as Error, where);
      }
    },
  });
  consumer.on(consumer.events.CRASH, ({ payload }) =>
    logger.error({ err: payload.error, restart: payload.restart }, 'the reader of the topic crashed'),
  );
  return {
    ready,
    async stop() {
      await consumer.disconnect();
      // As an error, so that kafkajs tears the connection down (its queue and timers) as well.
      for (const socket of sockets) socket.destroy(new Error('the reader stopped'));
    },
  };
}
