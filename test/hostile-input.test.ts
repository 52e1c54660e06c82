// Hostile input through every stage of the real pipeline: broken wire records into each stage's
// input, and valid-but-vicious events (10,000 recipients, IP-literal and malformed addresses, header
// injection, MIME nested 300 deep, a huge base64 part, a line with no end, NUL bytes, oversized
// fields) plus seeded random mutations of a valid record into the front. Every input ends as
// exactly one pool assignment or one dead-letter record with its reason; no process crashes or
// stalls; each process's peak memory (VmHWM) is measured and bounded.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { STAGES, seededRandom, TOPICS } from '@mailpools/core';
import { type OutboundMessage, type PoolAssignment, Serde } from '@mailpools/schemas';
import { createEventProducer, DLQ_HEADERS, type ReadRecord, readTopic } from '@mailpools/stream';
import {
  type ServiceProcess,
  sampleEvent,
  startService,
  startTestDnsServer,
  testConfig,
} from '@mailpools/testkit';

/** The enrichment chain up to the router: each stage and the topic it reads. */
const CHAIN = STAGES.slice(0, STAGES.findIndex((stage) => stage.service === 'pool-router') + 1).map(
  (stage) => [stage.service, TOPICS[stage.input]] as const,
);
const MUTATIONS = 300;
const PEAK_RSS_LIMIT_MB = 600;

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return Math.round(kb / 1024);
}

