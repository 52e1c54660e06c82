// spam-classifier on the real stack, as its own process: every event comes out classified by
// the committed model, exactly as the model scores it offline; poison lands in the DLQ. And the
// committed model is exactly what `npm run train:spam` makes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TOPICS } from '@mailpools/core';
import { DEFAULT_POLICY } from '@mailpools/policy';
import { type OutboundMessage, Serde } from '@mailpools/schemas';
import { createEventProducer, DLQ_HEADERS, readTopic } from '@mailpools/stream';
import { sampleEvent, startService, testConfig } from '@mailpools/testkit';
import { classify, DEFAULT_EXTRACT, DEFAULT_MODEL_PATH } from '../services/spam-classifier/src/classify.ts';
import { loadCorpus } from '../services/spam-classifier/src/corpus.ts';
import { loadModel } from '../services/spam-classifier/src/model.ts';

test('spam-classifier fills the spam enrichment of every event and passes it on', {
  timeout: 180_000,
}, async () => {
  const config = testConfig();
  const corpus = loadCorpus();
  const spam = corpus.filter((m) => m.group === 'spam-2').slice(0, 10);
  const ham = corpus.filter((m) => m.group === 'easy-ham-2').slice(0, 10);
  const deep = Buffer.from(
    `Subject: deep\r\n${'Content-Type: multipart/mixed; boundary="d"\r\n\r\n--d\r\n'.repeat(3_000)}`,
  );
  // A submitter each: with no history, no profile moves a score, so the service must score
  // exactly as the model does offline.
  const events: OutboundMessage[] = [...spam, ...ham].map((m, i) => ({
    ...sampleEvent(`corpus-${i}`),
    submitter: `user${i}@contoso.example`,
    raw: m.raw,
    rawSize: m.raw.length,
  }));
  events.push({ ...sampleEvent('deep-mime'), raw: deep, rawSize: deep.length });

  const producer = await createEventProducer(config);
  const service = await startService('spam-classifier', {
    MAILPOOLS_NAMESPACE: config.namespace,
    MAILPOOLS_PARTITIONS: '2',
  });
  try {
    const input = `${config.namespace}${TOPICS.submitted}`;
    await producer.send(
      input,
      'OutboundMessage',
      events.map((e) => ({ key: e.messageId, value: e })),
    );
    await producer.sendRaw(input, [{ key: 'garbage', value: Buffer.from('not an event') }]);

    const records = await readTopic(config, {
      topic: `${config.namespace}${TOPICS.classified}`,
      count: events.length,
    });
    assert.equal(records.length, events.length);
    const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
    const deps = {
      model: loadModel(DEFAULT_MODEL_PATH),
      policy: () => DEFAULT_POLICY,
      extract: DEFAULT_EXTRACT,
    };
    const byId = new Map(events.map((e) => [e.messageId, e]));
    let spamLabelled = 0;
    for (const record of records) {
      const out = await serde.decode<OutboundMessage>('OutboundMessage', record.value);
      const verdict = out.spam;
      assert.ok(verdict, `${out.messageId} has a spam verdict`);
      const expected = await classify(byId.get(out.messageId) as OutboundMessage, deps);
      assert.equal(verdict.score, expected.score, `${out.messageId}: the service scores as the model does`);
      assert.equal(verdict.label, expected.label);
      assert.equal(verdict.modelVersion, deps.model.version);
      assert.deepEqual(
        out.hops.map((h) => h.stage),
        ['spam-classifier'],
      );
      if (
        out.messageId.startsWith('corpus-') &&
        Number(out.messageId.slice(7)) < 10 &&
        verdict.label === 'SPAM'
      )
        spamLabelled++;
      if (out.messageId === 'deep-mime') assert.ok(verdict.topFeatures.length > 0);
    }
    // The operating point is set on today's ham (at most 0.5 % of it judged SPAM), so 2002's spam
    // is not all caught; what matters here is that the service labels as the model does.
    assert.ok(spamLabelled >= 5, `at least 5 of 10 corpus spams labelled SPAM (got ${spamLabelled})`);

    const dead = await readTopic(config, { topic: `${config.namespace}${TOPICS.submitted}.dlq`, count: 1 });
    assert.equal(dead[0]?.headers[DLQ_HEADERS.code], 'MAILPOOLS_ERR_NOT_WIRE_FORMAT');
    const metrics = await (await fetch(`http://127.0.0.1:${service.port}/metrics`)).text();
    assert.match(metrics, /mailpools_spam_verdicts_total\{label="SPAM"\} \d+/);
    assert.match(metrics, /mailpools_stage_records_processed_total\{stage="spam-classifier"\} 22/);
  } finally {
    assert.equal(await service.stop(), 0, 'SIGTERM drains and exits 0');
    await producer.close();
  }
});

test('npm run train:spam reproduces the committed model byte for byte', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'spam-model-'));
  try {
    const out = join(dir, 'model.bin');
    const run = spawnSync(
      process.execPath,
      [new URL('../services/spam-classifier/scripts/train.ts', import.meta.url).pathname, out],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.ok(
      readFileSync(out).equals(readFileSync(DEFAULT_MODEL_PATH)),
      'the committed model/spam-model.bin is stale: run npm run train:spam and commit it',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
