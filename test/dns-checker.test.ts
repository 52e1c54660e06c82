// dns-checker on the real stack, as its own process, against a real DNS server on loopback.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TOPICS } from '@mailpools/core';
import { type OutboundMessage, Serde } from '@mailpools/schemas';
import { createEventProducer, readTopic } from '@mailpools/stream';
import { sampleEvent, startService, startTestDnsServer, testConfig } from '@mailpools/testkit';

test('dns-checker fills the dns enrichment of every event and passes it on', {
  timeout: 120_000,
}, async () => {
  const config = testConfig();
  const dns = await startTestDnsServer({
    zones: {
      'good.test': [
        { type: 'A', data: '192.0.2.1' },
        { type: 'MX', data: { preference: 10, exchange: 'mx.good.test' } },
      ],
      'nomail.test': [
        { type: 'A', data: '192.0.2.2' },
        { type: 'MX', data: { preference: 0, exchange: '.' } },
      ],
    },
  });
  dns.setMode('down.test', 'silent');
  const cases: Record<
    string,
    { envelopeSender: string; fromHeader: string; status: string; hasA: boolean; hasMx: boolean }
  > = {
    good: {
      envelopeSender: 'a@Good.Test.',
      fromHeader: 'a@good.test',
      status: 'OK',
      hasA: true,
      hasMx: true,
    },
    nomail: {
      envelopeSender: 'a@nomail.test',
      fromHeader: 'a@nomail.test',
      status: 'OK',
      hasA: true,
      hasMx: false,
    },
    missing: {
      envelopeSender: 'a@missing.test',
      fromHeader: 'a@missing.test',
      status: 'NXDOMAIN',
      hasA: false,
      hasMx: false,
    },
    ndr: { envelopeSender: '', fromHeader: 'postmaster@good.test', status: 'OK', hasA: true, hasMx: true },
    invalid: {
      envelopeSender: 'a@-bad-.test',
      fromHeader: 'a@x.test',
      status: 'INVALID_DOMAIN',
      hasA: false,
      hasMx: false,
    },
    down: {
      envelopeSender: 'a@down.test',
      fromHeader: 'a@down.test',
      status: 'TEMPERROR',
      hasA: false,
      hasMx: false,
    },
  };
  const producer = await createEventProducer(config);
  const service = await startService('dns-checker', {
    MAILPOOLS_NAMESPACE: config.namespace,
    MAILPOOLS_PARTITIONS: '2',
    MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}`,
    MAILPOOLS_DNS_TIMEOUT_MS: '200',
    MAILPOOLS_DNS_ATTEMPTS: '2',
  });
  try {
    const events = Object.entries(cases).map(([id, c]) => ({
      ...sampleEvent(id),
      envelopeSender: c.envelopeSender,
      fromHeader: c.fromHeader,
    }));
    await producer.send(
      `${config.namespace}${TOPICS.counted}`,
      'OutboundMessage',
      events.map((e) => ({ key: e.messageId, value: e })),
    );
    const records = await readTopic(config, {
      topic: `${config.namespace}${TOPICS.dnsChecked}`,
      count: events.length,
    });
    assert.equal(records.length, events.length);
    const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
    for (const record of records) {
      const out = await serde.decode<OutboundMessage>('OutboundMessage', record.value);
      const expected = cases[out.messageId];
      assert.ok(expected && out.dns, out.messageId);
      assert.deepEqual(
        [out.dns.status, out.dns.hasA, out.dns.hasMx],
        [expected.status, expected.hasA, expected.hasMx],
        out.messageId,
      );
    }
    const metrics = await (await fetch(`http://127.0.0.1:${service.port}/metrics`)).text();
    assert.match(metrics, /mailpools_dns_verdicts_total\{status="TEMPERROR"\} 1/);
    assert.match(metrics, /mailpools_dns_lookups_total\{source="temporaryFailures"\} [1-9]/);
  } finally {
    assert.equal(await service.stop(), 0);
    await producer.close();
    await dns.close();
  }
});
