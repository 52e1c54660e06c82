import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePolicy } from '@mailpools/policy';
import type { OutboundMessage, PoolAssignment } from '@mailpools/schemas';
import { sampleAssignment } from '@mailpools/testkit';
import { Registry } from 'prom-client';
import { eventFromSubmission } from './message.ts';
import { createSubmitter, DecisionDeferred, type SubmitTransport } from './submitter.ts';

function event(id: string, tenantId = 'contoso'): OutboundMessage {
  const raw = Buffer.from(
    `From: bob@contoso.test\r\nMessage-ID: <${id}@contoso.test>\r\n\r\nhello ${id}\r\n`,
  );
  const base = eventFromSubmission(
    {
      tenantId,
      origin: 'CLIENT_SUBMISSION',
      submitter: 'bob@contoso.test',
      envelopeSender: 'bob@contoso.test',
      recipients: ['ann@example.com'],
      clientIp: '192.0.2.1',
      helo: 'laptop',
      raw,
      acceptedAt: 1,
    },
    { internalDomains: ['contoso.test'], maxRawBytes: 1_000 },
  );
  return { ...base, messageId: id };
}

/** A pipeline in memory: what is produced is answered after `delayMs`, unless `silent` holds. */
function fakePipeline(options: { delayMs?: number; silent?: (e: OutboundMessage) => boolean } = {}) {
  let deliver: (a: PoolAssignment) => void = () => undefined;
  const produceCalls: number[] = [];
  const transport: SubmitTransport = {
    async produce(events) {
      produceCalls.push(events.length);
      for (const e of events)
        if (!options.silent?.(e)) setTimeout(() => deliver(sampleAssignment(e)), options.delayMs ?? 1);
    },
    async follow(onAssignment) {
      deliver = onAssignment;
      return { stop: async () => undefined };
    },
  };
  return { transport, produceCalls, answer: (e: OutboundMessage) => deliver(sampleAssignment(e)) };
}

const metric = async (registry: Registry, name: string) =>
  (await registry.getSingleMetric(name)?.get())?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;

test('submit resolves with the assignment of its message id; one produce per tick for many submissions', async () => {
  const pipeline = fakePipeline();
  const submitter = await createSubmitter({ transport: pipeline.transport });
  const assignments = await Promise.all(['a', 'b', 'c'].map((id) => submitter.submit(event(id))));
  assert.deepEqual(
    assignments.map((a) => a.messageId),
    ['a', 'b', 'c'],
  );
  assert.deepEqual(pipeline.produceCalls, [3]);
  assert.equal(submitter.waiting(), 0);
  await submitter.close();
});

test('no assignment in time: the default policy defers with a 4xx, and the late assignment is counted, not delivered', async () => {
  const registry = new Registry();
  const pipeline = fakePipeline({ silent: () => true });
  const submitter = await createSubmitter({ transport: pipeline.transport, registry });
  const late = event('late');
  await assert.rejects(submitter.submit(late, { timeoutMs: 30 }), (error: unknown) => {
    assert.ok(error instanceof DecisionDeferred);
    assert.equal(error.code, 'MAILPOOLS_ERR_DECISION_TIMEOUT');
    assert.match(error.smtpReply, /^451 4\.7\.500 /);
    return true;
  });
  pipeline.answer(late);
  assert.equal(await metric(registry, 'mailpools_client_late_assignments_total'), 1);
  assert.equal(await metric(registry, 'mailpools_client_timeouts_total'), 1);
  await submitter.close();
});

test('a tenant whose policy says high-risk gets an unjudged high-risk assignment, never the normal pool', async () => {
  const policy = compilePolicy({
    version: 'p2',
    defaults: { routing: { pools: { HIGH_RISK: { ips: [{ ip: '203.0.113.9' }] } } } },
    tenants: { patient: { mta: { decisionTimeoutMs: 100, onTimeout: 'high-risk' } } },
  });
  const pipeline = fakePipeline({ silent: () => true });
  const submitter = await createSubmitter({ transport: pipeline.transport, policy: () => policy });
  const assignment = await submitter.submit(event('u', 'patient'));
  assert.deepEqual(
    [assignment.pool, assignment.sourceIp, assignment.heloName],
    ['HIGH_RISK', '203.0.113.9', 'outbound-hr.mailpools.invalid'],
  );
  assert.match(assignment.reasons[0] ?? '', /^unjudged: no assignment within 100 ms/);
  await submitter.close();
});

test('in-flight submissions are bounded: the next one waits for a slot, and gives up at its deadline', async () => {
  const registry = new Registry();
  const pipeline = fakePipeline({ silent: (e) => e.messageId.startsWith('hold') });
  const submitter = await createSubmitter({ transport: pipeline.transport, maxInFlight: 2, registry });
  const held = [event('hold1'), event('hold2')];
  const holding = held.map((e) => submitter.submit(e, { timeoutMs: 1_000 }));
  const third = submitter.submit(event('third'), { timeoutMs: 1_000 });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(await metric(registry, 'mailpools_client_queued'), 1, 'the third waits for a slot');
  pipeline.answer(held[0] as OutboundMessage);
  assert.equal((await third).messageId, 'third');
  const refill = event('hold3');
  holding.push(submitter.submit(refill, { timeoutMs: 1_000 }));
  await assert.rejects(submitter.submit(event('hold4'), { timeoutMs: 20 }), /back-pressure/);
  pipeline.answer(held[1] as OutboundMessage);
  pipeline.answer(refill);
  await Promise.all(holding);
  await submitter.close();
});

test('the same message submitted twice while waiting: both get its one assignment', async () => {
  const pipeline = fakePipeline({ silent: () => true });
  const submitter = await createSubmitter({ transport: pipeline.transport });
  const same = event('twice');
  const both = Promise.all([submitter.submit(same), submitter.submit(same)]);
  await new Promise((r) => setTimeout(r, 5));
  pipeline.answer(same);
  assert.deepEqual(
    (await both).map((a) => a.messageId),
    ['twice', 'twice'],
  );
  await submitter.close();
});

test('a broker that refuses the event defers the message as a timeout would', async () => {
  const transport: SubmitTransport = {
    produce: async () => {
      throw new Error('connection refused');
    },
    follow: async () => ({ stop: async () => undefined }),
  };
  const submitter = await createSubmitter({ transport });
  await assert.rejects(
    submitter.submit(event('x'), { timeoutMs: 500 }),
    /could not be submitted: connection refused/,
  );
  await submitter.close();
});
