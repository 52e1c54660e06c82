// The local stack, started in isolation: its own stack dir, ports nobody uses and its own Redis, so a
// shared stack that other tests use is never touched.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  runStackCli,
  type StackOptions,
  type StackReport,
  stackDown,
  stackEndpoints,
  stackStatus,
  stackUp,
} from '../libs/stack/src/index.ts';
import { probeKafka } from '../libs/stack/src/probe.ts';

/** Distinct ports the kernel considers free right now: all held at once, then released. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    servers.push(server);
  }
  const ports = servers.map((server) => {
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port }, () => server.close(() => resolve(true)));
  });
}

/** Alive means: /proc has it and it is not a zombie. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Live processes whose command line carries this stack's tag (PostgreSQL's: its data directory). */
function taggedPids(stackDir: string): number[] {
  const tag = `mailpools.stack=${stackDir}`;
  const postgresData = `-D ${join(stackDir, 'data', 'postgres')} `;
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        const line = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
        return (
          (line.includes(`-D${tag} `) || line.trimEnd().endsWith(tag) || line.includes(postgresData)) &&
          running(pid)
        );
      } catch {
        return false;
      }
    })
    .sort((a, b) => a - b);
}

function pidsOf(report: StackReport): Record<string, number | null> {
  return Object.fromEntries(report.parts.map((part) => [part.part, part.pid]));
}

const [kafkaPort, kafkaControllerPort, registryPort, redisPort, postgresPort, kafkaSaslPort] =
  (await freePorts(6)) as [number, number, number, number, number, number];
const stackDir = mkdtempSync(join(tmpdir(), 'mailpools-stack-test-'));
// Under root the stack's PostgreSQL runs as the postgres user, who must reach its data directory.
chmodSync(stackDir, 0o755);
const options: StackOptions = {
  stackDir,
  kafkaPort,
  kafkaControllerPort,
  kafkaSaslPort,
  registryPort,
  redisPort,
  redisUrl: null, // our own Redis even when REDIS_URL is set in the environment
  postgresPort,
  databaseUrl: null, // and our own PostgreSQL even when DATABASE_URL is set
  log: (line) => console.log(`[stack] ${line}`),
};

after(async () => {
  await stackDown({ ...options, wipe: true });
  rmSync(stackDir, { recursive: true, force: true });
});

test('up twice gives one stack whose endpoints answer; down stops it all and frees the ports', {
  timeout: 300_000,
}, async () => {
  const first = await stackUp(options);
  assert.equal(first.ready, true);
  const pids = pidsOf(first);
  for (const part of ['kafka', 'registry', 'redis', 'postgres'])
    assert.equal(typeof pids[part], 'number', `${part} pid`);

  const second = await stackUp(options);
  assert.deepEqual(pidsOf(second), pids, 'a second up leaves the running stack alone');
  assert.deepEqual(
    taggedPids(stackDir),
    Object.values(pids)
      .map(Number)
      .sort((a, b) => a - b),
    'exactly one process per part',
  );

  const endpoints = stackEndpoints(options);
  assert.deepEqual(endpoints, {
    kafkaBrokers: [`127.0.0.1:${kafkaPort}`],
    schemaRegistryUrl: `http://127.0.0.1:${registryPort}/apis/ccompat/v7`,
    redisUrl: `redis://127.0.0.1:${redisPort}`,
    databaseUrl: `postgres://postgres@127.0.0.1:${postgresPort}/mailpools`,
  });

  // Kafka: a Metadata request is answered and lists the broker.
  assert.equal(await probeKafka('127.0.0.1', kafkaPort), true);

  // Registry: registers a schema through the Confluent-compatible API, then lists it.
  const schema = { type: 'record', name: 'Probe', fields: [{ name: 'id', type: 'string' }] };
  const registered = await fetch(`${endpoints.schemaRegistryUrl}/subjects/probe-value/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: JSON.stringify(schema) }),
  });
  assert.equal(registered.status, 200);
  assert.equal(typeof ((await registered.json()) as { id: unknown }).id, 'number');
  const subjects = await fetch(`${endpoints.schemaRegistryUrl}/subjects`);
  assert.deepEqual(await subjects.json(), ['probe-value']);

  // Redis: a write and a read.
  const redis = new Redis(endpoints.redisUrl, { maxRetriesPerRequest: 1 });
  try {
    await redis.set('mailpools:stack-test', 'ok');
    assert.equal(await redis.get('mailpools:stack-test'), 'ok');
  } finally {
    redis.disconnect();
  }

  // PostgreSQL: the trace writer's database can be created, written and read.
  const admin = new pg.Client({
    connectionString: endpoints.databaseUrl.replace(/\/mailpools$/, '/postgres'),
  });
  await admin.connect();
  try {
    await admin.query('CREATE DATABASE mailpools');
  } finally {
    await admin.end();
  }
  const database = new pg.Client({ connectionString: endpoints.databaseUrl });
  await database.connect();
  try {
    await database.query('CREATE TABLE probe (id text)');
    await database.query("INSERT INTO probe VALUES ('ok')");
    assert.deepEqual((await database.query('SELECT id FROM probe')).rows, [{ id: 'ok' }]);
  } finally {
    await database.end();
  }

  const status = await stackStatus(options);
  assert.equal(status.ready, true);
  assert.deepEqual(pidsOf(status), pids);
  assert.equal(await runStackCli(['status'], options), 0);

  const down = await stackDown(options);
  assert.deepEqual(
    down.stopped.map((stopped) => stopped.pid).sort((a, b) => a - b),
    Object.values(pids)
      .map(Number)
      .sort((a, b) => a - b),
  );
  for (const pid of Object.values(pids)) assert.equal(running(Number(pid)), false, `pid ${pid} is gone`);
  assert.deepEqual(taggedPids(stackDir), []);
  for (const port of [kafkaPort, kafkaControllerPort, kafkaSaslPort, registryPort, redisPort, postgresPort]) {
    assert.equal(await portIsFree(port), true, `port ${port} is free again`);
  }
  assert.equal((await stackStatus(options)).ready, false);
  assert.equal(await runStackCli(['status'], options), 3);
});
