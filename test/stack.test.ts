// The local stack, started in isolation: its own stack dir, ports nobody uses and its own Redis, so a
// shared stack that other tests use is never touched.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  runStackCli,
  type StackError,
  type StackOptions,
  type StackReport,
  stackDown,
  stackEndpoints,
  stackStatus,
  stackUp,
} from '../tools/stack/src/index.ts';
import { probeKafka } from '../tools/stack/src/probe.ts';

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

/** Live processes whose command line carries this stack's tag, read here without the stack's code. */
function taggedPids(stackDir: string): number[] {
  const tag = `mailpools.stack=${stackDir}`;
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        const line = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
        return (line.includes(`${tag} `) || line.trimEnd().endsWith(tag)) && running(pid);
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
// mkdtemp makes the directory 0700: as root, a checkout only root can enter, which the stack's
// PostgreSQL (run as the postgres user) cannot reach; the stack must place its data elsewhere.
const privateDir = mkdtempSync(join(tmpdir(), 'mailpools-stack-test-'));
const stackDir = join(privateDir, 'checkout', '.stack');
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
  env: { ...process.env, MAILPOOLS_POSTGRES_DATA_DIR: '' },
  log: (line) => console.log(`[stack] ${line}`),
};

after(async () => {
  await stackDown({ ...options, wipe: true });
  rmSync(privateDir, { recursive: true, force: true });
});

test('up twice gives one stack whose endpoints answer; down stops it all and frees the ports', {
  timeout: 300_000,
}, async () => {
  assert.equal(statSync(privateDir).mode & 0o777, 0o700, 'the checkout sits in a private directory');
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

test('a part that fails to start stops every part the same `up` started, and is named', {
  timeout: 300_000,
}, async () => {
  // PostgreSQL's data directory below a plain file cannot be created: that part fails at once,
  // while Kafka, the registry and Redis start.
  const blocker = join(privateDir, 'blocker');
  writeFileSync(blocker, '');
  const lines: string[] = [];
  const failing: StackOptions = {
    ...options,
    env: { ...process.env, MAILPOOLS_POSTGRES_DATA_DIR: join(blocker, 'postgres') },
    log: (line) => lines.push(line),
  };
  await assert.rejects(stackUp(failing), (error: StackError) => {
    assert.equal(error.part, 'postgres');
    return true;
  });
  assert.ok(
    lines.some((line) => /^postgres failed: /.test(line)),
    lines.join('\n'),
  );
  for (const part of ['kafka', 'registry', 'redis'])
    assert.ok(
      lines.some((line) => line.startsWith(`${part} stopped`)),
      `${part} was started and stopped again:\n${lines.join('\n')}`,
    );
  assert.deepEqual(taggedPids(stackDir), [], 'no process of the stack is left');
  for (const port of [kafkaPort, registryPort, redisPort])
    assert.equal(await portIsFree(port), true, `port ${port} is free again`);
});

test('down finds the processes of a stack whose checkout was moved away', { timeout: 300_000 }, async () => {
  const up = await stackUp(options);
  const pids = Object.values(pidsOf(up)).map(Number);
  const moved = join(privateDir, 'moved');
  renameSync(join(privateDir, 'checkout'), moved);
  try {
    // From the checkout's new place: its own tag names no process, the old one names a
    // directory that is gone, so those processes are orphans and down stops them.
    const down = await stackDown({ ...options, stackDir: join(moved, '.stack') });
    for (const pid of pids) {
      assert.ok(
        down.stopped.some((s) => s.pid === pid && s.stackDir === stackDir),
        `pid ${pid} was stopped`,
      );
      assert.equal(running(pid), false, `pid ${pid} is gone`);
    }
    assert.deepEqual(taggedPids(stackDir), []);
  } finally {
    renameSync(moved, join(privateDir, 'checkout'));
  }
});
