// auth-verifier on the real stack, as its own process, against a real DNS server on loopback:
// forwarded mail with SPF pass, with DKIM pass, from an accepted domain, and with nothing.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TOPICS } from '@mailpools/core';
import { type OutboundMessage, Serde } from '@mailpools/schemas';
import { createEventProducer, readTopic } from '@mailpools/stream';
import { sampleEvent, startService, startTestDnsServer, testConfig } from '@mailpools/testkit';
import { dkimSign } from 'mailauth';

test('auth-verifier fills the auth enrichment: SPF, DKIM, accepted domain, and what vouches', {
  timeout: 120_000,
}, async () => {
  const config = testConfig();
  const key = generateKeyPairSync('ed25519');
  const publicKey = key.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64');
  const dns = await startTestDnsServer({
    zones: {
      'sender.test': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.10 -all' }],
      'ed._domainkey.sender.test': [{ type: 'TXT', data: `v=DKIM1; k=ed25519; p=${publicKey}` }],
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'mailpools-auth-'));
  const policyFile = join(dir, 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({
      version: 't',
      tenants: { contoso: { directory: { acceptedDomains: ['contoso.test'] } } },
    }),
  );

  const raw = (from: string) =>
    `From: ${from}\r\nTo: bob@fabrikam.test\r\nSubject: hi\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nHello.\r\n`;
  const signedRaw = async (from: string) => {
    const options = {
      signatureData: [
        {
          signingDomain: 'sender.test',
          selector: 'ed',
          privateKey: key.privateKey.export({ type: 'pkcs8', format: 'pem' }),
        },
      ],
    };
    const { signatures } = await dkimSign(raw(from), options as unknown as Parameters<typeof dkimSign>[1]);
    return signatures + raw(from);
  };
  const cases: Record<
    string,
    { sender: string; ip: string; raw: string; expect: [string, boolean, boolean, boolean] }
  > = {
    'spf-pass': {
      sender: 'a@sender.test',
      ip: '192.0.2.10',
      raw: raw('a@sender.test'),
      expect: ['pass', false, false, true],
    },
    'dkim-pass': {
      sender: 'a@sender.test',
      ip: '203.0.113.9',
      raw: await signedRaw('a@sender.test'),
      expect: ['fail', true, false, true],
    },
    accepted: {
      sender: 'a@contoso.test',
      ip: '203.0.113.9',
      raw: raw('a@contoso.test'),
      expect: ['none', false, true, true],
    },
    nothing: {
      sender: 'a@sender.test',
      ip: '203.0.113.9',
      raw: raw('a@sender.test'),
      expect: ['fail', false, false, false],
    },
  };
  const producer = await createEventProducer(config);
  const service = await startService('auth-verifier', {
    MAILPOOLS_NAMESPACE: config.namespace,
    MAILPOOLS_PARTITIONS: '2',
    MAILPOOLS_POLICY_FILE: policyFile,
    MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}`,
    MAILPOOLS_DNS_TIMEOUT_MS: '300',
  });
  try {
    const events: OutboundMessage[] = Object.entries(cases).map(([id, c]) => ({
      ...sampleEvent(id),
      tenantId: 'contoso',
      origin: 'FORWARDED',
      envelopeSender: c.sender,
      fromHeader: c.sender,
      clientIp: c.ip,
      raw: Buffer.from(c.raw),
      rawSize: c.raw.length,
    }));
    await producer.send(
      `${config.namespace}${TOPICS.dnsChecked}`,
      'OutboundMessage',
      events.map((e) => ({ key: e.messageId, value: e })),
    );
    const records = await readTopic(config, {
      topic: `${config.namespace}${TOPICS.verified}`,
      count: events.length,
    });
    assert.equal(records.length, events.length);
    const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
    for (const record of records) {
      const out = await serde.decode<OutboundMessage>('OutboundMessage', record.value);
      const expected = cases[out.messageId];
      assert.ok(expected && out.auth, out.messageId);
      assert.deepEqual(
        [out.auth.spf, out.auth.dkimPassForSender, out.auth.acceptedDomain, out.auth.vouched],
        expected.expect,
        out.messageId,
      );
      assert.equal(out.auth.status, 'VERIFIED');
    }
    const metrics = await (await fetch(`http://127.0.0.1:${service.port}/metrics`)).text();
    assert.match(metrics, /mailpools_auth_verdicts_total\{status="VERIFIED",vouched="true"\} 3/);
    assert.match(metrics, /mailpools_auth_results_total\{check="spf",result="pass"\} 1/);
  } finally {
    assert.equal(await service.stop(), 0);
    await producer.close();
    await dns.close();
  }
});
