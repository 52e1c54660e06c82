// A sender restricted by limit-counter (a process on the real stack) is announced on the
// compacted table and the audit topic, listed by `mailpools restricted list`, and released with
// `mailpools restricted release --by`, which is published to both and lets the sender send again.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TOPICS } from '@mailpools/core';
import { type OutboundMessage, type SenderRestriction, Serde } from '@mailpools/schemas';
import { createEventProducer, readTopic } from '@mailpools/stream';
import { sampleEvent, startService, testConfig } from '@mailpools/testkit';

const CLI = fileURLToPath(new URL('../bin/mailpools.ts', import.meta.url));

test('restrict, list, release (audited), send again', { timeout: 180_000 }, async () => {
  const config = testConfig();
  const dir = mkdtempSync(join(tmpdir(), 'mailpools-policy-'));
  const policyFile = join(dir, 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({
      version: 't',
      tenants: { contoso: { limits: { defaultPolicy: { externalPerHour: 2, action: 'BlockUser' } } } },
    }),
  );
  const env = { MAILPOOLS_NAMESPACE: config.namespace, MAILPOOLS_POLICY_FILE: policyFile, LOG_LEVEL: 'warn' };
  const mailpools = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, 'restricted', ...args], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
  const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
  const producer = await createEventProducer(config);
  const service = await startService('limit-counter', env);
  const send = async (id: string, external: number, at: number) => {
    const event: OutboundMessage = {
      ...sampleEvent(id, 100, at),
      tenantId: 'contoso',
      submitter: 'mallory@contoso.example',
      recipients: Array.from({ length: external }, (_, i) => ({
        address: `v${i}@else.example`,
        scope: 'EXTERNAL' as const,
      })),
    };
    await producer.send(`${config.namespace}${TOPICS.classified}`, 'OutboundMessage', [
      { key: id, value: event },
    ]);
  };
  const decisions = async (count: number) => {
    const records = await readTopic(config, { topic: `${config.namespace}${TOPICS.counted}`, count });
    const events = await Promise.all(
      records.map((r) => serde.decode<OutboundMessage>('OutboundMessage', r.value)),
    );
    return Object.fromEntries(events.map((e) => [e.messageId, e.limits?.decision]));
  };
  const restrictionRecords = async (topic: string, count: number) => {
    const records = await readTopic(config, { topic: `${config.namespace}${topic}`, count });
    return Promise.all(records.map((r) => serde.decode<SenderRestriction>('SenderRestriction', r.value)));
  };
  try {
    const t = Date.UTC(2026, 10, 23, 10);
    // One at a time: each event waits for the verdict before it, as events of one sender would be in time.
    await send('ok', 2, t);
    await decisions(1);
    await send('over', 1, t + 1_000);
    await decisions(2);
    await send('while-restricted', 1, t + 2 * 86_400_000);
    assert.deepEqual(await decisions(3), { ok: 'WARN', over: 'BLOCK', 'while-restricted': 'BLOCK' });
    for (const topic of [TOPICS.senderRestrictions, TOPICS.restrictionAudit]) {
      const [record] = await restrictionRecords(topic, 1);
      assert.deepEqual(
        [record?.sender, record?.restricted, record?.action, record?.limit, record?.count, record?.until],
        ['mallory@contoso.example', true, 'BlockUser', 'externalPerHour', 3, null],
        topic,
      );
    }

    const listed = mailpools('list', '--json');
    assert.equal(listed.status, 0, listed.stderr);
    const entry = JSON.parse(listed.stdout.trim()) as { sender: string; tenantId: string; limit: string };
    assert.deepEqual(
      [entry.tenantId, entry.sender, entry.limit],
      ['contoso', 'mallory@contoso.example', 'externalPerHour'],
    );
    assert.match(
      mailpools('list').stdout,
      /contoso\tmallory@contoso\.example\tBlockUser\texternalPerHour\t3\/2\t.*until released/,
    );

    const noAdmin = mailpools('release', 'mallory@contoso.example');
    assert.equal(noAdmin.status, 2);
    assert.match(noAdmin.stderr, /MAILPOOLS_ERR_USAGE: release needs --by/);
    const unknown = mailpools('release', 'nobody@contoso.example', '--by', 'admin@contoso.example');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /MAILPOOLS_ERR_NOT_RESTRICTED/);

    const released = mailpools('release', 'Mallory@Contoso.example', '--by', 'admin@contoso.example');
    assert.equal(released.status, 0, released.stderr);
    assert.match(released.stdout, /released mallory@contoso\.example in contoso/);
    assert.match(mailpools('list').stdout, /no restricted senders/);
    for (const topic of [TOPICS.senderRestrictions, TOPICS.restrictionAudit]) {
      const [, release] = await restrictionRecords(topic, 2);
      assert.deepEqual(
        [release?.sender, release?.restricted, release?.limit, release?.by],
        ['mallory@contoso.example', false, 'release', 'admin@contoso.example'],
        topic,
      );
    }

    await send('after-release', 1, t + 2 * 86_400_000 + 1_000);
    assert.equal(
      (await decisions(4))['after-release'],
      'ALLOW',
      'counted afresh: the blocked message never went',
    );
  } finally {
    assert.equal(await service.stop(), 0);
    await producer.close();
  }
});
