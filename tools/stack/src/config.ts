// Configuration of the local stack. Every setting has an environment variable; an explicit option wins.
//
// | Variable                         | Default           | Meaning                                                    |
// |----------------------------------|-------------------|------------------------------------------------------------|
// | MAILPOOLS_STACK_DIR              | <repo>/.stack     | data, logs, generated configs (git-ignored)                |
// | MAILPOOLS_CACHE_DIR              | <repo>/.cache     | extracted downloads: Kafka jars, registry app (git-ignored)|
// | MAILPOOLS_KAFKA_PORT             | 9092              | Kafka client listener (PLAINTEXT) on 127.0.0.1             |
// | MAILPOOLS_KAFKA_CONTROLLER_PORT  | 9093              | KRaft controller listener on 127.0.0.1                     |
// | MAILPOOLS_KAFKA_SASL_PORT        | 9094              | Kafka SASL_SSL listener (SCRAM-SHA-512 over TLS)           |
// | MAILPOOLS_REGISTRY_PORT          | 8081              | Apicurio Registry HTTP port on 127.0.0.1                   |
// | MAILPOOLS_REDIS_PORT             | 6380              | port of the stack's own Redis (unused when REDIS_URL set)  |
// | REDIS_URL                        | (unset)           | use this Redis instead of starting one; checked with PING  |
// | MAILPOOLS_POSTGRES_PORT          | 5433              | port of the stack's own PostgreSQL (unused with DATABASE_URL)|
// | MAILPOOLS_POSTGRES_DATA_DIR      | see below         | data directory of the stack's own PostgreSQL               |
// | DATABASE_URL                     | (unset)           | use this PostgreSQL instead of starting one                |
//
// 6380, not 6379, and 5433, not 5432, because these machines already run a system Redis and
// PostgreSQL on the standard ports; docker-compose.yml publishes its own on the same two.
//
// PostgreSQL refuses to run as root, so under root the stack's cluster runs as the `postgres`
// system user. Its data directory is <stack>/data/postgres when that user can reach it, and
// otherwise (a checkout in a directory only root can enter, as `mktemp -d` or /root give) under
// that user's home: ~postgres/mailpools/<a hash of the stack directory>.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { defineSettings } from '@mailpools/core';
import { StackError } from './errors.ts';

/** The variables above, as the configuration page shows them (docs/configuration.md). */
export const STACK_SETTINGS = defineSettings('the local stack (mailpools stack, npm start, npm test)', {
  MAILPOOLS_STACK_DIR: { default: '<repo>/.stack', doc: 'Data, logs and generated configs (git-ignored).' },
  MAILPOOLS_CACHE_DIR: {
    default: '<repo>/.cache',
    doc: 'Extracted downloads: the Kafka jars and the registry (git-ignored).',
  },
  MAILPOOLS_KAFKA_PORT: { default: '9092', doc: 'Kafka client listener on 127.0.0.1.' },
  MAILPOOLS_KAFKA_CONTROLLER_PORT: { default: '9093', doc: 'KRaft controller listener on 127.0.0.1.' },
  MAILPOOLS_KAFKA_SASL_PORT: {
    default: '9094',
    doc: 'Kafka listener with SASL/SCRAM-SHA-512 over TLS on 127.0.0.1 (`mailpools stack credentials`).',
  },
  MAILPOOLS_REGISTRY_PORT: { default: '8081', doc: 'Apicurio Registry HTTP port on 127.0.0.1.' },
  MAILPOOLS_REDIS_PORT: {
    default: '6380',
    doc: "Port of the stack's own Redis (not started when `REDIS_URL` is set).",
  },
  MAILPOOLS_POSTGRES_PORT: {
    default: '5433',
    doc: "Port of the stack's own PostgreSQL (not started when `DATABASE_URL` is set).",
  },
  MAILPOOLS_POSTGRES_DATA_DIR: {
    default: '<stack>/data/postgres',
    doc: "Data directory of the stack's own PostgreSQL. Under root the cluster runs as the `postgres` user; when that user cannot enter the stack directory (a checkout only root can enter, as `mktemp -d` or `/root` give), the default is `~postgres/mailpools/<hash of the stack directory>`.",
  },
});

export const KAFKA_VERSION = '4.1.1';
// 3.0.9: 3.1.x is not on Maven Central as seen from here, 3.2+ needs Java 21 and the default java is 17.
export const REGISTRY_VERSION = '3.0.9';
export const HOST = '127.0.0.1';

