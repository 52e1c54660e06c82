// The whole pipeline on the real stack: spam-classifier, limit-counter, dns-checker,
// auth-verifier and pool-router as separate processes, a real DNS server on loopback with the
// scenario's zones, and the scenario file's messages — every pool and every rule — each routed
// exactly once, exactly as expected.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DECISION_CHAIN, TOPICS } from '@mailpools/core';
import { type OutboundMessage, type PoolAssignment, Serde } from '@mailpools/schemas';
import { createEventProducer, readTopic } from '@mailpools/stream';
import {
  type ServiceProcess,
  sampleEvent,
  startService,
  startTestDnsServer,
  testConfig,
} from '@mailpools/testkit';
import { openTraceStore } from '@mailpools/trace-writer/trace';
import { dkimSign } from 'mailauth';
import { corpusSpam } from './fixtures/corpus-spam.ts';

interface ScenarioMessage {
  id: string;
  sender?: string;
  submitter?: string;
  origin?: OutboundMessage['origin'];
  ip?: string;
  originalIp?: string;
  external?: number;
  internal?: number;
  at?: number;
  ndr?: string;
  dkim?: string;
  spam?: number;
  expect: { pool: string; rule: string | null; srs?: 'long' | 'bounces'; smtp?: string; throttled?: boolean };
}

const scenario = JSON.parse(
  readFileSync(new URL('./fixtures/pipeline-scenario.json', import.meta.url), 'utf8'),
) as {
  phases: ScenarioMessage[][];
};
const T0 = Date.UTC(2026, 10, 23, 9);
const BODY =
  'Hi Bob,\r\n\r\nI had a look at the build failure from last night. The test in the parser module times out because the fixture file moved; I pushed a fix to the branch, can you review it when you have a minute?\r\n\r\nThanks,\r\nAlice';
const SERVICES = [...DECISION_CHAIN, 'trace-writer'];

function sampleLike(raw: Buffer): OutboundMessage {
  return { ...sampleEvent('probe', 100, T0), tenantId: 'contoso', raw, rawSize: raw.length };
}

