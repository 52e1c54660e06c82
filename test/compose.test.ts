// docker-compose.yml, checked without Docker: valid against the Compose specification's JSON schema,
// one service per folder in services/ (scalable, and configured with exactly the configuration
// table of libs/core), and the stack those services need.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SERVICE_NODE_FLAGS } from '@mailpools/core';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { SERVICE_SETTINGS } from '../docs/generate.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const SERVICES_DIR = join(ROOT, 'services');
const EXTENSION = 'x-mailpools-service';
const INFRA = ['kafka', 'registry', 'redis', 'postgres'] as const;
/** What operators look at; the services do not wait for it. */
const MONITORING = ['prometheus', 'grafana'] as const;
/** The variables docker-compose.yml may interpolate (its header documents them); anything else is a typo or an unescaped `$`. */
const HOST_VARIABLES = new Set([
  'MAILPOOLS_KAFKA_HOST_PORT',
  'MAILPOOLS_REGISTRY_HOST_PORT',
  'MAILPOOLS_REDIS_HOST_PORT',
  'MAILPOOLS_POSTGRES_HOST_PORT',
  'MAILPOOLS_PROMETHEUS_HOST_PORT',
  'MAILPOOLS_GRAFANA_HOST_PORT',
]);
/** Where containers differ from the table's defaults (which point at the local stack on 127.0.0.1). */
const IN_NETWORK: Readonly<Record<string, string>> = {
  KAFKA_BROKERS: 'kafka:9092',
  SCHEMA_REGISTRY_URL: 'http://registry:8080/apis/ccompat/v7',
  REDIS_URL: 'redis://redis:6379',
  DATABASE_URL: 'postgres://postgres@postgres:5432/mailpools',
  MAILPOOLS_HTTP_HOST: '0.0.0.0',
  MAILPOOLS_HTTP_PORT: '9400',
};

type Dict = Record<string, unknown>;

function isDict(value: unknown): value is Dict {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function dict(value: unknown, where: string): Dict {
  assert.ok(isDict(value), `${where} must be a mapping, got ${JSON.stringify(value)}`);
  return value;
}

function loadCompose(): Dict {
  // Merge keys (`<<: *mailpools-service`) as Compose resolves them.
  const doc = parseDocument(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true });
  assert.deepEqual(
    [...doc.errors, ...doc.warnings].map((e) => e.message),
    [],
    'docker-compose.yml does not parse cleanly',
  );
  return dict(doc.toJS(), 'docker-compose.yml');
}

/** The Compose specification's schema as the dclint package ships it (a copy of compose-spec/compose-spec schema/compose-spec.json). */
function composeSchemaPath(): string {
  const manifest = createRequire(import.meta.url).resolve('dclint/package.json');
  return join(dirname(manifest), 'schemas', 'compose.schema.json');
}

function composeValidator(): (data: unknown) => ErrorObject[] {
  const schema = JSON.parse(readFileSync(composeSchemaPath(), 'utf8')) as Dict;
  assert.equal(schema.title, 'Compose Specification', `${composeSchemaPath()} is not the Compose schema`);
  // strict: false because the upstream schema is not written for Ajv's strict mode (union types).
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The schema names draft-07 by its https address, which Ajv knows only as http://...#: register
  // the same meta-schema under that name too, so the schema itself is still checked against it.
  const require = createRequire(import.meta.url);
  const draft07 = require('ajv/dist/refs/json-schema-draft-07.json') as Dict;
  if (typeof schema.$schema === 'string' && !ajv.getSchema(schema.$schema)) {
    ajv.addMetaSchema({ ...draft07, $id: schema.$schema });
  }
  const validate = ajv.compile(schema);
  return (data) => (validate(data) ? [] : [...(validate.errors ?? [])]);
}

function describeErrors(errors: readonly ErrorObject[]): string {
  return errors
    .map((e) => `  ${e.instancePath || '/'}: ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`)
    .join('\n');
}

