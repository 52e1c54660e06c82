import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TOPICS } from '@mailpools/core';
import { type OutboundMessage, Serde } from '@mailpools/schemas';
import { readTopic } from '@mailpools/stream';
import { testConfig } from '@mailpools/testkit';

const CLI = fileURLToPath(new URL('../bin/mailpools.ts', import.meta.url));
const FEED_DIR = fileURLToPath(new URL('./fixtures/feed/', import.meta.url));

function mailpools(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
}

test('mailpools feed produces JSON lines, .eml and mbox messages as OutboundMessage events', {
  timeout: 120_000,
}, async () => {
  const config = testConfig();
  const result = mailpools(
    ['feed', FEED_DIR, '--tenant', 'tenant-eml', '--internal-domains', 'contoso.example', '--rate', '100'],
    {
      MAILPOOLS_NAMESPACE: config.namespace,
      LOG_LEVEL: 'warn',
    },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /produced 5 event\(s\)/);
  assert.match(result.stderr, /feeding .* 5\/5 100%/, 'a progress line');

  const records = await readTopic(config, { topic: `${config.namespace}${TOPICS.submitted}`, count: 5 });
  const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
  const events = new Map<string, OutboundMessage>();
  for (const record of records) {
    const event = await serde.decode<OutboundMessage>('OutboundMessage', record.value);
    assert.equal(record.key, event.messageId, 'keyed by message id');
    events.set(event.messageId, event);
  }
  assert.deepEqual([...events.keys()].sort(), [
    'json-1',
    'json-ndr',
    'mbox-1@contoso.example',
    'mbox-2@contoso.example',
    'report-1@contoso.example',
  ]);

  const report = events.get('report-1@contoso.example');
  assert.equal(report?.tenantId, 'tenant-eml');
  assert.equal(report?.fromHeader, 'alice@contoso.example');
  assert.equal(report?.eventTime, Date.UTC(2026, 10, 23, 9));
  assert.deepEqual(
    report?.recipients.map((r) => ({ ...r })),
    [
      { address: 'bob@fabrikam.example', scope: 'EXTERNAL' },
      { address: 'carol@contoso.example', scope: 'INTERNAL' },
    ],
  );
  assert.match(
    events.get('mbox-1@contoso.example')?.raw.toString() ?? '',
    /^From here on, quoted$/m,
    'mbox quoting undone',
  );
  const ndr = events.get('json-ndr');
  assert.equal(ndr?.origin, 'SYSTEM_NDR');
  assert.equal(ndr?.dsn?.status, '5.1.1');
  assert.equal(
    ndr?.rawSize,
    Buffer.byteLength('Subject: Undeliverable\r\n\r\n'),
    'rawSize computed when missing',
  );
});

test('mailpools feed refuses a bad file before producing anything, naming the line and the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'feed-'));
  writeFileSync(join(dir, 'bad.jsonl'), '{"messageId":"a"}\nnot json\n');
  const result = mailpools(['feed', dir], { MAILPOOLS_NAMESPACE: 'never-used.' });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /MAILPOOLS_ERR_FEED_INPUT: 2 input line\(s\)/);
  assert.match(result.stderr, /bad\.jsonl:1: .*tenantId/);
  assert.match(result.stderr, /bad\.jsonl:2: /);
  assert.match(result.stderr, /hint: /);
  const usage = mailpools(['feed', dir, '--origin', 'PIGEON'], {});
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /MAILPOOLS_ERR_USAGE: Unknown origin "PIGEON"/);
});

test('mailpools feed --dry-run validates and shows the JSON form', () => {
  const result = mailpools(['feed', join(FEED_DIR, 'report.eml'), '--dry-run', '--tenant', 't'], {});
  assert.equal(result.status, 0, result.stderr);
  const json = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as Record<string, unknown>;
  assert.equal(json.messageId, 'report-1@contoso.example');
  assert.equal(json.eventTime, '2026-11-23T09:00:00.000Z');
});
