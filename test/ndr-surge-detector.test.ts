// ndr-surge-detector on the real stack, as a process with its counts in Redis: two hours of
// ordinary bounces for one tenant, then five minutes of backscatter, then quiet. Exactly one
// STARTED and one ENDED alert per scope (the tenant, and the platform), with one alertId each.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TOPICS } from '@mailpools/core';
import { type NdrSurgeAlert, type PoolAssignment, Serde } from '@mailpools/schemas';
import { createEventProducer, readTopic } from '@mailpools/stream';
import { scrapeMetric, startService, testConfig } from '@mailpools/testkit';

const T0 = Date.UTC(2026, 10, 23, 6);
const MINUTE = 60_000;

function assignment(id: string, at: number, ndr: PoolAssignment['ndr']): PoolAssignment {
  return {
    messageId: id,
    tenantId: 'contoso',
    eventTime: at,
    pool: ndr ? 'HIGH_RISK' : 'NORMAL',
    poolName: ndr ? 'HighRiskRelayOutboundPool' : 'RegularRelayOutboundPool',
    sourceIp: null,
    heloName: null,
    reasons: [],
    trace: [],
    policyVersion: 't',
    smtpReply: null,
    notBefore: null,
    rewrittenSender: null,
    isNdr: ndr !== null,
    decidedAt: at,
    submitter: '',
    sender: '',
    fromHeader: 'postmaster@contoso.test',
    recipients: [],
    ndr,
  };
}

// Backscatter (bounces of mail the platform never sent) carries the mix of answers a forged
// campaign meets: unknown users, spam and DMARC rejections, full mailboxes.
const BACKSCATTER = ['5.1.1', '5.7.1', '5.2.2', '5.7.26'];
const bounce = (i: number, originalKnown: boolean) => ({
  status: originalKnown ? '5.2.2' : (BACKSCATTER[i % BACKSCATTER.length] as string),
  finalRecipient: `user${i}@dest${i % 40}.test`,
  finalRecipientDomain: `dest${i % 40}.test`,
  remoteMta: null,
  originalKnown,
  originalSender: originalKnown ? 'staff@contoso.test' : null,
  originalSource: null,
});

test('an injected surge gives exactly one STARTED and one ENDED alert, with the cause', {
  timeout: 180_000,
}, async () => {
  const config = testConfig({ MAILPOOLS_PARTITIONS: '1' });
  const input = `${config.namespace}${TOPICS.routed}`;
  const producer = await createEventProducer(config);
  await producer.ensureTopics([{ topic: input, partitions: 1, compacted: false }]);
  const service = await startService('ndr-surge-detector', {
    MAILPOOLS_NAMESPACE: config.namespace,
    MAILPOOLS_PARTITIONS: '1',
  });
  const send = (records: PoolAssignment[]) =>
    producer.send(
      input,
      'PoolAssignment',
      records.map((value) => ({ key: value.messageId, value })),
    );
  let sent = 0;
  /** Produces one simulated minute and waits until the detector has read it, so every minute is looked at. */
  const minute = async (index: number, ndrs: number, originalKnown: boolean) => {
    const at = T0 + index * MINUTE;
    const records = [assignment(`m${index}`, at + 59_000, null)];
    for (let i = 0; i < ndrs; i++)
      records.push(assignment(`n${index}-${i}`, at + i * 100, bounce(index * 100 + i, originalKnown)));
    await send(records);
    sent += records.length;
    const deadline = Date.now() + 30_000;
    while ((await scrapeMetric(service.port, 'mailpools_stage_records_processed_total')) < sent) {
      if (Date.now() > deadline) throw new Error(`the detector did not read minute ${index}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    // Two quiet hours to learn from (one ordinary bounce every 4 minutes), in one go.
    const history: PoolAssignment[] = [];
    for (let index = 0; index < 120; index++) {
      history.push(assignment(`m${index}`, T0 + index * MINUTE + 59_000, null));
      if (index % 4 === 0) history.push(assignment(`n${index}`, T0 + index * MINUTE, bounce(index, true)));
    }
    await send(history);
    sent += history.length;
    await minute(120, 0, true);
    for (let index = 121; index < 126; index++) await minute(index, 40, false); // backscatter
    for (let index = 126; index < 150; index++) await minute(index, index % 4 === 0 ? 1 : 0, true);

    const records = await readTopic(config, {
      topic: `${config.namespace}${TOPICS.ndrSurges}`,
      idleMs: 3_000,
      timeoutMs: 30_000,
    });
    const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
    const alerts = await Promise.all(
      records.map((r) => serde.decode<NdrSurgeAlert>('NdrSurgeAlert', r.value)),
    );
    for (const scope of ['TENANT', 'PLATFORM'] as const) {
      const mine = alerts.filter((a) => a.scope === scope);
      const phases = mine.map((a) => a.phase).filter((p) => p !== 'UPDATED');
      assert.deepEqual(
        phases,
        ['STARTED', 'ENDED'],
        `${scope}: ${JSON.stringify(mine.map((a) => [a.phase, a.ndrCount]))}`,
      );
      assert.equal(new Set(mine.map((a) => a.alertId)).size, 1, 'one alertId for the whole surge');
      const started = mine[0] as NdrSurgeAlert;
      assert.equal(started.likelyCause, 'SPOOFING');
      assert.ok(started.windowEnd - (T0 + 121 * MINUTE) <= 2 * MINUTE, 'seen within 2 minutes');
      assert.ok(started.ratio >= 4, `ratio ${started.ratio}`);
      assert.equal(started.evidence.unknownOriginalShare, '100 %');
    }
    assert.equal(alerts.find((a) => a.scope === 'TENANT')?.tenantId, 'contoso');
    assert.equal(await scrapeMetric(service.port, 'mailpools_ndr_active_surges'), 0);
  } finally {
    assert.equal(await service.stop(), 0);
    await producer.close();
  }
});
