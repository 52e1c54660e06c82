// Kafka over SASL/SCRAM-SHA-512 and TLS on the local stack: a service configured for the stack's
// SASL_SSL listener consumes and produces through it (transactions included), at debug log level
// without its password in a single line of output; a wrong password is refused with an error
// that says so, and that password is not printed either. The schema registry behind a gateway
// that wants basic auth: the credentials are sent, never printed, and their absence is an error
// with a code. Configuration mistakes name the field.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  loadRuntimeConfig,
  MailpoolsError,
  type RuntimeConfig,
  SERVICE_NODE_FLAGS,
  TOPICS,
  type TopicName,
} from '@mailpools/core';
import { Serde } from '@mailpools/schemas';
import { stackKafkaCredentials } from '@mailpools/stack';
import { createEventProducer, readTopic } from '@mailpools/stream';
import { freePort, sampleEvent, startService, testConfig } from '@mailpools/testkit';
import { Redis } from 'ioredis';

function secureEnv(password: string): Record<string, string> {
  const kafka = stackKafkaCredentials({ log: () => undefined });
  return {
    KAFKA_BROKERS: kafka.brokers.join(','),
    KAFKA_SECURITY_PROTOCOL: kafka.protocol,
    KAFKA_SASL_MECHANISM: kafka.mechanism,
    KAFKA_SASL_USERNAME: kafka.username,
    KAFKA_SASL_PASSWORD: password,
    NODE_EXTRA_CA_CERTS: kafka.caFile,
  };
}

/** Sends `count` sample events into a stage's input topic (through the test's own plaintext producer) and counts what it wrote to its output. */
async function passedThrough(
  config: RuntimeConfig,
  producer: Awaited<ReturnType<typeof createEventProducer>>,
  topics: { input: TopicName; output: TopicName },
  prefix: string,
  count: number,
): Promise<number> {
  const events = Array.from({ length: count }, (_, i) => sampleEvent(`${prefix}-${i}`));
  await producer.send(
    `${config.namespace}${TOPICS[topics.input]}`,
    'OutboundMessage',
    events.map((e) => ({ key: e.messageId, value: e })),
  );
  const written = await readTopic(config, {
    topic: `${config.namespace}${TOPICS[topics.output]}`,
    count,
    timeoutMs: 60_000,
  });
  return written.length;
}
const CLASSIFIER = { input: 'submitted', output: 'classified' } as const;

test('a service talks to Kafka over SASL/SCRAM with TLS, and its logs never show the password', {
  timeout: 120_000,
}, async () => {
  const { password } = stackKafkaCredentials({ log: () => undefined });
  // The test itself feeds and reads through the plaintext listener of the same broker.
  const config = testConfig({ MAILPOOLS_PARTITIONS: '1' });
  const producer = await createEventProducer(config);
  const service = await startService(
    'spam-classifier',
    {
      ...secureEnv(password),
      MAILPOOLS_NAMESPACE: config.namespace,
      MAILPOOLS_PARTITIONS: '1',
      LOG_LEVEL: 'debug',
    },
    60_000,
    true,
  );
  try {
    assert.equal(
      await passedThrough(config, producer, CLASSIFIER, 'secure', 20),
      20,
      'every event went through the SASL_SSL listener',
    );
  } finally {
    assert.equal(await service.stop(), 0);
    await producer.close();
  }
  const output = service.output();
  assert.ok(output.length > 1_000, 'the service logged at debug level');
  assert.ok(!output.includes(password), 'the SCRAM password appears nowhere in its output');
});