/** Folders in services/ that have src/main.ts: each is one Compose service of the same name. */
function serviceFolders(): string[] {
  if (!existsSync(SERVICES_DIR)) return [];
  return readdirSync(SERVICES_DIR)
    .filter((name) => existsSync(join(SERVICES_DIR, name, 'src', 'main.ts')))
    .sort();
}

/** `environment` in either Compose form (mapping or KEY=VALUE list), as strings; null stays null (= taken from the host). */
function environmentOf(service: Dict, where: string): Map<string, string | null> {
  const raw = service.environment;
  const env = new Map<string, string | null>();
  if (Array.isArray(raw)) {
    for (const item of raw) {
      const text = String(item);
      const at = text.indexOf('=');
      env.set(at < 0 ? text : text.slice(0, at), at < 0 ? null : text.slice(at + 1));
    }
  } else {
    for (const [key, value] of Object.entries(dict(raw, `${where}.environment`))) {
      env.set(key, value === null ? null : String(value));
    }
  }
  return env;
}

function assertEnvironment(service: Dict, where: string): void {
  const env = environmentOf(service, where);
  const settings = SERVICE_SETTINGS.flatMap((group) =>
    Object.entries(group.specs).map(([key, spec]) => [key, spec.default] as const),
  );
  assert.deepEqual(
    [...env.keys()].sort(),
    settings.map(([key]) => key).sort(),
    `${where}.environment must have exactly the settings the services declare`,
  );
  for (const [key, fallback] of settings) {
    assert.equal(env.get(key), IN_NETWORK[key] ?? fallback, `${where}.environment.${key}`);
  }
}

/** The host port an entry of `ports:` pins, if any ("8080:9400", "127.0.0.1:8080:9400", {published: 8080}). */
function fixedHostPort(entry: unknown): string | undefined {
  if (typeof entry === 'number') return undefined;
  if (isDict(entry)) {
    const published = entry.published;
    return published === undefined || published === null || published === '' ? undefined : String(published);
  }
  const spec = String(entry).replace(/\/[a-z]+$/, '');
  const lastColon = spec.lastIndexOf(':');
  if (lastColon < 0) return undefined; // container port only: Docker picks the host port
  const host = spec.slice(0, lastColon);
  const hostPort = host.slice(host.lastIndexOf(':') + 1); // after an IP, if there is one
  return hostPort === '' ? undefined : hostPort;
}

function assertScalable(service: Dict, where: string): void {
  assert.equal(service.container_name, undefined, `${where} has container_name, which breaks --scale`);
  const ports = service.ports === undefined ? [] : service.ports;
  assert.ok(Array.isArray(ports), `${where}.ports must be a list`);
  const fixed = ports.map(fixedHostPort).filter((p) => p !== undefined);
  assert.deepEqual(fixed, [], `${where}.ports pins host ports, which breaks --scale`);
}

function assertWaitsForTheStack(service: Dict, where: string): void {
  const dependsOn = dict(service.depends_on, `${where}.depends_on`);
  for (const infra of INFRA) {
    assert.equal(
      dict(dependsOn[infra], `${where}.depends_on.${infra}`).condition,
      'service_healthy',
      `${where} must wait for ${infra} to be healthy`,
    );
  }
}

