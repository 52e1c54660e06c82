// Haraka in front of the whole pipeline on the real stack: messages submitted over SMTP with AUTH
// (and handed over by the platform's forwarding host) either arrive at the recording destination
// exactly once, from exactly the source IP and HELO of their pool and with the right MAIL FROM,
// or are refused at submission with their reply; the trace shows the same pool. Then the
// pipeline is stopped under submission: nothing unjudged leaves, the MTA defers, and once the
// pipeline is back the retries deliver each message once.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '@mailpools/core';
import { type Delivery, type HarakaProcess, startHaraka, writeHarakaInstance } from '@mailpools/stack';
import { scrapeMetric } from '@mailpools/testkit';
import { openTraceStore, type TraceRow } from '@mailpools/trace-writer/trace';
import nodemailer from 'nodemailer';
import {
  DECISION_TIMEOUT_MS,
  FORWARDER_IP,
  type MtaWorld,
  mtaScenario,
  PASSWORD,
  POOLS,
  plainMessage,
  type ScenarioMessage,
  startMtaWorld,
  THROTTLED_OF_BURST,
  USERS,
} from './fixtures/mta-world.ts';

let world: MtaWorld;
let haraka: HarakaProcess;
let smtpPort: number;
let metricsPort: number;
const started = Date.now();

before(async () => {
  world = await startMtaWorld();
  smtpPort = await freePort();
  metricsPort = await freePort();
  const instance = {
    dir: join(world.dir, 'haraka'),
    smtpPort,
    users: Object.fromEntries(USERS.map((user) => [user, PASSWORD])),
    deliveryPort: world.destination.port,
    metricsPort,
    forwarders: [FORWARDER_IP],
    decisionTimeoutMs: DECISION_TIMEOUT_MS,
    retrySeconds: 5,
  };
  writeHarakaInstance(instance);
  try {
    haraka = await startHaraka(instance, world.env);
  } catch (error) {
    await world.close();
    throw error;
  }
});

after(async () => {
  const code = await haraka?.stop();
  await world?.close();
  if (haraka) writeFileSync(join(world.dir, 'haraka.log'), haraka.output());
  assert.equal(code, 0, `Haraka stops cleanly (its log: ${join(world.dir, 'haraka.log')})`);
});

type Sent = { accepted: true; response: string } | { accepted: false; code: number; response: string };

async function send(message: ScenarioMessage): Promise<Sent> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: smtpPort,
    secure: false,
    ignoreTLS: true,
    name: message.user ? 'laptop.contoso.test' : 'inbound.mailpools.test',
    ...(message.user ? { auth: { user: message.user, pass: PASSWORD } } : { localAddress: FORWARDER_IP }),
  });
  try {
    const info = await transport.sendMail({
      envelope: { from: message.mailFrom, to: [...message.to] },
      raw: message.raw,
    });
    return { accepted: true, response: info.response };
  } catch (error) {
    const {
      responseCode,
      response,
      message: text,
    } = error as { responseCode?: number; response?: string; message: string };
    if (responseCode === undefined) throw error;
    return { accepted: false, code: responseCode, response: response ?? text };
  } finally {
    transport.close();
  }
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const deliveriesTo = (address: string): Delivery[] =>
  world.destination.deliveries.filter((d) => d.recipients.includes(address));

async function traceOf(recipient: string): Promise<TraceRow[]> {
  const store = await openTraceStore(process.env.DATABASE_URL ?? '', world.namespace);
  try {
    return await store.find({ recipient, since: started - 3_600_000, until: Date.now() + 3_600_000 });
  } finally {
    await store.close();
  }
}

