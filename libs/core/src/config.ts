// Configuration is read once from the environment, validated field by field, then frozen
// (Fastify/Temporal style: defaults, then compile, which throws on anything wrong).
import { defineSettings, type Env, settingError } from './settings.ts';

export type DeliveryMode = 'exactly-once' | 'at-least-once';

export type KafkaSecurityProtocol = 'PLAINTEXT' | 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL';

/** How to reach Kafka, in Kafka's own terms; TLS trusts the system CAs plus NODE_EXTRA_CA_CERTS. */
export interface KafkaSecurity {
  readonly protocol: KafkaSecurityProtocol;
  /** With SASL_*: the mechanism and the credentials. */
  readonly sasl?: {
    readonly mechanism: 'scram-sha-256' | 'scram-sha-512' | 'plain';
    readonly username: string;
    readonly password: string;
  };
}

export interface RuntimeConfig {
  /** Kafka bootstrap brokers. */
  readonly kafkaBrokers: readonly string[];
  readonly kafkaSecurity: KafkaSecurity;
  readonly schemaRegistryUrl: string;
  /** Basic-auth credentials of the registry, when it asks for them. */
  readonly schemaRegistryAuth?: { readonly username: string; readonly password: string };
  readonly redisUrl: string;
  /** PostgreSQL of the message trace. */
  readonly databaseUrl: string;
  readonly delivery: DeliveryMode;
  /** Prefix for every topic name and consumer group id; isolates tests and environments. */
  readonly namespace: string;
  readonly partitions: number;
  readonly httpHost: string;
  /** Port of /metrics, /healthz and /readyz; 0 picks a free one. */
  readonly httpPort: number;
  readonly logLevel: string;
  /** Largest raw RFC 5322 message the producer library puts into an event. */
  readonly maxRawBytes: number;
  readonly fetchMaxBytesPerPartition: number;
  /** The broker answers a fetch once this many bytes are ready, or after fetchMaxWaitMs. */
  readonly fetchMinBytes: number;
  readonly fetchMaxWaitMs: number;
  /** Partitions of one input topic processed at once by one process. */
  readonly partitionsConcurrently: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** A consumer silent for this long leaves its group and its partitions move on. */
  readonly sessionTimeoutMs: number;
}

