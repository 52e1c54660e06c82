// The exactly-once promise under the harshest stop: SIGKILL in the middle of transactions.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type OutboundMessage, Serde } from '@mailpools/schemas';
import { createEventProducer, readTopic } from '@mailpools/stream';
import { sampleEvent, testConfig } from '@mailpools/testkit';

const STAGE = fileURLToPath(new URL('./fixtures/passthrough-stage.ts', import.meta.url));

function startStage(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [STAGE], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

async function waitReady(child: ChildProcess): Promise<void> {
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('PASSTHROUGH_READY')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`stage exited with ${code} before it was ready`)));
  });
  await ready;
}

test('every input appears exactly once although the stage is SIGKILLed three times mid-stream', {
  timeout: 300_000,
}, async () => {
  const config = testConfig({ MAILPOOLS_SESSION_TIMEOUT_MS: '6000' });
  const input = `${config.namespace}in`;
  const output = `${config.namespace}out`;
  const env = {
    MAILPOOLS_NAMESPACE: config.namespace,
    MAILPOOLS_PARTITIONS: '3',
    MAILPOOLS_HTTP_PORT: '0',
    MAILPOOLS_SESSION_TIMEOUT_MS: '6000',
    MAILPOOLS_FETCH_MAX_BYTES_PER_PARTITION: String(64 * 1024),
    PASSTHROUGH_INPUT: input,
    PASSTHROUGH_OUTPUT: output,
    PASSTHROUGH_DELAY_MS: '40',
    LOG_LEVEL: 'warn',
  };
  const producer = await createEventProducer(config);
  const ids = Array.from({ length: 10_000 }, (_, i) => `k-${i}`);
  try {
    await producer.ensureTopics([
      { topic: input, partitions: 3, compacted: false },
      { topic: output, partitions: 3, compacted: false },
    ]);
    for (let i = 0; i < ids.length; i += 1_000) {
      await producer.send(
        input,
        'OutboundMessage',
        ids.slice(i, i + 1_000).map((id) => ({ key: id, value: sampleEvent(id, 1000) })),
      );
    }
    for (let kill = 0; kill < 3; kill++) {
      const child = startStage(env);
      await waitReady(child);
      await new Promise((r) => setTimeout(r, 1_000 + Math.random() * 2_500));
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    const last = startStage(env);
    try {
      await waitReady(last);
      const records = await readTopic(config, { topic: output, count: ids.length, timeoutMs: 180_000 });
      const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
      const counts = new Map<string, number>();
      for (const record of records) {
        const event = await serde.decode<OutboundMessage>('OutboundMessage', record.value);
        counts.set(event.messageId, (counts.get(event.messageId) ?? 0) + 1);
      }
      const duplicates = [...counts].filter(([, n]) => n > 1).length;
      const missing = ids.filter((id) => !counts.has(id)).length;
      assert.equal(missing, 0, 'no input is lost');
      assert.equal(duplicates, 0, 'no input is produced twice');
      assert.equal(records.length, ids.length);
    } finally {
      const exited = once(last, 'exit');
      last.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0, 'SIGTERM drains and exits cleanly');
    }
  } finally {
    await producer.close();
  }
});
