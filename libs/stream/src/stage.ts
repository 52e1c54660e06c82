// The stream runtime: batch consume → decode → handler → encode → produce → commit.
//
// Exactly-once (the default) is consume-transform-produce in Kafka transactions: the outputs,
// the dead letters and the input offsets of one batch commit together or not at all. kafkajs
// cannot fence zombies by consumer-group generation (KIP-447), so every input partition gets its
// own transactional id (`<group>.<topic>.<partition>`): whoever initialises that id last owns
// the partition, and every earlier holder is fenced. After fencing, the committed offset is
// read again, stable (committedOffset), and records below it are skipped, so a batch a zombie
// already committed is never produced twice, with any number of replicas.
//
// At-least-once produces with an idempotent producer, then commits the offsets.
import { randomUUID } from 'node:crypto';
import {
  asMailpoolsError,
  createLogger,
  deadLetterTopic,
  type Logger,
  MailpoolsError,
  type RuntimeConfig,
  type TopicSpec,
  wireStage,
} from '@mailpools/core';
import { type OutboundMessage, type RecordName, Serde } from '@mailpools/schemas';
import type { Consumer, EachBatchPayload, IHeaders, Kafka, Message, Producer } from 'kafkajs';
import { type HealthServer, startHealthServer } from './http.ts';
import {
  committedOffset,
  createKafka,
  ensureTopics,
  isFenced,
  isRetriable,
  offsetReader,
  primeOffsetReader,
} from './kafka.ts';
import { createStageMetrics, type StageMetrics } from './metrics.ts';

export interface InputRecord<T> {
  readonly key: string | null;
  readonly value: T;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** Kafka record timestamp (ms); event time lives in the record itself. */
  readonly timestamp: number;
  readonly headers: Readonly<Record<string, string>>;
}

