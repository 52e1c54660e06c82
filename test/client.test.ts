// The integration API against the real broker, with the test in the router's place: one reader
// of the routed topic serves many waiting submissions, each gets its own assignment whatever the
// order; and across a broker restart, waiting submissions time out cleanly, assignments that come
// after are counted as late, and the same submitter goes on serving new submissions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSubmitter, DecisionDeferred, eventFromSubmission, kafkaTransport } from '@mailpools/client';
import { allTopics, topicName } from '@mailpools/core';
import type { OutboundMessage } from '@mailpools/schemas';
import { stackRestart } from '@mailpools/stack';
import { createEventProducer } from '@mailpools/stream';
import { sampleAssignment, testConfig } from '@mailpools/testkit';
import { Registry } from 'prom-client';

function event(id: string): OutboundMessage {
  const raw = Buffer.from(
    `From: bob@contoso.test\r\nMessage-ID: <${id}@contoso.test>\r\n\r\nHello ${id}\r\n`,
  );
  return eventFromSubmission(
    {
      tenantId: 'contoso',
      origin: 'CLIENT_SUBMISSION',
      submitter: 'bob@contoso.test',
      envelopeSender: 'bob@contoso.test',
      recipients: [`${id}@example.com`],
      clientIp: '192.0.2.1',
      helo: 'laptop',
      raw,
      acceptedAt: Date.now(),
    },
    { internalDomains: ['contoso.test'], maxRawBytes: 10_000 },
  );
}

test('the client library: many waiters on one reader, and a broker restart under waiting submissions', {
  timeout: 240_000,
}, async () => {
  const config = testConfig({ MAILPOOLS_PARTITIONS: '3' });
  const producer = await createEventProducer(config);
  await producer.ensureTopics(allTopics(config.namespace, 3));
  const routed = topicName('routed', config.namespace);
  const answer = (events: OutboundMessage[]) =>
    producer.send(
      routed,
      'PoolAssignment',
      events.map((e) => ({ key: e.messageId, value: sampleAssignment(e) })),
    );
  const registry = new Registry();
  const submitter = await createSubmitter({ transport: await kafkaTransport(config), registry });
  const metric = async (name: string) =>
    (await registry.getSingleMetric(name)?.get())?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
  try {
    // Twenty at once, answered in reverse order: each resolves with its own assignment.
    const many = Array.from({ length: 20 }, (_, i) => event(`many-${i}`));
    const waiting = many.map((e) => submitter.submit(e, { timeoutMs: 30_000 }));
    await new Promise((r) => setTimeout(r, 500));
    await answer([...many].reverse());
    const assignments = await Promise.all(waiting);
    assert.deepEqual(
      assignments.map((a) => a.messageId),
      many.map((e) => e.messageId),
    );

    // The broker restarts while three wait: they give up at their deadline, with the 4xx.
    const stranded = Array.from({ length: 3 }, (_, i) => event(`stranded-${i}`));
    const outcomes = stranded.map((e) =>
      submitter.submit(e, { timeoutMs: 4_000 }).then(
        () => 'assigned',
        (error: unknown) => (error instanceof DecisionDeferred ? error.smtpReply : String(error)),
      ),
    );
    await stackRestart('kafka', { redisUrl: null, databaseUrl: null, log: () => undefined });
    for (const outcome of await Promise.all(outcomes)) assert.match(outcome, /^451 4\.7\.500 /);
    assert.equal(await metric('mailpools_client_timeouts_total'), 3);

    // Back up: their assignments come late (counted, dropped), and a new submission is served.
    await answer(stranded);
    const fresh = event('after-restart');
    const served = submitter.submit(fresh, { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 500));
    await answer([fresh]);
    assert.equal((await served).messageId, fresh.messageId);
    const deadline = Date.now() + 30_000;
    while ((await metric('mailpools_client_late_assignments_total')) < 3 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    assert.equal(
      await metric('mailpools_client_late_assignments_total'),
      3,
      'the late assignments are counted',
    );
    assert.equal(await metric('mailpools_client_waiting'), 0);
  } finally {
    await submitter.close();
    await producer.close();
  }
});
