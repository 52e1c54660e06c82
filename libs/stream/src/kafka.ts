// The Kafka client, its logging, and topic administration. All kafkajs code lives in libs/stream.

import { type Socket, connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { type Logger, MailpoolsError, type RuntimeConfig, type TopicSpec } from '@mailpools/core';
import {
  type Admin,
  type ISocketFactory,
  type ITopicConfig,
  Kafka,
  type LogEntry,
  logLevel,
  type SASLOptions,
} from 'kafkajs';

// mailpools never used kafkajs's legacy partitioner, so its migration warning does not apply.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

// patches/kafkajs+2.2.4.patch changes kafkajs in three places: OffsetFetch v7 with require_stable
// (KIP-447) for committedOffset below; a second's cache of coordinator look-ups, which took four
// FindCoordinator round trips out of every transaction; and the request-queue timer below.
//
// kafkajs 2.2.4's request queue schedules a timer with a negative delay, which Node clamps to 1 ms
// and reports as TimeoutNegativeWarning. With nothing pending that timer rescheduled itself
// forever, on every connection: patches/kafkajs+2.2.4.patch stops it (an idle producer's process
// used 527 ms of CPU in 10 s without the patch, 17 ms with it). Keep every other warning as Node
// prints it.
const printWarning = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutNegativeWarning' && warning.stack?.includes('kafkajs')) return;
  for (const listener of printWarning) listener(warning);
});

export interface KafkaClientOptions {
  config: Pick<RuntimeConfig, 'kafkaBrokers' | 'kafkaSecurity'>;
  clientId: string;
  logger: Logger;
  /**
   * Every socket the client opens is kept here while it is open, so its owner can close what
   * kafkajs leaves behind: a consumer disconnected after it reconnected to a restarted broker
   * keeps one connection open (kafkajs 2.2.4), which keeps the process alive.
   */
  sockets?: Set<Socket>;
}

/** kafkajs's own way of connecting (TCP, or TLS with the broker's name), with the sockets kept. */
function trackingSocketFactory(sockets: Set<Socket>): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    const socket = ssl
      ? tlsConnect({ host, port, servername: host, ...(typeof ssl === 'object' ? ssl : {}) }, onConnect)
      : tcpConnect({ host, port }, onConnect);
    socket.setKeepAlive(true, 60_000);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    return socket;
  };
}

// kafkajs logs a broker's CONCURRENT_TRANSACTIONS answer as an error although it retries it
// at once; that is the normal cost of back-to-back transactions, not something to page on. It also
// warns that bounded retries weaken idempotence: the runtime retries whole batches itself (a
// transaction is aborted and redone), so a bounded kafkajs retry loses nothing.
const EXPECTED_NOISE =
  /concurrent operation on the same transaction|The coordinator is loading|The group coordinator is not available|This is not the correct coordinator|The group is rebalancing|Specified group generation id is not valid|Limiting retries for the idempotent producer/;

export function createKafka({ config, clientId, logger, sockets }: KafkaClientOptions): Kafka {
  const kafkaLogger = logger.child({ component: 'kafkajs' });
  const { protocol, sasl } = config.kafkaSecurity;
  return new Kafka({
    clientId,
    brokers: [...config.kafkaBrokers],
    // TLS with Node's defaults: the system CAs plus NODE_EXTRA_CA_CERTS, host names verified.
    ssl: protocol === 'SSL' || protocol === 'SASL_SSL',
    ...(sasl ? { sasl: { ...sasl } as SASLOptions } : {}),
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 100, retries: 8 },
    ...(sockets ? { socketFactory: trackingSocketFactory(sockets) } : {}),
    logCreator:
      () =>
      ({ level, log }: LogEntry) => {
        const { message, timestamp: _timestamp, logger: _name, ...extra } = log;
        // A broker's error response is retried by kafkajs or handed to the caller, which decides.
        if (message.startsWith('Response ') || EXPECTED_NOISE.test(`${message} ${String(extra.error ?? '')}`))
          return kafkaLogger.debug(extra, message);
        // kafkajs's own lines are at most warnings: whatever it cannot recover from reaches
        // mailpools as an error or a crash event, and mailpools logs that at error with its code.
        if (level === logLevel.ERROR || level === logLevel.WARN) kafkaLogger.warn(extra, message);
        else kafkaLogger.debug(extra, message);
      },
  });
}