test('with Redis behind AUTH and TLS as well, the limit counter counts there; neither password reaches its output', {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailpools-redis-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  assert.equal(made.status, 0, String(made.stderr));
  const redisPassword = 'redis-secret-0123456789';
  const port = await freePort();
  const redisServer = spawn('redis-server', [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--tls-cert-file',
    cert,
    '--tls-key-file',
    key,
    '--tls-auth-clients',
    'no',
    '--requirepass',
    redisPassword,
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  // One trust file for both TLS peers: the stack's Kafka certificate and this Redis's.
  const { password: kafkaPassword, caFile } = stackKafkaCredentials({ log: () => undefined });
  const bundle = join(dir, 'trust.pem');
  writeFileSync(bundle, readFileSync(caFile, 'utf8') + readFileSync(cert, 'utf8'));
  const redisUrl = `rediss://:${redisPassword}@127.0.0.1:${port}`;
  const config = testConfig({ MAILPOOLS_PARTITIONS: '1' });
  const producer = await createEventProducer(config);
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  try {
    service = await startService(
      'limit-counter',
      {
        ...secureEnv(kafkaPassword),
        NODE_EXTRA_CA_CERTS: bundle,
        REDIS_URL: redisUrl,
        MAILPOOLS_NAMESPACE: config.namespace,
        MAILPOOLS_PARTITIONS: '1',
        LOG_LEVEL: 'debug',
      },
      60_000,
      true,
    );
    assert.equal(
      await passedThrough(config, producer, { input: 'classified', output: 'counted' }, 'counted', 10),
      10,
    );
    const redis = new Redis(redisUrl, { tls: { ca: readFileSync(cert) } });
    try {
      const keys = await redis.keys(`mailpools:${config.namespace}*`);
      assert.ok(keys.length > 0, 'the counters are in the TLS Redis');
    } finally {
      redis.disconnect();
    }
  } finally {
    if (service) assert.equal(await service.stop(), 0);
    await producer.close();
    redisServer.kill('SIGTERM');
    await once(redisServer, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
  const output = service?.output() ?? '';
  assert.ok(output.length > 1_000, 'the service logged at debug level');
  assert.ok(!output.includes(kafkaPassword), 'the SCRAM password appears nowhere in its output');
  assert.ok(!output.includes(redisPassword), 'the Redis password appears nowhere in its output');
});

test('behind a registry gateway that wants basic auth, a service with the credentials works and never prints them; none or wrong ones are refused with a code', {
  timeout: 120_000,
}, async () => {
  const config = testConfig({ MAILPOOLS_PARTITIONS: '1' });
  const upstream = new URL(config.schemaRegistryUrl);
  const [user, password] = ['mailpools', 'registry-secret-0123456789'];
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const seen = { allowed: 0, refused: 0 };
  // The real Apicurio registry, behind a gateway that checks basic auth (as in front of a hosted one).
  const gateway = createServer(async (req, res) => {
    if (req.headers.authorization !== expected) {
      seen.refused++;
      res.writeHead(401, {
        'www-authenticate': 'Basic realm="registry"',
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ error_code: 401, message: 'Unauthorized' }));
      return;
    }
    seen.allowed++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const answer = await fetch(new URL(req.url ?? '/', upstream.origin), {
      method: req.method,
      headers: { 'content-type': req.headers['content-type'] ?? 'application/json', accept: '*/*' },
      body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
    });
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
    });
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  gateway.listen(0, '127.0.0.1');
  await once(gateway, 'listening');
  const registryUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}${upstream.pathname}`;
  const producer = await createEventProducer(config);
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  try {
    for (const auth of [undefined, { username: user, password: 'wrong' }]) {
      await assert.rejects(
        new Serde({ registryUrl, auth, retries: 0 }).register('OutboundMessage'),
        (error: unknown) =>
          error instanceof MailpoolsError &&
          error.code === 'MAILPOOLS_ERR_REGISTRY_UNAUTHORISED' &&
          error.retriable &&
          !error.message.includes('wrong'),
      );
    }
    service = await startService(
      'spam-classifier',
      {
        SCHEMA_REGISTRY_URL: registryUrl,
        SCHEMA_REGISTRY_USERNAME: user,
        SCHEMA_REGISTRY_PASSWORD: password,
        MAILPOOLS_NAMESPACE: config.namespace,
        MAILPOOLS_PARTITIONS: '1',
        LOG_LEVEL: 'debug',
      },
      60_000,
      true,
    );
    assert.equal(
      await passedThrough(config, producer, CLASSIFIER, 'registry-auth', 5),
      5,
      'the service read and wrote through the guarded registry',
    );
    assert.ok(seen.allowed > 0, 'the service asked the registry with its credentials');
    assert.equal(seen.refused, 2, 'only the two clients without the right credentials were refused');
  } finally {
    if (service) assert.equal(await service.stop(), 0);
    await producer.close();
    gateway.close();
  }
  const output = service?.output() ?? '';
  assert.ok(output.length > 1_000, 'the service logged at debug level');
  assert.ok(!output.includes(password), 'the registry password appears nowhere in its output');
});

test('a wrong SCRAM password is refused with an error that says so, and is not printed', {
  timeout: 60_000,
}, async () => {
  const wrong = 'not-the-password-0123456789';
  const entry = fileURLToPath(new URL('../services/spam-classifier/src/main.ts', import.meta.url));
  const config = testConfig();
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, entry], {
    env: {
      ...process.env,
      ...secureEnv(wrong),
      MAILPOOLS_NAMESPACE: config.namespace,
      MAILPOOLS_HTTP_PORT: '0',
    },
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const deadline = Date.now() + 40_000;
  while (!/authentication failed/i.test(output) && child.exitCode === null && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 200));
  if (child.exitCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
  assert.match(output, /SASL SCRAM SHA512 authentication failed/i);
  assert.ok(!output.includes(wrong), 'the password it tried is not in its output');
});

test('security settings are checked at start-up and name the field that is wrong', () => {
  const base = {
    KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
    KAFKA_SASL_USERNAME: 'mailpools',
    KAFKA_SASL_PASSWORD: 's3cret',
  };
  assert.deepEqual(loadRuntimeConfig(base).kafkaSecurity, {
    protocol: 'SASL_SSL',
    sasl: { mechanism: 'scram-sha-512', username: 'mailpools', password: 's3cret' },
  });
  assert.throws(() => loadRuntimeConfig({ ...base, KAFKA_SASL_PASSWORD: '' }), /KAFKA_SASL_PASSWORD/);
  assert.throws(
    () => loadRuntimeConfig({ ...base, KAFKA_SECURITY_PROTOCOL: 'TLS' }),
    /KAFKA_SECURITY_PROTOCOL/,
  );
  assert.throws(() => loadRuntimeConfig({ ...base, KAFKA_SASL_MECHANISM: 'GSSAPI' }), /KAFKA_SASL_MECHANISM/);
  assert.throws(() => loadRuntimeConfig({ SCHEMA_REGISTRY_PASSWORD: 'x' }), /SCHEMA_REGISTRY_USERNAME/);
  assert.deepEqual(loadRuntimeConfig({ KAFKA_SECURITY_PROTOCOL: 'SSL' }).kafkaSecurity, { protocol: 'SSL' });
});