export interface StackOptions {
  stackDir?: string;
  cacheDir?: string;
  kafkaPort?: number;
  kafkaControllerPort?: number;
  kafkaSaslPort?: number;
  registryPort?: number;
  redisPort?: number;
  /** A Redis to use instead of starting one. null: start our own even when REDIS_URL is set. */
  redisUrl?: string | null;
  postgresPort?: number;
  /** A PostgreSQL to use instead of starting one. null: start our own even when DATABASE_URL is set. */
  databaseUrl?: string | null;
  /** Where defaults come from; process.env unless given. */
  env?: Record<string, string | undefined>;
  /** Receives each human-readable progress line; console.log unless given. */
  log?: (line: string) => void;
}

export interface StackConfig {
  repoRoot: string;
  stackDir: string;
  cacheDir: string;
  kafkaPort: number;
  kafkaControllerPort: number;
  kafkaSaslPort: number;
  registryPort: number;
  redisPort: number;
  /** Set when Redis is external (REDIS_URL); then the stack never starts or stops a Redis. */
  externalRedisUrl: string | undefined;
  postgresPort: number;
  /** Set when PostgreSQL is external (DATABASE_URL); then the stack never starts or stops one. */
  externalDatabaseUrl: string | undefined;
  log: (line: string) => void;
  paths: StackPaths;
}

export interface StackPaths {
  logDir: string;
  confDir: string;
  /** Everything `down --wipe` deletes. */
  dataDir: string;
  kafkaDataDir: string;
  postgresDataDir: string;
  kafkaHome: string;
  kafkaLib: string;
  registryHome: string;
  fetchLog: string;
  pom: string;
}

// tools/stack/src → repository root.
const REPO_ROOT = resolve(import.meta.dirname, '../../..');

const portSetting = (env: keyof typeof STACK_SETTINGS.specs) => ({
  env,
  fallback: Number(STACK_SETTINGS.specs[env].default),
});

export const PORT_SETTINGS = {
  kafkaPort: portSetting('MAILPOOLS_KAFKA_PORT'),
  kafkaControllerPort: portSetting('MAILPOOLS_KAFKA_CONTROLLER_PORT'),
  kafkaSaslPort: portSetting('MAILPOOLS_KAFKA_SASL_PORT'),
  registryPort: portSetting('MAILPOOLS_REGISTRY_PORT'),
  redisPort: portSetting('MAILPOOLS_REDIS_PORT'),
  postgresPort: portSetting('MAILPOOLS_POSTGRES_PORT'),
} as const;

type PortKey = keyof typeof PORT_SETTINGS;

function port(key: PortKey, options: StackOptions, env: Record<string, string | undefined>): number {
  const { env: name, fallback } = PORT_SETTINGS[key];
  const given = options[key];
  const raw = given !== undefined ? String(given) : env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > 65535) {
    throw new StackError('MAILPOOLS_ERR_STACK_BAD_CONFIG', `${name} is "${raw}", which is not a port.`, {
      hint: `Set ${name} (or the ${key} option) to an integer from 1 to 65535, or unset it for ${fallback}.`,
    });
  }
  return value;
}