/**
 * Creates the topics that do not exist yet; existing ones are left as they are. Replicas starting
 * together race to create the same topics: whoever loses sees "already exists" or a topic whose
 * metadata has not reached it yet, so the whole check is tried again until every topic exists.
 */
export async function ensureTopics(kafka: Kafka, specs: readonly TopicSpec[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const existing = new Set(await admin.listTopics());
        const topics: ITopicConfig[] = specs
          .filter((s) => !existing.has(s.topic))
          .map((s) => ({
            topic: s.topic,
            numPartitions: s.partitions,
            configEntries: s.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
          }));
        if (topics.length === 0) return;
        await admin.createTopics({ topics, waitForLeaders: true });
      } catch (error) {
        if (attempt >= TOPIC_SETUP_ATTEMPTS)
          throw new MailpoolsError(
            'MAILPOOLS_ERR_TOPIC_SETUP',
            `Could not create topics: ${(error as Error).message}.`,
            {
              hint: 'Check KAFKA_BROKERS and that the broker allows creating topics.',
              cause: error,
            },
          );
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  } finally {
    await admin.disconnect();
  }
}

const TOPIC_SETUP_ATTEMPTS = 10;

/**
 * The offset a consumer group will resume a partition from (-1 when nothing was committed), read
 * stable (OffsetFetch v7 `require_stable`, KIP-447, added to kafkajs by patches/): while a
 * transaction that commits offsets for the partition is still open, the group coordinator
 * answers UNSTABLE_OFFSET_COMMIT instead of the older offset, and the read is tried again. Called
 * right after fencing the partition's transactional id, when no transaction can open any more,
 * so the answer settles within a few milliseconds; a plain read could still see the offset from
 * before the previous holder's last commit (the chaos run caught that).
 */
export async function committedOffset(
  admin: Admin,
  groupId: string,
  topic: string,
  partition: number,
  /** Asked before each retry: false (the stage is stopping) ends the wait with the last error. */
  keepTrying: () => boolean = () => true,
): Promise<number> {
  const deadline = Date.now() + OFFSET_READ_TIMEOUT_MS;
  for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
    try {
      // This partition only: another partition's open transaction is no reason to wait.
      const [result] = await admin.fetchOffsets({
        groupId,
        topics: [topic],
        partitions: [partition],
        requireStable: true,
      });
      const entry = result?.partitions.find((p) => p.partition === partition);
      return entry ? Number(entry.offset) : -1;
    } catch (error) {
      // UNSTABLE_OFFSET_COMMIT: after fencing, only a transaction of another transactional id can
      // still be open here, and its coordinator aborts it within its transaction timeout. The
      // other retriable answers (a coordinator loading or moved) pass within seconds.
      if (!isRetriable(error) || Date.now() > deadline || !keepTrying()) throw error;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** The producers' transaction timeout: no open transaction outlives it. */
const OFFSET_READ_TIMEOUT_MS = 60_000;

/** The admin client committedOffset reads through; one per stage, connected at its start. */
export function offsetReader(kafka: Kafka): Admin {
  return kafka.admin();
}

/**
 * Looks up the group coordinator through the reader once, so that the first read after an
 * assignment does not pay for it. One plain read, never waited on: a zombie's open transaction
 * (a stage that was killed) would hold a stable read until this process fences it.
 */
export async function primeOffsetReader(admin: Admin, groupId: string, topic: string): Promise<void> {
  await admin.fetchOffsets({ groupId, topics: [topic], partitions: [0] }).catch(() => undefined);
}

/** True when trying the same work again later can succeed. */
/**
 * What kafkajs reports, not retriable, when the group moves on under a batch (a member killed or
 * joining, the coordinator restarting): the batch aborts and is redone after the rejoin.
 */
const GROUP_CHANGES = new Set([
  'REBALANCE_IN_PROGRESS',
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'KafkaJSGroupCoordinatorNotFound',
]);

export function isRetriable(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  if ((error as { retriable?: unknown }).retriable === true) return true;
  const { type, name } = error as { type?: unknown; name?: unknown };
  if (GROUP_CHANGES.has(String(type)) || GROUP_CHANGES.has(String(name))) return true;
  const code = (error as { code?: unknown }).code;
  return (
    typeof code === 'string' &&
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'EHOSTUNREACH'].includes(code)
  );
}

export function isFenced(error: unknown): boolean {
  const type = (error as { type?: string } | null)?.type;
  return (
    type === 'INVALID_PRODUCER_EPOCH' ||
    type === 'PRODUCER_FENCED' ||
    type === 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'
  );
}