export interface OutputRecord {
  readonly topic: string;
  readonly schema: RecordName;
  readonly key: string;
  readonly value: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Per input record: what to produce (possibly nothing), or the error that makes it a poison record. */
export type Outcome = readonly OutputRecord[] | MailpoolsError;

/**
 * Handles one batch; returns one outcome per input, in order. Throw an error with
 * `retriable: true` for a transient failure (the batch is retried with back-off, nothing is
 * dropped); any other throw is isolated to the record that caused it, which is dead-lettered.
 */
export type BatchHandler<T> = (records: readonly InputRecord<T>[]) => Promise<readonly Outcome[]>;

/** Adapts a per-record function into a batch handler. */
export function perRecord<T>(
  handle: (record: InputRecord<T>) => Promise<readonly OutputRecord[]> | readonly OutputRecord[],
): BatchHandler<T> {
  return async (records) => {
    const outcomes: Outcome[] = [];
    for (const record of records) {
      try {
        outcomes.push(await handle(record));
      } catch (error) {
        if (isRetriable(error)) throw error;
        outcomes.push(asMailpoolsError(error, 'MAILPOOLS_ERR_HANDLER'));
      }
    }
    return outcomes;
  };
}

export interface StageOptions<T> {
  /** The service folder name: consumer group id (namespaced), metric label, log name. */
  service: string;
  config: RuntimeConfig;
  input: { topic: string; schema: RecordName };
  /** Topics to create at start-up when missing (the input's dead-letter topic is added). */
  topics: readonly TopicSpec[];
  handle: BatchHandler<T>;
  logger?: Logger;
  metrics?: StageMetrics;
  /** Start the /metrics, /healthz, /readyz server (default true). */
  http?: boolean;
}

export interface Stage {
  start(): Promise<void>;
  /**
   * The handler as the runtime runs it, without Kafka: one outcome per record, a non-retriable
   * failure narrowed down to the records that cause it (they get the error, the rest flow on).
   * In-process tests drive a stage through this (tools/testkit's stage harness).
   */
  process(records: readonly InputRecord<unknown>[]): Promise<Outcome[]>;
  /** Drains: stops fetching, finishes the batch in hand, commits, disconnects. */
  stop(): Promise<void>;
  isReady(): boolean;
  readonly metrics: StageMetrics;
  readonly groupId: string;
  /** Port of the health server once started (0 before). */
  httpPort(): number;
}

export const DLQ_HEADERS = {
  code: 'mailpools-error-code',
  message: 'mailpools-error-message',
  hint: 'mailpools-error-hint',
  stage: 'mailpools-stage',
  topic: 'mailpools-source-topic',
  partition: 'mailpools-source-partition',
  offset: 'mailpools-source-offset',
  failedAt: 'mailpools-failed-at',
} as const;

export function createStage<T>(options: StageOptions<T>): Stage {
  const { service, config, input, handle } = options;
  const groupId = `${config.namespace}${service}`;
  const dlqTopic = deadLetterTopic(input.topic);
  if (options.topics.some((t) => t.topic === input.topic && t.compacted)) {
    throw new MailpoolsError(
      'MAILPOOLS_ERR_CONFIG_INVALID',
      `The input topic ${input.topic} of ${service} is compacted.`,
      {
        hint: 'A stage reads a log of events; read compacted topics as tables instead.',
      },
    );
  }
  const transactional = config.delivery === 'exactly-once';
  const logger = options.logger ?? createLogger(service, config.logLevel);
  const metrics = options.metrics ?? createStageMetrics();
  const serde = new Serde({ registryUrl: config.schemaRegistryUrl, auth: config.schemaRegistryAuth });
  const kafka: Kafka = createKafka({
    config,
    clientId: `${service}-${randomUUID().slice(0, 8)}`,
    logger,
  });
  const consumer: Consumer = kafka.consumer({
    groupId,
    readUncommitted: false,
    allowAutoTopicCreation: false,
    maxBytesPerPartition: config.fetchMaxBytesPerPartition,
    maxBytes: Math.max(config.fetchMaxBytesPerPartition * 4, 10 * 1024 * 1024),
    minBytes: config.fetchMinBytes,
    maxWaitTimeInMs: config.fetchMaxWaitMs,
    sessionTimeout: config.sessionTimeoutMs,
    heartbeatInterval: Math.floor(config.sessionTimeoutMs / 10),
  });
  const topics: TopicSpec[] = [...options.topics];
  if (!topics.some((t) => t.topic === dlqTopic))
    topics.push({ topic: dlqTopic, partitions: config.partitions, compacted: false });
  if (!topics.some((t) => t.topic === input.topic))
    topics.push({ topic: input.topic, partitions: config.partitions, compacted: false });

  let sharedProducer: Producer | undefined; // at-least-once
  const offsets = offsetReader(kafka); // exactly-once: connected once, read after every fencing
  const partitionProducers = new Map<number, Promise<Producer>>(); // exactly-once
  /** Committed offset read after this process fenced the partition's transactional id. */
  const fencedAt = new Map<number, number>();
  /** Fencing and the stable offset read under way, started when the partition was assigned. */
  const fencing = new Map<number, Promise<number>>();
  let joined = false;
  let running = false;
  let health: HealthServer | undefined;
  const stageLabel = { stage: service };

  function producerFor(partition: number): Promise<Producer> {
    let producer = partitionProducers.get(partition);
    if (!producer) {
      const created = kafka.producer({
        transactionalId: `${groupId}.${input.topic}.${partition}`,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: 60_000,
        allowAutoTopicCreation: false,
        // Back-to-back transactions meet CONCURRENT_TRANSACTIONS for a few ms; retry fast.
        retry: { initialRetryTime: 10, maxRetryTime: 2_000, retries: 12 },
      });
      producer = created.connect().then(() => created); // InitProducerId: fences any earlier holder
      producer.catch(() => partitionProducers.delete(partition));
      partitionProducers.set(partition, producer);
    }
    return producer;
  }

  /**
   * Fences the partition's transactional id, then reads its committed offset — once per
   * assignment. Fencing (a new producer's InitProducerId) takes tens of milliseconds, so it
   * starts when the partition is assigned, not when its first record arrives.
   */
  function fenceAndRead(partition: number): Promise<number> {
    let pending = fencing.get(partition);
    if (!pending) {
      const started = producerFor(partition).then(() =>
        committedOffset(offsets, groupId, input.topic, partition, () => running),
      );
      started.catch(() => {
        if (fencing.get(partition) === started) fencing.delete(partition);
      });
      fencing.set(partition, started);
      pending = started;
    }
    return pending;
  }

  async function dropProducer(partition: number): Promise<void> {
    const producer = partitionProducers.get(partition);
    partitionProducers.delete(partition);
    fencedAt.delete(partition);
    fencing.delete(partition);
    await producer?.then((p) => p.disconnect()).catch(() => undefined);
  }

  async function decode(messages: EachBatchPayload['batch']['messages'], topic: string, partition: number) {
    const records: InputRecord<T>[] = [];
    const poison = new Map<number, MailpoolsError>(); // index in messages → error
    for (const [index, message] of messages.entries()) {
      try {
        const value = await serde.decode<T>(input.schema, message.value);
        records.push({
          key: message.key?.toString() ?? null,
          value,
          topic,
          partition,
          offset: message.offset,
          timestamp: Number(message.timestamp),
          headers: headersToStrings(message.headers),
        });
      } catch (error) {
        if (isRetriable(error)) throw error;
        poison.set(index, asMailpoolsError(error, 'MAILPOOLS_ERR_DECODE_FAILED'));
      }
    }
    return { records, poison };
  }

  /** Runs the handler; a non-retriable failure is narrowed down to the records that cause it. */
  async function runHandler(records: readonly InputRecord<T>[]): Promise<Outcome[]> {
    if (records.length === 0) return [];
    try {
      const outcomes = await handle(records);
      if (outcomes.length !== records.length) {
        throw new MailpoolsError(
          'MAILPOOLS_ERR_HANDLER',
          `The ${service} handler returned ${outcomes.length} outcomes for ${records.length} records.`,
        );
      }
      return [...outcomes];
    } catch (error) {
      if (isRetriable(error)) throw error;
      if (records.length === 1) return [asMailpoolsError(error, 'MAILPOOLS_ERR_HANDLER')];
      const outcomes: Outcome[] = [];
      for (const record of records) outcomes.push(...(await runHandler([record])));
      return outcomes;
    }
  }

  function deadLetter(
    message: Message & { offset: string },
    partition: number,
    error: MailpoolsError,
  ): Message {
    metrics.deadLettered.inc({ stage: service, code: error.code });
    logger.warn(
      { code: error.code, topic: input.topic, partition, offset: message.offset },
      `dead-lettered: ${error.message}`,
    );
    return {
      key: message.key ?? null,
      value: message.value ?? null,
      headers: {
        ...(message.headers ?? {}),
        [DLQ_HEADERS.code]: error.code,
        [DLQ_HEADERS.message]: error.message,
        [DLQ_HEADERS.hint]: error.hint,
        [DLQ_HEADERS.stage]: service,
        [DLQ_HEADERS.topic]: input.topic,
        [DLQ_HEADERS.partition]: String(partition),
        [DLQ_HEADERS.offset]: message.offset,
        [DLQ_HEADERS.failedAt]: new Date().toISOString(),
      },
    };
  }

  async function encodeOutputs(
    outputs: readonly OutputRecord[],
  ): Promise<{ topic: string; message: Message }[]> {
    const encoded: { topic: string; message: Message }[] = [];
    for (const output of outputs) {
      encoded.push({
        topic: output.topic,
        message: {
          key: output.key,
          value: await serde.encode(output.schema, output.value),
          headers: { ...(output.headers ?? {}) },
        },
      });
    }
    return encoded;
  }

  /** One attempt at a batch; throws on transient failure (nothing has been committed then). */
  async function processOnce(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { partition } = batch;
    const started = performance.now();
    let producer: Producer;
    let skipBelow = -1;
    if (transactional) {
      if (!fencedAt.has(partition)) {
        const pending = fenceAndRead(partition);
        const offset = await pending;
        if (fencing.get(partition) !== pending)
          throw new MailpoolsError(
            'MAILPOOLS_ERR_TRANSIENT',
            `Partition ${partition} was reassigned while its offset was read.`,
          );
        fencedAt.set(partition, offset);
      }
      producer = await producerFor(partition);
      skipBelow = fencedAt.get(partition) ?? -1;
    } else {
      producer = sharedProducer as Producer;
    }
    const fresh = batch.messages.filter((m) => Number(m.offset) >= skipBelow);
    const { records, poison } = await decode(fresh, batch.topic, partition);
    const outcomes = await runHandler(records);

    const byTopic = new Map<string, Message[]>();
    const add = (topic: string, message: Message) => {
      const list = byTopic.get(topic) ?? [];
      list.push(message);
      byTopic.set(topic, list);
    };
    let next = 0;
    for (const [index, message] of fresh.entries()) {
      const decodeError = poison.get(index);
      const outcome = decodeError ?? (outcomes[next++] as Outcome);
      if (outcome instanceof MailpoolsError) {
        add(dlqTopic, deadLetter(message, partition, outcome));
        continue;
      }
      try {
        const encoded = await encodeOutputs(outcome);
        const largest = Math.max(0, ...encoded.map((e) => (e.message.value as Buffer).length));
        if (largest > MAX_RECORD_BYTES) {
          throw new MailpoolsError(
            'MAILPOOLS_ERR_RECORD_TOO_LARGE',
            `An output record of ${largest} bytes exceeds the ${MAX_RECORD_BYTES}-byte limit.`,
            {
              hint: "Lower MAILPOOLS_MAX_RAW_BYTES so that events stay well below the broker's message.max.bytes.",
            },
          );
        }
        for (const { topic, message: out } of encoded) add(topic, out);
      } catch (error) {
        if (isRetriable(error)) throw error;
        add(dlqTopic, deadLetter(message, partition, asMailpoolsError(error, 'MAILPOOLS_ERR_ENCODE_FAILED')));
      }
    }
    const requests = chunkBySize(byTopic, MAX_REQUEST_BYTES);
    const lastOffset = batch.lastOffset();
    const nextOffset = String(Number(lastOffset) + 1);

    if (transactional) {
      const transaction = await producer.transaction();
      try {
        for (const topicMessages of requests) await transaction.sendBatch({ topicMessages, acks: -1 });
        await transaction.sendOffsets({
          consumerGroupId: groupId,
          topics: [{ topic: input.topic, partitions: [{ partition, offset: nextOffset }] }],
        });
        // A member the group has given up on (a batch slower than the session) must not commit:
        // the partition may already be another's. kafkajs's sendOffsets carries no group
        // generation, so the broker would not refuse it; ask the coordinator first.
        await payload.heartbeat();
        await transaction.commit();
      } catch (error) {
        await transaction.abort().catch(() => undefined);
        // The outcome is unknown: a commit whose answer was lost (a broker restart, a timeout)
        // may have gone through. A new producer fences this transactional id, which settles the
        // old transaction either way, and the retry then re-reads the committed offset and skips
        // what is already out. Retrying on the old producer with the old offset would send it twice.
        await dropProducer(partition);
        throw error;
      }
      fencedAt.set(partition, Number(nextOffset));
      payload.resolveOffset(lastOffset);
    } else {
      for (const topicMessages of requests) await producer.sendBatch({ topicMessages, acks: -1 });
      payload.resolveOffset(lastOffset);
      await payload.commitOffsetsIfNecessary();
    }
    metrics.processed.inc(stageLabel, fresh.length);
    metrics.batchRecords.observe(stageLabel, fresh.length);
    metrics.batchSeconds.observe(
      { stage: service, delivery: config.delivery },
      (performance.now() - started) / 1000,
    );
    metrics.lag.set(
      { stage: service, topic: input.topic, partition: String(partition) },
      Math.max(0, Number(batch.highWatermark) - Number(nextOffset)),
    );
  }

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { partition } = payload.batch;
    for (let attempt = 0; ; attempt++) {
      if (!payload.isRunning() || payload.isStale()) return;
      try {
        await processOnce(payload);
      } catch (error) {
        const fenced = isFenced(error);
        const code = fenced
          ? 'MAILPOOLS_ERR_FENCED'
          : asMailpoolsError(error, 'MAILPOOLS_ERR_TRANSIENT').code;
        metrics.failures.inc({ stage: service, code });
        if (fenced) {
          // Another process initialised this partition's transactional id after us.
          logger.warn({ partition }, 'producer fenced: re-reading the committed offset before going on');
          await dropProducer(partition);
        } else if (!isRetriable(error)) {
          logger.error(
            { err: error, partition, code },
            'batch failed with an error that is not marked retriable; retrying it all the same so nothing is dropped',
          );
        } else {
          logger.warn(
            { partition, code, attempt, error: (error as Error).message },
            'transient failure: partition held, retrying with back-off',
          );
        }
        await backoff(attempt, payload);
        continue;
      }
      if (attempt > 0)
        logger.info({ partition, attempts: attempt + 1 }, 'batch succeeded after transient failures');
      // The batch is committed: a failed heartbeat now only means a rebalance, which kafkajs
      // handles after this returns. It must not send the batch round again.
      await payload.heartbeat().catch(() => undefined);
      return;
    }
  }