export function resolveConfig(options: StackOptions = {}): StackConfig {
  const env = options.env ?? process.env;
  const stackDir = resolve(options.stackDir ?? (env.MAILPOOLS_STACK_DIR || join(REPO_ROOT, '.stack')));
  const cacheDir = resolve(options.cacheDir ?? (env.MAILPOOLS_CACHE_DIR || join(REPO_ROOT, '.cache')));
  const ports = {
    kafkaPort: port('kafkaPort', options, env),
    kafkaControllerPort: port('kafkaControllerPort', options, env),
    kafkaSaslPort: port('kafkaSaslPort', options, env),
    registryPort: port('registryPort', options, env),
    redisPort: port('redisPort', options, env),
    postgresPort: port('postgresPort', options, env),
  };
  const externalRedisUrl =
    options.redisUrl === null ? undefined : options.redisUrl || env.REDIS_URL || undefined;
  if (externalRedisUrl !== undefined && !/^rediss?:\/\//.test(externalRedisUrl)) {
    throw new StackError(
      'MAILPOOLS_ERR_STACK_BAD_CONFIG',
      `REDIS_URL is "${externalRedisUrl}", not a Redis URL.`,
      {
        hint: 'Use the form redis://host:port (or rediss:// for TLS), or unset REDIS_URL to let the stack start Redis.',
      },
    );
  }

  const externalDatabaseUrl =
    options.databaseUrl === null ? undefined : options.databaseUrl || env.DATABASE_URL || undefined;
  if (externalDatabaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(externalDatabaseUrl)) {
    throw new StackError('MAILPOOLS_ERR_STACK_BAD_CONFIG', 'DATABASE_URL is not a PostgreSQL URL.', {
      hint: 'Use the form postgres://user@host:port/database, or unset DATABASE_URL to let the stack start PostgreSQL.',
    });
  }

  // Two parts on one port would fail later with a confusing "port in use" against ourselves.
  const used = Object.entries(ports).filter(
    ([key]) =>
      (key !== 'redisPort' || externalRedisUrl === undefined) &&
      (key !== 'postgresPort' || externalDatabaseUrl === undefined),
  );
  for (const [key, value] of used) {
    const other = used.find(([otherKey, otherValue]) => otherKey !== key && otherValue === value);
    if (other) {
      const a = PORT_SETTINGS[key as PortKey].env;
      const b = PORT_SETTINGS[other[0] as PortKey].env;
      throw new StackError('MAILPOOLS_ERR_STACK_BAD_CONFIG', `${a} and ${b} are both ${value}.`, {
        hint: `Give ${a} and ${b} different ports.`,
      });
    }
  }

  const dataDir = join(stackDir, 'data');
  const postgresDataDir = resolve(
    env.MAILPOOLS_POSTGRES_DATA_DIR || defaultPostgresDataDir(stackDir, join(dataDir, 'postgres')),
  );
  const kafkaHome = join(cacheDir, `kafka-${KAFKA_VERSION}`);
  return {
    repoRoot: REPO_ROOT,
    stackDir,
    cacheDir,
    ...ports,
    externalRedisUrl,
    externalDatabaseUrl,
    log: options.log ?? ((line) => console.log(line)),
    paths: {
      logDir: join(stackDir, 'logs'),
      confDir: join(stackDir, 'conf'),
      dataDir,
      kafkaDataDir: join(dataDir, 'kafka'),
      postgresDataDir,
      kafkaHome,
      kafkaLib: join(kafkaHome, 'lib'),
      registryHome: join(cacheDir, `apicurio-registry-${REGISTRY_VERSION}`),
      fetchLog: join(stackDir, 'logs', 'fetch.log'),
      pom: resolve(import.meta.dirname, '../pom.xml'),
    },
  };
}

export interface ClusterOwner {
  uid: number;
  gid: number;
  home: string;
}

let postgresUser: ClusterOwner | null | undefined;

/** Under root, the `postgres` system user the stack's PostgreSQL runs as; undefined otherwise. */
export function postgresClusterOwner(): ClusterOwner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  if (postgresUser === undefined) {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((entry) => entry.startsWith('postgres:'));
    const [, , uid, gid, , home] = line?.split(':') ?? [];
    postgresUser = line ? { uid: Number(uid), gid: Number(gid), home: home || '/var/lib/postgresql' } : null;
  }
  return postgresUser ?? undefined;
}

/** Whether `owner` may enter every directory on the way to `path` (the parts that exist yet). */
export function userCanEnter(owner: ClusterOwner, path: string): boolean {
  for (let dir = path; ; dir = dirname(dir)) {
    let stat: ReturnType<typeof statSync> | undefined;
    try {
      stat = statSync(dir);
    } catch {
      // not created yet: root creates it with mode 0755, which anyone may enter
    }
    if (stat) {
      const mode = Number(stat.mode);
      const may =
        stat.uid === owner.uid ? mode & 0o100 : stat.gid === owner.gid ? mode & 0o010 : mode & 0o001;
      if (!may) return false;
    }
    if (dir === dirname(dir)) return true;
  }
}

function defaultPostgresDataDir(stackDir: string, inStack: string): string {
  const owner = postgresClusterOwner();
  if (owner === undefined || userCanEnter(owner, inStack)) return inStack;
  const id = createHash('sha256').update(stackDir).digest('hex').slice(0, 16);
  return join(owner.home, 'mailpools', id);
}

/** The tag every process of this stack carries on its command line, so `down` signals only its own. */
export function stackTag(config: StackConfig): string {
  return `mailpools.stack=${config.stackDir}`;
}

export interface StackEndpoints {
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  redisUrl: string;
  databaseUrl: string;
}

export function endpointsOf(config: StackConfig): StackEndpoints {
  return {
    kafkaBrokers: [`${HOST}:${config.kafkaPort}`],
    // The Confluent-compatible API of Apicurio, which @kafkajs/confluent-schema-registry talks to.
    schemaRegistryUrl: `http://${HOST}:${config.registryPort}/apis/ccompat/v7`,
    redisUrl: config.externalRedisUrl ?? `redis://${HOST}:${config.redisPort}`,
    databaseUrl: config.externalDatabaseUrl ?? `postgres://postgres@${HOST}:${config.postgresPort}/mailpools`,
  };
}