/** What every service reads (the runtime, Kafka, the registry, Redis, PostgreSQL). */
export const RUNTIME_SETTINGS = defineSettings('every service', {
  KAFKA_BROKERS: {
    default: '127.0.0.1:9092',
    doc: 'Comma-separated Kafka bootstrap servers. Unset: `npm start`/`npm test` start the local stack.',
  },
  KAFKA_SECURITY_PROTOCOL: {
    default: 'PLAINTEXT',
    doc: "`PLAINTEXT`, `SSL` (TLS), `SASL_PLAINTEXT` or `SASL_SSL` (SASL over TLS), as the broker's listener says. TLS trusts the system CAs plus the PEM file in Node's `NODE_EXTRA_CA_CERTS`, and checks host names.",
  },
  KAFKA_SASL_MECHANISM: {
    default: 'SCRAM-SHA-512',
    doc: 'With `SASL_*`: `SCRAM-SHA-512`, `SCRAM-SHA-256` or `PLAIN`.',
  },
  KAFKA_SASL_USERNAME: { default: '', doc: 'With `SASL_*`: the Kafka user (required then).' },
  KAFKA_SASL_PASSWORD: { default: '', doc: 'With `SASL_*`: its password (required then; never logged).' },
  SCHEMA_REGISTRY_URL: {
    default: 'http://127.0.0.1:8081/apis/ccompat/v7',
    doc: 'Confluent-compatible schema registry API (`https:` for TLS).',
  },
  SCHEMA_REGISTRY_USERNAME: { default: '', doc: 'Basic-auth user of the registry, when it asks for one.' },
  SCHEMA_REGISTRY_PASSWORD: { default: '', doc: 'Its password (never logged).' },
  REDIS_URL: {
    default: 'redis://127.0.0.1:6380',
    doc: 'Redis for counters, caches and restrictions; the local stack uses this one instead of starting its own when set.',
  },
  DATABASE_URL: {
    default: 'postgres://postgres@127.0.0.1:5433/mailpools',
    doc: "Trace-writer and `mailpools trace`: PostgreSQL of the message trace (by default the local stack's own); the database is created when missing, each namespace gets its own schema.",
  },
  MAILPOOLS_DELIVERY: {
    default: 'exactly-once',
    doc: '`exactly-once` (Kafka transactions) or `at-least-once`.',
  },
  MAILPOOLS_NAMESPACE: { default: '', doc: 'Prefix of every topic and consumer group id.' },
  MAILPOOLS_PARTITIONS: { default: '6', doc: 'Partitions of topics created at start-up.', min: 1, max: 1000 },
  MAILPOOLS_HTTP_HOST: {
    default: '127.0.0.1',
    doc: 'Address of the `/metrics`, `/healthz`, `/readyz` server.',
  },
  MAILPOOLS_HTTP_PORT: {
    default: '9400',
    doc: 'Its port; 0 picks a free one. `npm start` gives the first service this port and the next ones the following ports in pipeline order (9400, 9401, …); with 0 each gets a free port, printed as it starts.',
    min: 0,
    max: 65_535,
  },
  LOG_LEVEL: { default: 'info', doc: 'Pino level: fatal, error, warn, info, debug, trace, silent.' },
  LOG_FORMAT: {
    default: 'auto',
    doc: '`json` (one JSON object a line, for collectors), `pretty` (readable, coloured lines through pino-pretty) or `auto`: pretty when stdout is a terminal, JSON otherwise. `mailpools start` passes its own choice to the services (`--json-logs` forces JSON).',
  },
  MAILPOOLS_MAX_RAW_BYTES: {
    default: '262144',
    doc: 'Largest raw message kept in an event; longer ones are truncated and flagged (`rawTruncated`, `rawSize`).',
    min: 1024,
    max: 64 * 1024 * 1024,
  },
  MAILPOOLS_FETCH_MAX_BYTES_PER_PARTITION: {
    default: '1048576',
    doc: 'Largest fetch per partition: the batch size.',
    min: 1024,
    max: 64 * 1024 * 1024,
  },
  MAILPOOLS_FETCH_MIN_BYTES: {
    default: '1',
    doc: 'The broker holds a fetch until this many bytes are ready (or `MAILPOOLS_FETCH_MAX_WAIT_MS` passed): more than 1 trades latency for larger batches, fewer transactions.',
    min: 1,
    max: 64 * 1024 * 1024,
  },
  MAILPOOLS_FETCH_MAX_WAIT_MS: {
    default: '5000',
    doc: 'Longest the broker holds a fetch that has fewer than `MAILPOOLS_FETCH_MIN_BYTES` ready.',
    min: 0,
    max: 60_000,
  },
  MAILPOOLS_PARTITIONS_CONCURRENTLY: {
    default: '1',
    doc: 'Partitions one process works on at once. 1 (measured lower latency and CPU than 3, see docs/latency.md): while one partition is in a transaction the others gather larger batches. More lets the other partitions go on while one retries a transient failure.',
    min: 1,
    max: 64,
  },
  MAILPOOLS_RETRY_INITIAL_MS: {
    default: '200',
    doc: 'First back-off after a transient failure; doubles each time.',
    min: 1,
    max: 60_000,
  },
  MAILPOOLS_RETRY_MAX_MS: {
    default: '30000',
    doc: 'Longest back-off between retries; retries never give up.',
    min: 1,
    max: 600_000,
  },
  MAILPOOLS_SESSION_TIMEOUT_MS: {
    default: '30000',
    doc: 'Consumer session timeout: how soon the partitions of a dead process move to another.',
    min: 6_000,
    max: 300_000,
  },
});

type RuntimeSetting = keyof typeof RUNTIME_SETTINGS.specs;
const setting = (env: Env, name: RuntimeSetting) => RUNTIME_SETTINGS.text(env, name);
const integer = (env: Env, name: RuntimeSetting) => RUNTIME_SETTINGS.integer(env, name);
const configError = settingError;