  async function backoff(attempt: number, payload: EachBatchPayload): Promise<void> {
    const ceiling = Math.min(config.retryMaxMs, config.retryInitialMs * 2 ** Math.min(attempt, 20));
    let remaining = ceiling * (0.8 + Math.random() * 0.4);
    while (remaining > 0 && payload.isRunning() && !payload.isStale()) {
      const step = Math.min(remaining, 1_000);
      await new Promise((resolve) => setTimeout(resolve, step));
      remaining -= step;
      await payload.heartbeat(); // keeps the group membership while the partition waits
    }
  }

  return {
    metrics,
    groupId,
    process: (records) => runHandler(records as readonly InputRecord<T>[]),
    isReady: () => running && joined,
    httpPort: () => health?.port ?? 0,
    async start() {
      if (options.http !== false) {
        health = await startHealthServer({
          host: config.httpHost,
          port: config.httpPort,
          registry: metrics.registry,
          isReady: () => running && joined,
        });
        logger.info({ port: health.port }, 'serving /metrics, /healthz, /readyz');
      }
      await ensureTopics(kafka, topics);
      if (transactional) {
        await offsets.connect();
        await primeOffsetReader(offsets, groupId, input.topic);
      } else {
        sharedProducer = kafka.producer({
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
        });
        await sharedProducer.connect();
      }
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        const assigned = event.payload.memberAssignment[input.topic] ?? [];
        joined = true;
        metrics.ready.set(stageLabel, 1);
        metrics.assignedPartitions.set(stageLabel, assigned.length);
        // Partitions that moved to another replica must not keep reporting their old lag here.
        metrics.lag.reset();
        fencedAt.clear(); // after any rebalance, fence again and re-read committed offsets
        fencing.clear();
        for (const partition of partitionProducers.keys())
          if (!assigned.includes(partition)) void dropProducer(partition);
        if (transactional) for (const partition of assigned) fenceAndRead(partition).catch(() => undefined);
        logger.info({ partitions: assigned }, 'joined consumer group');
      });
      consumer.on(consumer.events.CRASH, (event) => {
        joined = false;
        metrics.ready.set(stageLabel, 0);
        // A crash kafkajs restarts from is a hiccup; one it does not is the end of this stage.
        const level = event.payload.restart ? 'warn' : 'error';
        logger[level]({ err: event.payload.error, restart: event.payload.restart }, 'consumer crashed');
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [input.topic], fromBeginning: true });
      running = true;
      await consumer.run({
        autoCommit: !transactional,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: config.partitionsConcurrently,
        eachBatch,
      });
      logger.info({ input: input.topic, group: groupId, delivery: config.delivery }, 'stage started');
    },
    async stop() {
      running = false;
      joined = false;
      metrics.ready.set(stageLabel, 0);
      await consumer.disconnect(); // waits for the batch in hand to finish and commit
      await Promise.all([...partitionProducers.keys()].map((p) => dropProducer(p)));
      await sharedProducer?.disconnect();
      if (transactional) await offsets.disconnect();
      await health?.close();
      logger.info('stage stopped');
    },
  };
}