function nestedMime(depth: number): string {
  let body = 'Content-Type: text/plain\r\n\r\nthe innermost part\r\n';
  for (let i = 0; i < depth; i++)
    body = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${body}--b${i}--\r\n`;
  return `From: alice@contoso.test\r\nTo: bob@fabrikam.test\r\nSubject: nested\r\nMIME-Version: 1.0\r\n${body}`;
}

function hostileEvents(now: number): OutboundMessage[] {
  const base = (id: string, overrides: Partial<OutboundMessage>): OutboundMessage => {
    const event = { ...sampleEvent(id, 600, now), tenantId: 'hostile', ...overrides };
    return { ...event, rawSize: event.raw.length };
  };
  const raw = (text: string) => Buffer.from(text);
  const huge = Buffer.alloc(600_000, 7).toString('base64');
  return [
    base('recipients-10000', {
      recipients: Array.from({ length: 10_000 }, (_, i) => ({
        address: `r${i}@fabrikam.test`,
        scope: 'EXTERNAL' as const,
      })),
    }),
    base('ip-literal', {
      submitter: 'alice@[192.0.2.1]',
      envelopeSender: 'alice@[192.0.2.1]',
      fromHeader: 'alice@[IPv6:2001:db8::1]',
    }),
    base('malformed-addresses', {
      submitter: 'not an address',
      envelopeSender: '@@@',
      fromHeader: '"<<>>"@',
      recipients: [{ address: 'nobody', scope: 'EXTERNAL' }],
    }),
    base('header-injection', {
      fromHeader: 'alice@contoso.test\r\nBcc: victim@fabrikam.test',
      raw: raw(
        'From: alice@contoso.test\r\nBcc: victim@fabrikam.test\r\nTo: bob@fabrikam.test\r\nSubject: hi\r\nSubject: again\r\n\r\nbody\r\n',
      ),
    }),
    base('nested-mime', { raw: raw(nestedMime(300)) }),
    base('huge-base64', {
      raw: raw(
        `From: alice@contoso.test\r\nTo: bob@fabrikam.test\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${huge}\r\n--x--\r\n`,
      ),
    }),
    base('endless-line', {
      raw: raw(`From: alice@contoso.test\r\nSubject: x\r\n\r\n${'A'.repeat(250_000)}`),
    }),
    base('invalid-utf8', {
      raw: Buffer.concat([
        raw('From: alice@contoso.test\r\nSubject: '),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
        raw('\r\n\r\n'),
        Buffer.from([0xed, 0xa0, 0x80, 0xf8, 0x88]),
      ]),
    }),
    base('nul-bytes', {
      envelopeSender: 'al\u0000ice@contoso.test',
      fromHeader: 'al\u0000ice@contoso.test',
      helo: 'mail\u0000.contoso.test',
    }),
    base('oversized-fields', {
      tenantId: 't'.repeat(10_000),
      envelopeSender: `a@${'x'.repeat(300)}.test`,
      fromHeader: `a@${'x'.repeat(300)}.test`,
      helo: 'h'.repeat(100_000),
      clientIp: '999.999.999.999',
    }),
    base('empty-everything', {
      submitter: '',
      envelopeSender: '',
      fromHeader: '',
      recipients: [],
      raw: Buffer.alloc(0),
      helo: '',
      clientIp: '',
    }),
    base('idn-and-case', {
      envelopeSender: 'JÜRGEN@Bücher.Example',
      fromHeader: 'jürgen@xn--bcher-kva.example',
    }),
  ];
}

test('hostile input through every stage: an explicit verdict or a dead letter with its reason for each, no crash, bounded memory', {
  timeout: 300_000,
}, async () => {
  const config = testConfig({ MAILPOOLS_PARTITIONS: '2' });
  const dns = await startTestDnsServer({
    zones: {
      'contoso.test': [
        { type: 'A', data: '192.0.2.1' },
        { type: 'MX', data: { preference: 10, exchange: 'mx.contoso.test' } },
      ],
    },
  });
  const env = {
    MAILPOOLS_NAMESPACE: config.namespace,
    MAILPOOLS_PARTITIONS: '2',
    MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}`,
    MAILPOOLS_DNS_TIMEOUT_MS: '300',
  };
  const producer = await createEventProducer(config);
  const serde = new Serde({ registryUrl: config.schemaRegistryUrl });
  const services = new Map<string, ServiceProcess>();
  try {
    for (const [name] of CHAIN) services.set(name, await startService(name, env));
    const pids = new Map([...services].map(([name, s]) => [name, s.child.pid as number]));
    const topic = (name: string) => `${config.namespace}${name}`;

    // Broken wire records into every stage's input.
    const valid = await producer.serde.encode('OutboundMessage', sampleEvent('template'));
    const unknownSchema = Buffer.from(valid);
    unknownSchema.writeInt32BE(987_654_321, 1);
    const wrongMagic = Buffer.from(valid);
    wrongMagic[0] = 1;
    const wire: Record<string, [Buffer, string]> = {
      garbage: [Buffer.from('this is not avro at all'), 'MAILPOOLS_ERR_NOT_WIRE_FORMAT'],
      'wrong-magic': [wrongMagic, 'MAILPOOLS_ERR_NOT_WIRE_FORMAT'],
      'unknown-schema': [unknownSchema, 'MAILPOOLS_ERR_UNKNOWN_SCHEMA_ID'],
      truncated: [valid.subarray(0, valid.length - 40), 'MAILPOOLS_ERR_DECODE_FAILED'],
    };
    for (const [stage, input] of CHAIN)
      await producer.sendRaw(
        topic(input),
        Object.entries(wire).map(([kind, [value]]) => ({ key: `wire-${kind}-${stage}`, value })),
      );

    // Vicious but valid events, and seeded mutations of a valid record, into the front.
    const now = Date.now();
    const crafted = hostileEvents(now);
    await producer.send(
      topic(TOPICS.submitted),
      'OutboundMessage',
      crafted.map((e) => ({ key: e.messageId, value: e })),
    );
    const random = seededRandom(11);
    const template = await producer.serde.encode('OutboundMessage', sampleEvent('mutant', 400, now));
    const mutants = Array.from({ length: MUTATIONS }, (_, i) => {
      const bytes = Buffer.from(template);
      const flips = 1 + Math.floor(random() * 8);
      for (let f = 0; f < flips; f++) {
        const at = 5 + Math.floor(random() * (bytes.length - 5)); // keep the wire header: the body is hostile
        bytes[at] = Math.floor(random() * 256);
      }
      return { key: `mutant-${i}`, value: bytes };
    });
    await producer.sendRaw(topic(TOPICS.submitted), mutants);

    // Until every front input is accounted for: routed, or dead-lettered at some stage.
    const expected = crafted.length + MUTATIONS + Object.keys(wire).length;
    let routed: ReadRecord[] = [];
    let dead: ReadRecord[] = [];
    const deadline = Date.now() + 150_000;
    for (;;) {
      routed = await readTopic(config, { topic: topic(TOPICS.routed), idleMs: 1_500, timeoutMs: 30_000 });
      dead = [];
      for (const [, input] of CHAIN)
        dead.push(
          ...(await readTopic(config, { topic: `${topic(input)}.dlq`, idleMs: 500, timeoutMs: 30_000 })),
        );
      const fromFront = dead.filter((r) => !r.key?.startsWith('wire-') || r.key.endsWith('-spam-classifier'));
      if (routed.length + fromFront.length >= expected || Date.now() > deadline) {
        assert.equal(
          routed.length + fromFront.length,
          expected,
          'every front input routed or dead-lettered, once',
        );
        break;
      }
      await new Promise((r) => setTimeout(r, 2_000));
    }

    // Each broken wire record is in its stage's DLQ with the right code and the original bytes.
    for (const [stage] of CHAIN)
      for (const [kind, [value, code]] of Object.entries(wire)) {
        const record = dead.find((r) => r.key === `wire-${kind}-${stage}`);
        assert.ok(record, `wire-${kind} into ${stage} is dead-lettered`);
        assert.equal(record.headers[DLQ_HEADERS.code], code, `wire-${kind} into ${stage}`);
        assert.equal(record.headers[DLQ_HEADERS.stage], stage);
        assert.ok((record.headers[DLQ_HEADERS.message] ?? '').length > 10, 'with a sentence saying why');
        assert.deepEqual(record.value, value, 'with the original bytes');
      }

    // Each crafted event: one assignment, or a dead letter whose reason names a code.
    const assignments = await Promise.all(
      routed.map((r) => serde.decode<PoolAssignment>('PoolAssignment', r.value as Buffer)),
    );
    const outcome = new Map<string, string>();
    for (const a of assignments)
      outcome.set(a.messageId, `${a.pool} (${a.reasons.join('; ') || 'good mail'})`);
    for (const r of dead) if (r.key) outcome.set(r.key, `DLQ ${r.headers[DLQ_HEADERS.code]}`);
    for (const event of crafted) {
      const seen = outcome.get(event.messageId);
      assert.ok(seen, `${event.messageId} has an outcome`);
      console.error(`hostile ${event.messageId}: ${seen}`);
    }
    const mutantCodes: Record<string, number> = {};
    for (const r of dead)
      if (r.key?.startsWith('mutant-')) {
        const code = r.headers[DLQ_HEADERS.code] ?? '?';
        mutantCodes[code] = (mutantCodes[code] ?? 0) + 1;
      }
    const mutantsDead = Object.values(mutantCodes).reduce((a, b) => a + b, 0);
    console.error(
      `hostile input: ${MUTATIONS} mutants, ${MUTATIONS - mutantsDead} routed, dead-lettered ${JSON.stringify(mutantCodes)}`,
    );
    // 10,000 recipients in one message is over the per-message limit: rejected, not routed.
    assert.match(outcome.get('recipients-10000') ?? '', /^BLOCKED/);
    assert.ok(
      dead.every((r) => /^MAILPOOLS_ERR_[A-Z_]+$/.test(r.headers[DLQ_HEADERS.code] ?? '')),
      'every dead letter carries a code',
    );

    // Nothing crashed or restarted; memory stayed bounded.
    const peaks: Record<string, number> = {};
    for (const [name, service] of services) {
      assert.equal(service.child.exitCode, null, `${name} is still running`);
      assert.equal(service.child.pid, pids.get(name));
      peaks[name] = peakRssMb(service.child.pid as number);
      assert.ok((await fetch(`http://127.0.0.1:${service.port}/readyz`)).ok, `${name} is still ready`);
    }
    console.error(`hostile input: peak RSS per service (MB) ${JSON.stringify(peaks)}`);
    for (const [name, mb] of Object.entries(peaks))
      assert.ok(mb < PEAK_RSS_LIMIT_MB, `${name} peaked at ${mb} MB (limit ${PEAK_RSS_LIMIT_MB} MB)`);
  } finally {
    for (const service of services.values()) assert.equal(await service.stop(), 0);
    await producer.close();
    await dns.close();
  }
});