/** A URL fit for logs and errors: the password of its user part, if any, replaced by ***. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

function url(env: Env, name: RuntimeSetting, protocols: string[]): string {
  const raw = setting(env, name);
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw configError(name, `must be a URL, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw configError(name, `must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return raw.replace(/\/+$/, '');
}

function brokers(env: Env): string[] {
  const list = setting(env, 'KAFKA_BROKERS')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  for (const broker of list) {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker))
      throw configError('KAFKA_BROKERS', `has "${broker}", expected host:port`);
  }
  if (list.length === 0) throw configError('KAFKA_BROKERS', 'is empty');
  return list;
}

function kafkaSecurity(env: Env): KafkaSecurity {
  const protocol = setting(env, 'KAFKA_SECURITY_PROTOCOL').toUpperCase();
  if (!['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'].includes(protocol))
    throw configError(
      'KAFKA_SECURITY_PROTOCOL',
      `must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got "${protocol}"`,
    );
  if (!protocol.startsWith('SASL_')) return { protocol: protocol as KafkaSecurityProtocol };
  const mechanism = setting(env, 'KAFKA_SASL_MECHANISM').toLowerCase();
  if (mechanism !== 'scram-sha-256' && mechanism !== 'scram-sha-512' && mechanism !== 'plain')
    throw configError(
      'KAFKA_SASL_MECHANISM',
      `must be SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN, got "${mechanism}"`,
    );
  const username = setting(env, 'KAFKA_SASL_USERNAME');
  const password = setting(env, 'KAFKA_SASL_PASSWORD');
  if (!username)
    throw configError('KAFKA_SASL_USERNAME', `is needed with KAFKA_SECURITY_PROTOCOL=${protocol}`);
  if (!password)
    throw configError('KAFKA_SASL_PASSWORD', `is needed with KAFKA_SECURITY_PROTOCOL=${protocol}`);
  return { protocol: protocol as KafkaSecurityProtocol, sasl: { mechanism, username, password } };
}

function registryAuth(env: Env): RuntimeConfig['schemaRegistryAuth'] {
  const username = setting(env, 'SCHEMA_REGISTRY_USERNAME');
  const password = setting(env, 'SCHEMA_REGISTRY_PASSWORD');
  if (!username && !password) return undefined;
  if (!username) throw configError('SCHEMA_REGISTRY_USERNAME', 'is needed with SCHEMA_REGISTRY_PASSWORD');
  return { username, password };
}

export function loadRuntimeConfig(env: Env = process.env): RuntimeConfig {
  const delivery = setting(env, 'MAILPOOLS_DELIVERY');
  if (delivery !== 'exactly-once' && delivery !== 'at-least-once') {
    throw configError('MAILPOOLS_DELIVERY', `must be "exactly-once" or "at-least-once", got "${delivery}"`);
  }
  const namespace = env.MAILPOOLS_NAMESPACE?.trim() ?? '';
  if (!/^[a-zA-Z0-9._-]*$/.test(namespace)) {
    throw configError('MAILPOOLS_NAMESPACE', 'may hold only letters, digits, ".", "_" and "-"');
  }
  const logFormat = setting(env, 'LOG_FORMAT').toLowerCase();
  if (!['auto', 'json', 'pretty'].includes(logFormat))
    throw configError('LOG_FORMAT', `must be auto, json or pretty, got "${logFormat}"`);
  const logLevel = setting(env, 'LOG_LEVEL');
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw configError('LOG_LEVEL', `must be a pino level, got "${logLevel}"`);
  }
  const retryInitialMs = integer(env, 'MAILPOOLS_RETRY_INITIAL_MS');
  const retryMaxMs = integer(env, 'MAILPOOLS_RETRY_MAX_MS');
  if (retryMaxMs < retryInitialMs) {
    throw configError(
      'MAILPOOLS_RETRY_MAX_MS',
      `must not be below MAILPOOLS_RETRY_INITIAL_MS (${retryInitialMs})`,
    );
  }
  return Object.freeze({
    kafkaBrokers: Object.freeze(brokers(env)),
    kafkaSecurity: kafkaSecurity(env),
    schemaRegistryUrl: url(env, 'SCHEMA_REGISTRY_URL', ['http:', 'https:']),
    schemaRegistryAuth: registryAuth(env),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    delivery,
    namespace,
    partitions: integer(env, 'MAILPOOLS_PARTITIONS'),
    httpHost: setting(env, 'MAILPOOLS_HTTP_HOST'),
    httpPort: integer(env, 'MAILPOOLS_HTTP_PORT'),
    logLevel,
    maxRawBytes: integer(env, 'MAILPOOLS_MAX_RAW_BYTES'),
    fetchMaxBytesPerPartition: integer(env, 'MAILPOOLS_FETCH_MAX_BYTES_PER_PARTITION'),
    fetchMinBytes: integer(env, 'MAILPOOLS_FETCH_MIN_BYTES'),
    fetchMaxWaitMs: integer(env, 'MAILPOOLS_FETCH_MAX_WAIT_MS'),
    partitionsConcurrently: integer(env, 'MAILPOOLS_PARTITIONS_CONCURRENTLY'),
    retryInitialMs,
    retryMaxMs,
    sessionTimeoutMs: integer(env, 'MAILPOOLS_SESSION_TIMEOUT_MS'),
  });
}

/**
 * Node flags every service process runs with (npm start, tests, Compose). Stream stages allocate
 * many short-lived objects per record; a 64 MB young generation (16 MB by default) cuts the
 * number of scavenges, which measurably raises the spam classifier's messages/s (services/spam-classifier/README.md).
 */
export const SERVICE_NODE_FLAGS = ['--max-semi-space-size=64'] as const;