/** Kafka's default message.max.bytes is 1 MiB per record batch; stay below it. */
const MAX_RECORD_BYTES = 900 * 1024;
const MAX_REQUEST_BYTES = 512 * 1024;

/** Splits the messages into produce requests of bounded size (one batch per partition must fit). */
function chunkBySize(
  byTopic: Map<string, Message[]>,
  maxBytes: number,
): { topic: string; messages: Message[] }[][] {
  const requests: { topic: string; messages: Message[] }[][] = [];
  let current: Map<string, Message[]> = new Map();
  let size = 0;
  const flush = () => {
    if (current.size > 0) requests.push([...current].map(([topic, messages]) => ({ topic, messages })));
    current = new Map();
    size = 0;
  };
  for (const [topic, messages] of byTopic) {
    for (const message of messages) {
      const bytes = ((message.value as Buffer | null)?.length ?? 0) + 64;
      if (size + bytes > maxBytes) flush();
      const list = current.get(topic) ?? [];
      list.push(message);
      current.set(topic, list);
      size += bytes;
    }
  }
  flush();
  return requests;
}

function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    result[key] = Array.isArray(value) ? value.map(String).join(',') : value.toString();
  }
  return result;
}

export interface EnrichmentStageOptions {
  /** A stage of the topology (libs/core): its input and first output name the topics. */
  service: string;
  config: RuntimeConfig;
  logger: Logger;
  /**
   * The service's logic: each event of a batch with its own enrichment filled in, in order. A
   * batch shares its work (one Redis call for all, say); a non-retriable throw is narrowed down to
   * the records that cause it by the runtime.
   */
  enrich: (events: readonly OutboundMessage[]) => Promise<readonly OutboundMessage[]>;
}

