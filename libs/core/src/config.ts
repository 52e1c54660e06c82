// Configuration is read once from the environment, validated field by field, then frozen
// (Fastify/Temporal style: defaults, then compile, which throws on anything wrong).
import { MailpoolsError } from './errors.ts';

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
  /** Partitions of one input topic processed at once by one process. */
  readonly partitionsConcurrently: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** A consumer silent for this long leaves its group and its partitions move on. */
  readonly sessionTimeoutMs: number;
}

/** Every environment variable the services read, with its default and meaning (the README's table). */
export const ENVIRONMENT = [
  ['KAFKA_BROKERS', '127.0.0.1:9092', 'Comma-separated Kafka bootstrap servers. Unset: the local stack.'],
  [
    'KAFKA_SECURITY_PROTOCOL',
    'PLAINTEXT',
    '`PLAINTEXT`, `SSL` (TLS), `SASL_PLAINTEXT` or `SASL_SSL` (SASL over TLS), as the broker listener says.',
  ],
  ['KAFKA_SASL_MECHANISM', 'SCRAM-SHA-512', 'With SASL_*: `SCRAM-SHA-512`, `SCRAM-SHA-256` or `PLAIN`.'],
  ['KAFKA_SASL_USERNAME', '', 'With SASL_*: the Kafka user.'],
  ['KAFKA_SASL_PASSWORD', '', 'With SASL_*: its password (never logged).'],
  [
    'SCHEMA_REGISTRY_URL',
    'http://127.0.0.1:8081/apis/ccompat/v7',
    'Confluent-compatible schema registry API.',
  ],
  ['SCHEMA_REGISTRY_USERNAME', '', 'Basic-auth user of the registry, when it asks for one.'],
  ['SCHEMA_REGISTRY_PASSWORD', '', 'Its password (never logged).'],
  ['REDIS_URL', 'redis://127.0.0.1:6380', 'Redis for counters, caches and restrictions.'],
  ['MAILPOOLS_DELIVERY', 'exactly-once', '`exactly-once` (Kafka transactions) or `at-least-once`.'],
  ['MAILPOOLS_NAMESPACE', '', 'Prefix of every topic and consumer group id.'],
  ['MAILPOOLS_PARTITIONS', '6', 'Partitions of topics created at start-up.'],
  ['MAILPOOLS_HTTP_HOST', '127.0.0.1', 'Address of the /metrics, /healthz, /readyz server.'],
  ['MAILPOOLS_HTTP_PORT', '9400', 'Port of that server; 0 picks a free one.'],
  ['LOG_LEVEL', 'info', 'pino level: fatal, error, warn, info, debug, trace, silent.'],
  [
    'MAILPOOLS_MAX_RAW_BYTES',
    '262144',
    'Largest raw message kept in an event; longer ones are truncated and flagged.',
  ],
  ['MAILPOOLS_FETCH_MAX_BYTES_PER_PARTITION', '1048576', 'Largest fetch per partition: the batch size.'],
  ['MAILPOOLS_PARTITIONS_CONCURRENTLY', '3', 'Partitions one process works on at once.'],
  ['MAILPOOLS_RETRY_INITIAL_MS', '200', 'First back-off after a transient failure; doubles each time.'],
  ['MAILPOOLS_RETRY_MAX_MS', '30000', 'Longest back-off between retries; retries never give up.'],
  [
    'MAILPOOLS_SESSION_TIMEOUT_MS',
    '30000',
    'Consumer session timeout: how soon the partitions of a dead process move on.',
  ],
  ['MAILPOOLS_POLICY_FILE', '', 'Tenant policy (JSON); unset: the built-in defaults.'],
  [
    'MAILPOOLS_SPAM_MODEL',
    '',
    'spam-classifier: model artefact; unset: the one in services/spam-classifier/model/.',
  ],
  ['MAILPOOLS_SPAM_MAX_BYTES', '32768', 'spam-classifier: bytes of a message parsed at most.'],
  ['MAILPOOLS_SPAM_TIMEOUT_MS', '50', 'spam-classifier: time bound of parsing one message.'],
  [
    'MAILPOOLS_LIMITS_GRACE_S',
    '300',
    'limit-counter: how late an event may be and still count at its own event time.',
  ],
  [
    'MAILPOOLS_LIMITS_DEDUP_TTL_S',
    '604800',
    'limit-counter: how long a message id is remembered, so a replay counts nothing (cover the topic retention).',
  ],
  ['MAILPOOLS_LIMITS_MAX_DEFER_MIN', '1440', 'limit-counter: furthest a throttled message is deferred.'],
  [
    'MAILPOOLS_AUTH_MAX_BYTES',
    '262144',
    'auth-verifier: raw messages longer than this get SPF only (status PARTIAL).',
  ],
  ['MAILPOOLS_AUTH_TIMEOUT_MS', '5000', 'auth-verifier: time bound of the checks of one message.'],
  ['MAILPOOLS_AUTH_MTA', 'mailpools', 'auth-verifier: the authserv-id (host name) in the results.'],
  [
    'DATABASE_URL',
    'postgres://postgres@127.0.0.1:5433/mailpools',
    "trace-writer: PostgreSQL for the message trace (the database is created when missing); by default the local stack's own.",
  ],
  [
    'MAILPOOLS_TRACE_RETENTION_DAYS',
    '10',
    'trace-writer: days of assignments kept (whole days are dropped).',
  ],
  ['MAILPOOLS_TRACE_API_PORT', '9480', 'trace-writer: port of the read-only trace API; 0 picks a free one.'],
  [
    'MAILPOOLS_TRACE_API_TOKEN',
    '',
    'trace-writer: the bearer token the trace API requires; unset: the API is off.',
  ],
  [
    'MAILPOOLS_DNS_SERVERS',
    '',
    'DNS resolvers, host[:port] comma-separated; unset: the nameservers of /etc/resolv.conf.',
  ],
  ['MAILPOOLS_DNS_TIMEOUT_MS', '1000', 'DNS: wait for one answer this long.'],
  ['MAILPOOLS_DNS_ATTEMPTS', '3', 'DNS: tries per question over the servers in turn, then TEMPERROR.'],
  [
    'MAILPOOLS_DNS_CACHE_SIZE',
    '100000',
    'DNS: answers kept in each process (LRU) in front of the Redis cache.',
  ],
  ['MAILPOOLS_DNS_MAX_TTL_S', '3600', 'DNS: longest time a positive answer is cached.'],
  [
    'MAILPOOLS_DNS_MAX_NEGATIVE_TTL_S',
    '900',
    'DNS: longest time NXDOMAIN or NODATA is cached (RFC 2308 SOA minimum otherwise).',
  ],
] as const;