function assertHealthz(service: Dict, where: string): void {
  const healthcheck = dict(service.healthcheck, `${where}.healthcheck`);
  const probe = JSON.stringify(healthcheck.test);
  assert.match(probe, /\/healthz/, `${where}.healthcheck must probe /healthz`);
  assert.match(probe, /fetch\(/, `${where}.healthcheck must use node's fetch (the image has no curl)`);
  assert.match(probe, /9400/, `${where}.healthcheck must default to port 9400`);
}

function commandOf(service: Dict): string[] {
  const command = service.command;
  if (typeof command === 'string') return command.split(/\s+/).filter(Boolean);
  return Array.isArray(command) ? command.map(String) : [];
}

/** Every string value in the file, with its path. */
function* strings(value: unknown, path: string): Generator<[string, string]> {
  if (typeof value === 'string') yield [path, value];
  else if (Array.isArray(value))
    for (const [i, item] of value.entries()) yield* strings(item, `${path}[${i}]`);
  else if (isDict(value))
    for (const [key, item] of Object.entries(value)) yield* strings(item, `${path}.${key}`);
}

const compose = loadCompose();
const services = dict(compose.services, 'services');
const folders = serviceFolders();

test('docker-compose.yml is valid against the Compose specification', () => {
  const errors = composeValidator()(compose);
  assert.equal(
    errors.length,
    0,
    `docker-compose.yml breaks the Compose schema (${composeSchemaPath()}):\n${describeErrors(errors)}`,
  );
});

test('the Compose schema check is not vacuous: it rejects a misspelt key and an unknown depends_on condition', () => {
  const broken = structuredClone(compose);
  const kafka = dict(dict(broken.services, 'services').kafka, 'services.kafka');
  kafka.container_nmae = 'kafka';
  const service = dict(broken[EXTENSION], EXTENSION);
  dict(broken.services, 'services').probe = {
    ...service,
    depends_on: { kafka: { condition: 'service_ready' } },
  };
  const paths = composeValidator()(broken).map((e) => e.instancePath);
  assert.ok(paths.includes('/services/kafka'), `no error at /services/kafka in ${JSON.stringify(paths)}`);
  assert.ok(
    paths.some((p) => p.startsWith('/services/probe/depends_on')),
    `no error under /services/probe/depends_on in ${JSON.stringify(paths)}`,
  );
});

test('docker-compose.yml interpolates only the documented host-port variables', () => {
  for (const [path, text] of strings(compose, '')) {
    for (const match of text.matchAll(/\$(\$|\{([^}]*)\}|[A-Za-z_][A-Za-z0-9_]*)?/g)) {
      if (match[1] === '$') continue; // `$$` is a literal `$`
      const name = (match[2] ?? match[1] ?? '').match(/^[A-Za-z_][A-Za-z0-9_]*/)?.[0];
      assert.ok(
        name !== undefined && HOST_VARIABLES.has(name),
        `${path} has "${match[0]}": Compose would substitute it (write $$ for a literal $)`,
      );
    }
  }
});

test('the stack services exist, with health checks, and the settings the pipeline relies on', () => {
  for (const name of INFRA) {
    const service = dict(services[name], `services.${name}`);
    const healthcheck = dict(service.healthcheck, `services.${name}.healthcheck`);
    assert.ok(
      Array.isArray(healthcheck.test) && healthcheck.test.length > 1,
      `services.${name}.healthcheck.test`,
    );
    assert.notEqual(healthcheck.disable, true, `services.${name}.healthcheck is disabled`);
  }
  const kafka = dict(services.kafka, 'services.kafka');
  assert.equal(kafka.image, 'apache/kafka:4.1.1');
  const kafkaEnv = environmentOf(kafka, 'services.kafka');
  assert.equal(kafkaEnv.get('KAFKA_PROCESS_ROLES'), 'broker,controller');
  assert.match(kafkaEnv.get('KAFKA_ADVERTISED_LISTENERS') ?? '', /PLAINTEXT:\/\/kafka:9092(,|$)/);
  assert.equal(kafkaEnv.get('KAFKA_AUTO_CREATE_TOPICS_ENABLE'), 'false');
  for (const key of [
    'KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR',
    'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR',
    'KAFKA_TRANSACTION_STATE_LOG_MIN_ISR',
  ]) {
    assert.equal(kafkaEnv.get(key), '1', `services.kafka.environment.${key}`);
  }
  const registry = dict(services.registry, 'services.registry');
  assert.equal(registry.image, 'apicurio/apicurio-registry:3.0.9');
  const registryEnv = environmentOf(registry, 'services.registry');
  assert.ok(
    registryEnv.get('APICURIO_RULES_GLOBAL_COMPATIBILITY') === 'BACKWARD' ||
      /-Dapicurio\.rules\.global\.compatibility=BACKWARD\b/.test(registryEnv.get('JAVA_OPTS_APPEND') ?? ''),
    'the registry must make BACKWARD the global compatibility rule',
  );
  assert.equal(dict(services.redis, 'services.redis').image, 'redis:7-alpine');
});