test('Haraka: each message arrives once from its pool’s IP and HELO, or is refused with its reply; the trace agrees', {
  timeout: 300_000,
}, async () => {
  const scenario = await mtaScenario(world);
  assert.ok(scenario.length >= 20);
  const sent = new Map<string, Sent>();
  const ordered = scenario.filter((m) => m.user === 'over@contoso.test');
  const burst = scenario.filter((m) => 'burst' in m.expect);
  const rest = scenario.filter((m) => !ordered.includes(m) && !burst.includes(m));
  // Limits depend on order: the over-limit sender's messages go one after the other.
  for (const m of ordered) sent.set(m.id, await send(m));
  await Promise.all(rest.map(async (m) => sent.set(m.id, await send(m))));
  // A burst within one minute of the clock, so that the rate limit sees all of it.
  if (new Date().getUTCSeconds() > 45)
    await new Promise((r) => setTimeout(r, (61 - new Date().getUTCSeconds()) * 1000));
  await Promise.all(burst.map(async (m) => sent.set(m.id, await send(m))));

  for (const m of scenario) {
    const result = sent.get(m.id);
    if ('refused' in m.expect) {
      assert.equal(result?.accepted, false, `${m.id} is refused`);
      assert.match(
        result?.accepted === false ? `${result.code} ${result.response.replace(/^\d{3}[ -]/, '')}` : '',
        m.expect.refused,
        m.id,
      );
    } else assert.equal(result?.accepted, true, `${m.id} is accepted: ${JSON.stringify(result)}`);
  }

  // Every accepted message arrives (throttled ones after their minute), once.
  const arriving = scenario.filter((m) => 'pool' in m.expect);
  await waitFor(
    'every accepted message at the destination',
    () => (arriving.every((m) => deliveriesTo(m.to[0] as string).length > 0) ? true : undefined),
    150_000,
  );
  const bounce = await waitFor(
    "the MTA's bounce of the refused recipient",
    () =>
      world.destination.deliveries.find(
        (d) => d.mailFrom === '' && d.recipients.includes('alice@contoso.test'),
      ),
    60_000,
  );
  await new Promise((r) => setTimeout(r, 3_000)); // room for a duplicate to show

  let throttled = 0;
  for (const m of scenario) {
    const rows = await waitFor(
      `the trace of ${m.id}`,
      async () => {
        const found = await traceOf(m.to[0] as string);
        return found.length > 0 ? found : undefined;
      },
      20_000,
    );
    const why = `${m.id}: ${rows.map((r) => `${r.pool} ${r.reasons.join('; ')}`).join(' | ')}`;
    if ('refused' in m.expect) {
      assert.ok(
        rows.every((r) => r.pool === 'BLOCKED'),
        why,
      );
      assert.match(rows[0]?.smtpReply ?? '', m.expect.refused, why);
      assert.equal(deliveriesTo(m.to[0] as string).length, 0, `${why}: nothing delivered`);
      continue;
    }
    if ('bounced' in m.expect) {
      assert.deepEqual(
        rows.map((r) => r.pool),
        ['NORMAL'],
        why,
      );
      continue;
    }
    const { pool, mailFrom } = m.expect;
    assert.deepEqual([...new Set(rows.map((r) => r.pool))], [pool], why);
    const deliveries = deliveriesTo(m.to[0] as string);
    assert.equal(deliveries.length, 1, `${why}: delivered exactly once`);
    const delivery = deliveries[0] as Delivery;
    assert.deepEqual(
      [delivery.peer, delivery.helo],
      [POOLS[pool].ip, POOLS[pool].helo],
      `${why}: source IP and HELO`,
    );
    assert.deepEqual(delivery.recipients, [...m.to], why);
    if (mailFrom === 'same') assert.equal(delivery.mailFrom, m.mailFrom, why);
    if (mailFrom === 'null') assert.equal(delivery.mailFrom, '', why);
    if (mailFrom === 'srs') {
      assert.equal(delivery.mailFrom, rows[0]?.rewrittenSender, why);
      assert.match(delivery.mailFrom, /^fwd\+SRS=.*@contoso\.test$/, why);
    }
    assert.equal(delivery.mailpoolsId, rows[0]?.messageId, `${why}: the delivered copy names its event`);
    const notBefore = rows[0]?.notBefore ? Date.parse(rows[0].notBefore) : null;
    if (notBefore !== null) {
      throttled++;
      assert.ok(m.expect.burst, `${why}: only the burst is throttled`);
      assert.ok(delivery.receivedAt >= notBefore, `${why}: delivered no earlier than its not-before time`);
    }
  }
  assert.equal(throttled, THROTTLED_OF_BURST, 'the burst beyond the rate is throttled, not refused');
  // The MTA's own bounce is judged too: an NDR, from the high-risk pool, with the null sender.
  assert.deepEqual([bounce.peer, bounce.helo], [POOLS.HIGH_RISK.ip, POOLS.HIGH_RISK.helo]);
  const bounceRows = await traceOf('alice@contoso.test');
  assert.ok(
    bounceRows.some(
      (r) => r.pool === 'HIGH_RISK' && r.sender === '' && r.trace.some((t) => t.rule === 'ndr' && t.matched),
    ),
    'the bounce is in the trace as an NDR of the high-risk pool',
  );
  const expectedDeliveries = arriving.length + 1;
  assert.equal(world.destination.deliveries.length, expectedDeliveries, 'nothing else was delivered');
});

test('Haraka with the pipeline stopped: submissions are deferred, nothing unjudged leaves; back up, the retries deliver each once', {
  timeout: 240_000,
}, async () => {
  const before = world.destination.deliveries.length;
  await world.services.get('pool-router')?.stop();
  const messages: ScenarioMessage[] = ['down-1', 'down-2', 'down-3'].map((id) => {
    const to = [`${id}@elsewhere.test`];
    return {
      id,
      user: 'alice@contoso.test',
      mailFrom: 'alice@contoso.test',
      to,
      raw: plainMessage(id, 'alice@contoso.test', to),
      expect: { pool: 'NORMAL', mailFrom: 'same' },
    };
  });
  const first = await Promise.all(messages.map(send));
  for (const result of first) {
    assert.equal(result.accepted, false, 'deferred while the pipeline is down');
    if (!result.accepted) {
      assert.equal(Math.floor(result.code / 100), 4, 'a temporary failure');
      assert.match(result.response, /4\.7\.500/);
    }
  }
  assert.equal(world.destination.deliveries.length, before, 'nothing left unjudged');
  assert.ok((await scrapeMetric(metricsPort, 'mailpools_client_timeouts_total')) >= 3);

  await world.restart('pool-router');
  // The submitting client retries, as a real one does after a 4xx.
  await Promise.all(
    messages.map(async (m) => {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const result = await send(m);
        if (result.accepted) return;
        assert.equal(Math.floor(result.code / 100), 4, `${m.id}: only ever deferred`);
        if (Date.now() > deadline) assert.fail(`${m.id} was never accepted`);
        await new Promise((r) => setTimeout(r, 2_000));
      }
    }),
  );
  await waitFor(
    'the retried messages at the destination',
    () => (messages.every((m) => deliveriesTo(m.to[0] as string).length > 0) ? true : undefined),
    60_000,
  );
  await new Promise((r) => setTimeout(r, 3_000));
  for (const m of messages) {
    const deliveries = deliveriesTo(m.to[0] as string);
    assert.equal(deliveries.length, 1, `${m.id} delivered exactly once`);
    assert.deepEqual([deliveries[0]?.peer, deliveries[0]?.helo], [POOLS.NORMAL.ip, POOLS.NORMAL.helo]);
    const rows = await traceOf(m.to[0] as string);
    assert.ok(
      rows.length >= 1 && rows.every((r) => r.pool === 'NORMAL'),
      `${m.id}: ${rows.length} trace rows`,
    );
  }
});