type Env = Readonly<Record<string, string | undefined>>;

function configError(field: string, problem: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_CONFIG_INVALID', `${field} ${problem}.`, {
    hint: `Fix ${field} in the environment (see the configuration table in the README).`,
  });
}

function defaultOf(name: string): string {
  const entry = ENVIRONMENT.find(([key]) => key === name);
  if (!entry) throw new Error(`no default for ${name}`);
  return entry[1];
}

/** A setting as text: its value in `env`, else its default from ENVIRONMENT. */
export function setting(env: Env, name: string): string {
  const value = env[name];
  return value === undefined || value === '' ? defaultOf(name) : value.trim();
}

export function integer(env: Env, name: string, min: number, max: number): number {
  const raw = setting(env, name);
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw configError(name, `must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

/** A URL fit for logs and errors: the password of its user part, if any, replaced by ***. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

function url(env: Env, name: string, protocols: string[]): string {
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
  const logLevel = setting(env, 'LOG_LEVEL');
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw configError('LOG_LEVEL', `must be a pino level, got "${logLevel}"`);
  }
  const retryInitialMs = integer(env, 'MAILPOOLS_RETRY_INITIAL_MS', 1, 60_000);
  const retryMaxMs = integer(env, 'MAILPOOLS_RETRY_MAX_MS', 1, 600_000);
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
    partitions: integer(env, 'MAILPOOLS_PARTITIONS', 1, 1000),
    httpHost: setting(env, 'MAILPOOLS_HTTP_HOST'),
    httpPort: integer(env, 'MAILPOOLS_HTTP_PORT', 0, 65_535),
    logLevel,
    maxRawBytes: integer(env, 'MAILPOOLS_MAX_RAW_BYTES', 1024, 64 * 1024 * 1024),
    fetchMaxBytesPerPartition: integer(
      env,
      'MAILPOOLS_FETCH_MAX_BYTES_PER_PARTITION',
      1024,
      64 * 1024 * 1024,
    ),
    partitionsConcurrently: integer(env, 'MAILPOOLS_PARTITIONS_CONCURRENTLY', 1, 64),
    retryInitialMs,
    retryMaxMs,
    sessionTimeoutMs: integer(env, 'MAILPOOLS_SESSION_TIMEOUT_MS', 6_000, 300_000),
  });
}

/**
 * Node flags every service process runs with (npm start, tests, Compose). Stream stages allocate
 * many short-lived objects per record; a 64 MB young generation (16 MB by default) cuts the
 * number of scavenges, which measurably raises the spam classifier's messages/s (README).
 */
export const SERVICE_NODE_FLAGS = ['--max-semi-space-size=64'] as const;