test('every pool and every rule, end to end, each message routed exactly once', {
  timeout: 300_000,
}, async () => {
  const config = testConfig({ MAILPOOLS_PARTITIONS: '2' });
  const key = generateKeyPairSync('ed25519');
  const dns = await startTestDnsServer({
    zones: {
      'contoso.test': [
        { type: 'A', data: '192.0.2.1' },
        { type: 'MX', data: { preference: 10, exchange: 'mx.contoso.test' } },
        { type: 'TXT', data: 'v=spf1 ip4:192.0.2.10 -all' },
      ],
      'fabrikam.test': [
        { type: 'A', data: '198.51.100.1' },
        { type: 'MX', data: { preference: 10, exchange: 'mx.fabrikam.test' } },
        { type: 'TXT', data: 'v=spf1 ip4:198.51.100.7 -all' },
      ],
      'signed.test': [
        { type: 'MX', data: { preference: 10, exchange: 'mx.signed.test' } },
        { type: 'TXT', data: 'v=spf1 -all' },
      ],
      'ed._domainkey.signed.test': [
        {
          type: 'TXT',
          data: `v=DKIM1; k=ed25519; p=${key.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64')}`,
        },
      ],
      'partner.test': [
        { type: 'A', data: '203.0.113.50' },
        { type: 'MX', data: { preference: 5, exchange: 'mx.partner.test' } },
      ],
      'bulk.test': [
        { type: 'A', data: '203.0.113.60' },
        { type: 'MX', data: { preference: 5, exchange: 'mx.bulk.test' } },
      ],
      'nullmx.test': [{ type: 'MX', data: { preference: 0, exchange: '.' } }],
      'aonly.test': [{ type: 'A', data: '203.0.113.70' }],
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'mailpools-e2e-'));
  const policyFile = join(dir, 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({
      version: 'e2e-1',
      defaults: { routing: { srs: { secret: 'an end-to-end test secret' } } },
      tenants: {
        contoso: {
          directory: { acceptedDomains: ['contoso.test'] },
          limits: { messageRatePerMinute: 3, defaultPolicy: { externalPerHour: 5 } },
        },
      },
    }),
  );
  const spam = await corpusSpam(3);
  const privateKey = key.privateKey.export({ type: 'pkcs8', format: 'pem' });

  async function eventOf(m: ScenarioMessage): Promise<OutboundMessage> {
    const sender = m.ndr ? '' : (m.sender ?? 'alice@contoso.test');
    const from = m.ndr ? 'postmaster@contoso.test' : sender;
    let raw: Buffer;
    if (m.spam !== undefined) raw = spam[m.spam] as Buffer;
    else {
      const text = `From: ${from}\r\nTo: someone@elsewhere.test\r\nSubject: ${m.id}\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\nMessage-ID: <${m.id}@scenario.test>\r\n\r\n${BODY}\r\n`;
      if (m.dkim) {
        const options = { signatureData: [{ signingDomain: m.dkim, selector: 'ed', privateKey }] };
        const { signatures } = await dkimSign(text, options as unknown as Parameters<typeof dkimSign>[1]);
        raw = Buffer.from(signatures + text);
      } else raw = Buffer.from(text);
    }
    return {
      ...sampleLike(raw),
      messageId: m.id,
      eventTime: T0 + (m.at ?? 0) * 60_000,
      submitter: m.ndr ? '' : (m.submitter ?? sender),
      envelopeSender: sender,
      fromHeader: from,
      recipients: [
        ...Array.from({ length: m.external ?? 1 }, (_, i) => ({
          address: `r${i}@elsewhere.test`,
          scope: 'EXTERNAL' as const,
        })),
        ...Array.from({ length: m.internal ?? 0 }, (_, i) => ({
          address: `c${i}@contoso.test`,
          scope: 'INTERNAL' as const,
        })),
      ],
      clientIp: m.ip ?? '192.0.2.10',
      connector: m.originalIp
        ? { name: 'third-party', enhancedFiltering: true, originalClientIp: m.originalIp }
        : null,
      origin: m.ndr ? 'SYSTEM_NDR' : (m.origin ?? 'CLIENT_SUBMISSION'),
      messageClass: m.ndr ? 'NDR' : 'NORMAL',
      dsn: m.ndr
        ? {
            action: 'failed',
            status: m.ndr,
            diagnosticCode: null,
            finalRecipient: 'gone@elsewhere.test',
            remoteMta: null,
            originalMessageId: 'orig',
            originalEnvelopeSender: null,
            originalConnector: null,
            originalClientIp: null,
          }
        : null,
      tenantId: 'contoso',
    };
  }

  const env = {
    MAILPOOLS_NAMESPACE: config.namespace,
    MAILPOOLS_PARTITIONS: '2',
    MAILPOOLS_POLICY_FILE: policyFile,
    MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}`,
    MAILPOOLS_DNS_TIMEOUT_MS: '300',
  };
  const producer = await createEventProducer(config);
  const services: ServiceProcess[] = [];
  try {
    for (const name of SERVICES) services.push(await startService(name, env));
    const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
    const expected = new Map<string, ScenarioMessage>();
    let assignments: PoolAssignment[] = [];
    for (const phase of scenario.phases) {
      const events = await Promise.all(phase.map(eventOf));
      for (const m of phase) expected.set(m.id, m);
      await producer.send(
        `${config.namespace}${TOPICS.submitted}`,
        'OutboundMessage',
        events.map((e) => ({ key: e.messageId, value: e })),
      );
      const records = await readTopic(config, {
        topic: `${config.namespace}${TOPICS.routed}`,
        count: expected.size,
        timeoutMs: 90_000,
      });
      assignments = await Promise.all(
        records.map((r) => serde.decode<PoolAssignment>('PoolAssignment', r.value)),
      );
      assert.equal(assignments.length, expected.size, 'every message so far routed');
    }
    assert.ok(expected.size >= 20);
    assert.equal(new Set(assignments.map((a) => a.messageId)).size, assignments.length, 'each exactly once');
    for (const assignment of assignments) {
      const m = expected.get(assignment.messageId) ?? assert.fail(`unexpected ${assignment.messageId}`);
      const rule = assignment.trace.find((t) => t.matched)?.rule ?? null;
      const why = `${m.id}: ${assignment.reasons.join('; ')}`;
      assert.deepEqual([assignment.pool, rule], [m.expect.pool, m.expect.rule], why);
      assert.equal(assignment.policyVersion, 'e2e-1');
      if (m.expect.smtp) assert.match(assignment.smtpReply ?? '', new RegExp(`^${m.expect.smtp}`), why);
      assert.equal(assignment.notBefore !== null, m.expect.throttled === true, `${why}: notBefore`);
      if (m.expect.srs === 'long') assert.match(assignment.rewrittenSender ?? '', /^fwd\+SRS=/, why);
      else if (m.expect.srs === 'bounces')
        assert.match(assignment.rewrittenSender ?? '', /^bounces\+SRS=.*@contoso\.test$/, why);
      else assert.equal(assignment.rewrittenSender, null, why);
    }
    const pools = new Set(assignments.map((a) => a.pool));
    assert.deepEqual([...pools].sort(), ['BLOCKED', 'HIGH_RISK', 'NORMAL', 'RELAY']);
    // The message trace has every assignment, with its reasons, within seconds.
    const trace = await openTraceStore(config.databaseUrl, config.namespace);
    try {
      const deadline = Date.now() + 15_000;
      let traced = await trace.find({
        tenantId: 'contoso',
        since: T0 - 86_400_000,
        until: T0 + 2 * 86_400_000,
        limit: 1_000,
      });
      while (traced.length < assignments.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        traced = await trace.find({
          tenantId: 'contoso',
          since: T0 - 86_400_000,
          until: T0 + 2 * 86_400_000,
          limit: 1_000,
        });
      }
      assert.equal(traced.length, assignments.length);
      const [blocked] = await trace.find({
        messageId: 'limit-over',
        since: T0 - 86_400_000,
        until: T0 + 2 * 86_400_000,
      });
      assert.equal(blocked?.poolName, 'BlockedOutboundPool');
      assert.ok(blocked?.trace.some((t) => t.rule === 'blocked' && t.matched));
    } finally {
      await trace.close();
    }
  } finally {
    for (const service of services) assert.equal(await service.stop(), 0);
    await producer.close();
    await dns.close();
  }
});