/** The shape every enrichment service shares: read its input topic, enrich, write the next one keyed by message id. */
export function createEnrichmentStage({ service, config, logger, enrich }: EnrichmentStageOptions): Stage {
  const wired = wireStage(service, config.namespace, config.partitions);
  const output = Object.values(wired.outputs)[0] as string;
  return createStage<OutboundMessage>({
    service,
    config,
    logger,
    input: { topic: wired.input, schema: 'OutboundMessage' },
    topics: wired.topics,
    handle: async (records) =>
      (await enrich(records.map((r) => r.value))).map((value) => [
        {
          topic: output,
          schema: 'OutboundMessage',
          key: value.messageId,
          value: withHop(value, service),
        },
      ]),
  });
}

/** The event with a note that `stage` finished with it now, for per-stage latency. */
export function withHop(event: OutboundMessage, stage: string): OutboundMessage {
  return { ...event, hops: [...event.hops, { stage, at: Date.now() }] };
}

/** A per-event enrichment as a batch one, for services whose events share no work. */
export function eachEvent(
  enrich: (event: OutboundMessage) => Promise<OutboundMessage>,
): (events: readonly OutboundMessage[]) => Promise<OutboundMessage[]> {
  return async (events) => {
    const enriched: OutboundMessage[] = [];
    for (const event of events) enriched.push(await enrich(event));
    return enriched;
  };
}