test(`the ${EXTENSION} extension carries the whole configuration table and stays scalable`, () => {
  const template = dict(compose[EXTENSION], EXTENSION);
  assertEnvironment(template, EXTENSION);
  assertScalable(template, EXTENSION);
  assertWaitsForTheStack(template, EXTENSION);
  assertHealthz(template, EXTENSION);
  assert.equal(
    dict(template.build, `${EXTENSION}.build`).context,
    '.',
    `${EXTENSION} builds the root Dockerfile`,
  );
});

test('every folder in services/ with src/main.ts is a Compose service, and every other service is a folder', () => {
  const applications = Object.keys(services)
    .filter((name) => !([...INFRA, ...MONITORING] as readonly string[]).includes(name))
    .sort();
  assert.deepEqual(
    applications,
    folders,
    'Compose services (besides the stack) must match the folders in services/',
  );
});

for (const name of folders) {
  test(`services.${name} runs services/${name}, scalable, with the configuration table`, () => {
    const where = `services.${name}`;
    const service = dict(services[name], where);
    assert.deepEqual(
      commandOf(service),
      ['node', ...SERVICE_NODE_FLAGS, `services/${name}/src/main.ts`],
      `${where}.command`,
    );
    assertScalable(service, where);
    assertEnvironment(service, where);
    assertWaitsForTheStack(service, where);
    assertHealthz(service, where);
  });
}

test('Prometheus scrapes every service through Docker DNS (so --scale needs no change) with the rules; Grafana gets the data source and dashboards', () => {
  const prometheus = dict(services.prometheus, 'services.prometheus');
  assert.ok(commandOf(prometheus).includes('--config.file=/etc/prometheus/mailpools/prometheus.yml'));
  assert.deepEqual(prometheus.volumes, ['./deploy/prometheus:/etc/prometheus/mailpools:ro']);
  const config = parseDocument(
    readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'),
  ).toJS() as {
    rule_files: string[];
    scrape_configs: {
      job_name: string;
      dns_sd_configs?: { names: string[]; port: number; type: string }[];
    }[];
  };
  assert.deepEqual(config.rule_files, ['alerts.yml']);
  const job = config.scrape_configs.find((j) => j.job_name === 'mailpools');
  const discovery = job?.dns_sd_configs?.[0];
  assert.deepEqual([...(discovery?.names ?? [])].sort(), folders, 'every service is scraped');
  assert.deepEqual([discovery?.type, discovery?.port], ['A', 9400], 'every replica, on the metrics port');

  const grafana = dict(services.grafana, 'services.grafana');
  assert.deepEqual(grafana.volumes, [
    './deploy/grafana/provisioning:/etc/grafana/provisioning:ro',
    './deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro',
  ]);
  for (const mounted of ['deploy/grafana/provisioning/datasources', 'deploy/grafana/provisioning/dashboards'])
    assert.ok(existsSync(join(ROOT, mounted)), `${mounted} exists`);
  const provider = parseDocument(
    readFileSync(join(ROOT, 'deploy/grafana/provisioning/dashboards/mailpools.yml'), 'utf8'),
  ).toJS() as { providers: { options: { path: string } }[] };
  assert.equal(provider.providers[0]?.options.path, '/var/lib/grafana/dashboards');
  const datasource = parseDocument(
    readFileSync(join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8'),
  ).toJS() as { datasources: { url: string }[] };
  assert.equal(
    datasource.datasources[0]?.url,
    'http://prometheus:9090',
    'Grafana reaches the Compose Prometheus',
  );
  for (const name of MONITORING) {
    const healthcheck = dict(
      dict(services[name], `services.${name}`).healthcheck,
      `services.${name}.healthcheck`,
    );
    assert.ok(Array.isArray(healthcheck.test), `services.${name}.healthcheck.test`);
  }
});
