// `mailpools start` as a user runs it, twice side by side: two namespaced pipelines with their
// HTTP ports from configuration (0: any free port, printed), each routing a message, and a
// healthy start that logs nothing at error level or above; and `start --mta`, Haraka in front,
// taking a message from an ordinary SMTP client.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, topicName } from '@mailpools/core';
import { type PoolAssignment, Serde } from '@mailpools/schemas';
import { createEventProducer, readTopic } from '@mailpools/stream';
import { sampleEvent, testConfig } from '@mailpools/testkit';
import nodemailer from 'nodemailer';

const CLI = fileURLToPath(new URL('../bin/mailpools.ts', import.meta.url));
const SERVICE_COUNT = 7;

interface Started {
  child: ChildProcess;
  namespace: string;
  lines: string[];
  /** The metrics URLs the start printed, one per service. */
  metrics: () => string[];
}

function start(namespace: string): Started {
  const child = spawn(process.execPath, [CLI, 'start'], {
    // The default log level: a start must be clean at info, not only when told to be quiet.
    env: { ...process.env, LOG_LEVEL: 'info', MAILPOOLS_NAMESPACE: namespace, MAILPOOLS_HTTP_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() ?? '';
      lines.push(...parts);
    });
  }
  const metrics = () =>
    lines.flatMap((line) => {
      const url = /"metrics":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(line)?.[1];
      return url ? [url] : [];
    });
  return { child, namespace, lines, metrics };
}

async function waitReady(pipeline: Started, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    assert.equal(pipeline.child.exitCode, null, `start exited early:\n${pipeline.lines.join('\n')}`);
    const urls = pipeline.metrics();
    if (urls.length === SERVICE_COUNT) {
      const ready = await Promise.all(
        urls.map((url) =>
          fetch(url.replace('/metrics', '/readyz')).then(
            (r) => r.status === 200,
            () => false,
          ),
        ),
      );
      if (ready.every(Boolean)) return;
    }
    assert.ok(Date.now() < deadline, `not ready in time:\n${pipeline.lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** JSON log lines (behind start's `name | ` prefix) at error level (50) or above. */
function errorLines(lines: readonly string[]): string[] {
  return lines.filter((line) => {
    const json = line.slice(line.indexOf('{'));
    try {
      return ((JSON.parse(json) as { level?: number }).level ?? 0) >= 50;
    } catch {
      return false;
    }
  });
}

test('two namespaced pipelines start side by side on free ports, route, and log no errors', {
  timeout: 300_000,
}, async () => {
  const configs = [testConfig(), testConfig()];
  const pipelines = configs.map((config) => start(config.namespace));
  try {
    await Promise.all(pipelines.map((pipeline) => waitReady(pipeline, 180_000)));
    const ports = pipelines.flatMap((p) => p.metrics().map((url) => Number(new URL(url).port)));
    assert.equal(new Set(ports).size, 2 * SERVICE_COUNT, `every service has its own port: ${ports}`);

    for (const [index, config] of configs.entries()) {
      const producer = await createEventProducer(config);
      try {
        const event = sampleEvent(`start-${index}`, 800, Date.now());
        await producer.send(topicName('submitted', config.namespace), 'OutboundMessage', [
          { key: event.messageId, value: event },
        ]);
      } finally {
        await producer.close();
      }
      const routed = await readTopic(config, {
        topic: topicName('routed', config.namespace),
        count: 1,
        timeoutMs: 120_000,
      });
      assert.equal(routed.length, 1, `pipeline ${index} routed its message`);
      const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
      const assignment = await serde.decode<PoolAssignment>('PoolAssignment', routed[0]?.value ?? null);
      assert.equal(assignment.messageId, `start-${index}`);
    }
  } finally {
    for (const pipeline of pipelines) pipeline.child.kill('SIGINT');
    const codes = await Promise.all(
      pipelines.map(async (p) => (p.child.exitCode ?? (await once(p.child, 'exit'))[0]) as number | null),
    );
    assert.deepEqual(
      codes,
      [0, 0],
      `Ctrl-C stops each pipeline cleanly:\n${pipelines.map((p) => p.lines.slice(-40).join('\n')).join('\n---\n')}`,
    );
  }
  for (const pipeline of pipelines)
    assert.deepEqual(
      errorLines(pipeline.lines),
      [],
      `no error-level line on a healthy start (${pipeline.namespace})`,
    );
});

test('start --mta: a message from an ordinary SMTP client arrives from the normal pool’s IP with its HELO', {
  timeout: 240_000,
}, async () => {
  const port = await freePort();
  const namespace = testConfig().namespace;
  const child = spawn(process.execPath, [CLI, 'start', '--mta', '--mta-port', String(port)], {
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      MAILPOOLS_NAMESPACE: namespace,
      MAILPOOLS_HTTP_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n')));
  const waitLine = async (pattern: RegExp, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = lines.find((l) => pattern.test(l));
      if (line) return line;
      assert.equal(child.exitCode, null, `start exited early:\n${lines.join('\n')}`);
      assert.ok(Date.now() < deadline, `no line matching ${pattern}:\n${lines.slice(-40).join('\n')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  try {
    await waitLine(/Haraka takes submissions/, 180_000);
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      secure: false,
      ignoreTLS: true,
      auth: { user: 'dev@mailpools.test', pass: 'mailpools' },
    });
    const raw = `From: dev@mailpools.test\r\nTo: friend@example.test\r\nSubject: first contact\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <first.${Date.now()}@mailpools.test>\r\n\r\nHello, the report is attached to the ticket; see you at the review tomorrow.\r\n`;
    // The first message after a start may wait for the stages to join; the client retries a 4xx.
    for (let attempt = 0; ; attempt++) {
      try {
        await transport.sendMail({
          envelope: { from: 'dev@mailpools.test', to: ['friend@example.test'] },
          raw,
        });
        break;
      } catch (error) {
        const code = (error as { responseCode?: number }).responseCode ?? 0;
        assert.ok(
          code >= 400 && code < 500 && attempt < 10,
          `submission refused: ${(error as Error).message}`,
        );
        await new Promise((r) => setTimeout(r, 2_000));
      }
    }
    transport.close();
    const delivered = JSON.parse(await waitLine(/delivered at the destination/, 60_000)) as Record<
      string,
      unknown
    >;
    assert.deepEqual(
      [delivered.from_ip, delivered.helo, delivered.mail_from, delivered.rcpt],
      ['127.0.0.2', 'normal.pool.mailpools.test', 'dev@mailpools.test', ['friend@example.test']],
    );
  } finally {
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, lines.slice(-20).join('\n'));
  }
});
