// Golden tests, one per rule of MISSION.md's limits section, through the real counting script on
// a real Redis (REDIS_URL; the test runner's stack), each test under its own key prefix.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, test } from 'node:test';
import {
  chooseOutboundSpamPolicy,
  countBatch,
  SMTP_REPLIES,
  tenantExternalLimit,
} from '@mailpools/limit-counter/limits';
import { createLimitStore, type LimitStore } from '@mailpools/limit-counter/store';
import { compilePolicy, DEFAULT_POLICY, type Policy, PRESETS } from '@mailpools/policy';
import type { LimitsVerdict, MessageClass, OutboundMessage, SenderRestriction } from '@mailpools/schemas';
import { sampleEvent } from '@mailpools/testkit';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6380');
const prefixes: string[] = [];
after(async () => {
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
});

const T0 = Date.UTC(2026, 10, 23, 9, 0, 0);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

interface Send {
  id?: string;
  at?: number;
  submitter?: string;
  from?: string;
  external?: number;
  internal?: number;
  messageClass?: MessageClass;
  tenant?: string;
}

function harness(policy: Policy = DEFAULT_POLICY, graceMs = 5 * MINUTE) {
  const prefix = `mailpools:test-${randomUUID().slice(0, 8)}:limits:`;
  prefixes.push(prefix);
  const store: LimitStore = createLimitStore(redis, {
    prefix,
    graceMs,
    dedupTtlSeconds: 3_600,
    maxDeferMinutes: 1_440,
  });
  let next = 0;
  const eventOf = (s: Send): OutboundMessage => {
    const submitter = s.submitter ?? 'alice@contoso.example';
    const recipients = [
      ...Array.from({ length: s.external ?? 1 }, (_, i) => ({
        address: `r${i}@fabrikam.example`,
        scope: 'EXTERNAL' as const,
      })),
      ...Array.from({ length: s.internal ?? 0 }, (_, i) => ({
        address: `c${i}@contoso.example`,
        scope: 'INTERNAL' as const,
      })),
    ];
    return {
      ...sampleEvent(s.id ?? `m${next++}`, 100, s.at ?? T0),
      tenantId: s.tenant ?? 'contoso',
      submitter,
      envelopeSender: submitter,
      fromHeader: s.from ?? submitter,
      recipients,
      messageClass: s.messageClass ?? 'NORMAL',
    };
  };
  const counted: {
    verdict: LimitsVerdict;
    restriction: SenderRestriction | undefined;
    duplicate: boolean;
  }[] = [];
  return {
    store,
    async batch(sends: Send[]) {
      const results = await countBatch(sends.map(eventOf), { store, policy: () => policy });
      const out = results.map((r) => ({
        verdict: r.event.limits as LimitsVerdict,
        restriction: r.restriction,
        duplicate: r.duplicate,
      }));
      counted.push(...out);
      return out;
    },
    async send(s: Send = {}) {
      return (await this.batch([s]))[0] as (typeof counted)[number];
    },
  };
}

function policyWith(limits: unknown, directory: unknown = {}): Policy {
  return compilePolicy({ version: 't', tenants: { contoso: { limits, directory } } });
}

test('limits count recipients, not messages: the recipient rate limit blocks the message that would pass 10,000 in 24 h', async () => {
  const h = harness();
  for (let i = 0; i < 20; i++)
    assert.equal(
      (await h.send({ external: 450, internal: 50, at: T0 + i * HOUR })).verdict.decision === 'BLOCK',
      false,
    );
  // 20 × 500 = 10,000 recipients in the window: one more is too many.
  const over = await h.send({ external: 1, at: T0 + 20 * HOUR });
  assert.equal(over.verdict.decision, 'BLOCK');
  assert.equal(over.verdict.limit, 'recipientRate');
  assert.equal(over.verdict.count, 10_001);
  assert.equal(over.verdict.threshold, 10_000);
  assert.equal(over.verdict.action, 'BlockUserForToday');
  assert.equal(over.verdict.smtpReply, SMTP_REPLIES.restricted);
  assert.equal(over.restriction?.sender, 'alice@contoso.example');
  assert.equal(over.restriction?.until, Date.UTC(2026, 10, 25)); // the UTC midnight after 05:00 on the 24th
});

test('the 24-hour window slides: a message leaves it exactly 24 hours after it was sent, not a millisecond before', async () => {
  const policy = policyWith({ recipientRateLimit: { recipients: 100 } });
  const h = harness(policy);
  await h.send({ external: 60, at: T0 });
  await h.send({ external: 40, at: T0 + HOUR });
  const edge = await h.send({ id: 'edge-early', external: 1, at: T0 + DAY - 1 });
  assert.equal(edge.verdict.decision, 'BLOCK', '1 ms before 24 h the first message still counts');
  const h2 = harness(policy);
  await h2.send({ external: 60, at: T0 });
  await h2.send({ external: 40, at: T0 + HOUR });
  const later = await h2.send({ external: 60, at: T0 + DAY });
  assert.notEqual(later.verdict.decision, 'BLOCK', 'at 24 h the first message has left the window');
  assert.equal(later.verdict.usage.find((u) => u.limit === 'recipientRate')?.count, 100);
});

test('message rate: the 31st message in a minute is deferred into the next minute, not rejected', async () => {
  const h = harness();
  const at = T0 + 15_000;
  const verdicts = (await h.batch(Array.from({ length: 65 }, () => ({ at })))).map((r) => r.verdict);
  assert.ok(verdicts.slice(0, 30).every((v) => v.decision !== 'THROTTLE' && v.deferUntil === null));
  assert.ok(verdicts.slice(30, 60).every((v) => v.decision === 'THROTTLE' && v.deferUntil === T0 + MINUTE));
  assert.ok(verdicts.slice(60).every((v) => v.decision === 'THROTTLE' && v.deferUntil === T0 + 2 * MINUTE));
  assert.equal(verdicts[30]?.limit, 'messageRate');
  assert.equal(verdicts[30]?.smtpReply, null);
  // The next minute already holds 30 deferred messages, so a new one then goes to the one after.
  const next = await h.send({ at: T0 + MINUTE + 1 });
  assert.equal(next.verdict.deferUntil, T0 + 2 * MINUTE);
});

test('recipients per message: 500 by default, adjustable from 1 to 1000; more rejects the message', async () => {
  const h = harness();
  assert.notEqual((await h.send({ external: 500 })).verdict.decision, 'REJECT');
  const rejected = await h.send({ external: 400, internal: 101 });
  assert.equal(rejected.verdict.decision, 'REJECT');
  assert.equal(rejected.verdict.limit, 'recipientsPerMessage');
  assert.equal(rejected.verdict.smtpReply, SMTP_REPLIES.recipientsPerMessage);
  const raised = harness(policyWith({ recipientsPerMessage: 1000 }));
  assert.notEqual((await raised.send({ external: 1000 })).verdict.decision, 'REJECT');
  assert.throws(
    () => policyWith({ recipientsPerMessage: 1001 }),
    /tenants\.contoso\.limits\.recipientsPerMessage/,
  );
});

test('tenant external recipient limit: 500 × licenses^0.7 + 9,500 per 24 h, then 550 5.7.233 for external mail only', async () => {
  const formula = DEFAULT_POLICY.defaults.limits.tenantExternalRecipients;
  assert.equal(tenantExternalLimit(1, formula), 10_000);
  assert.equal(tenantExternalLimit(100, formula), 22_059);
  assert.equal(tenantExternalLimit(1_000, formula), 72_446);
  // 5 licences: 500 × 5^0.7 + 9,500 = 11,042. Many senders, each well inside their own limits.
  const h = harness(policyWith({}, { licenses: 5 }));
  for (let i = 0; i < 36; i++)
    await h.send({ submitter: `u${i}@contoso.example`, external: 300, at: T0 + i * MINUTE });
  assert.equal(
    (await h.send({ submitter: 'u98@contoso.example', external: 242, at: T0 + HOUR })).verdict.limit,
    'tenantExternalRecipients',
  );
  const over = await h.send({ submitter: 'u99@contoso.example', external: 13, at: T0 + HOUR });
  assert.equal(over.verdict.decision, 'REJECT');
  assert.equal(over.verdict.limit, 'tenantExternalRecipients');
  assert.equal(over.verdict.count, 11_055);
  assert.equal(over.verdict.threshold, 11_042);
  assert.equal(over.verdict.smtpReply, SMTP_REPLIES.tenantExternalRecipients);
  assert.equal(over.restriction, undefined, 'the tenant limit restricts nobody');
  assert.equal(
    (await h.send({ submitter: 'u99@contoso.example', external: 1, at: T0 + HOUR })).verdict.decision,
    'REJECT',
  );
  assert.notEqual(
    (await h.send({ external: 0, internal: 5, at: T0 + HOUR })).verdict.decision,
    'REJECT',
    'internal mail still goes',
  );
  assert.notEqual(
    (await h.send({ external: 300, at: T0 + DAY })).verdict.decision,
    'REJECT',
    'the first 300 left the window',
  );
});

test('NDRs, DSNs, read receipts, automatic replies and journaling do not count toward the tenant limit', async () => {
  const h = harness(policyWith({ tenantExternalRecipients: { perLicense: 0, base: 10 } }));
  for (const messageClass of ['NDR', 'DSN', 'READ_RECEIPT', 'AUTO_REPLY', 'JOURNAL'] as const)
    assert.notEqual(
      (await h.send({ messageClass, external: 4, submitter: `${messageClass}@contoso.example` })).verdict
        .decision,
      'REJECT',
    );
  assert.notEqual(
    (await h.send({ external: 10 })).verdict.decision,
    'REJECT',
    'only ordinary mail used the 10',
  );
  assert.equal((await h.send({ external: 1 })).verdict.decision, 'REJECT');
});

test('outbound spam policy thresholds: external and internal per hour, recipients per day; 0 means the service default', async () => {
  const h = harness(
    policyWith({
      defaultPolicy: { externalPerHour: 10, internalPerHour: 20, perDay: 0 },
      serviceDefaults: { perDay: 50 },
    }),
  );
  await h.send({ submitter: 'ext@contoso.example', external: 10 });
  const ext = await h.send({ submitter: 'ext@contoso.example', external: 1, at: T0 + 59 * MINUTE });
  assert.deepEqual(
    [ext.verdict.decision, ext.verdict.limit, ext.verdict.count, ext.verdict.threshold],
    ['BLOCK', 'externalPerHour', 11, 10],
  );
  assert.equal(ext.verdict.policy, 'Default');
  const hourLater = harness(policyWith({ defaultPolicy: { externalPerHour: 10 } }));
  await hourLater.send({ external: 10 });
  assert.notEqual(
    (await hourLater.send({ external: 10, at: T0 + HOUR })).verdict.decision,
    'BLOCK',
    'the hour slid by',
  );
  await h.send({ submitter: 'int@contoso.example', external: 0, internal: 20 });
  const int = await h.send({ submitter: 'int@contoso.example', external: 0, internal: 1 });
  assert.equal(int.verdict.limit, 'internalPerHour');
  for (let i = 0; i < 5; i++)
    await h.send({ submitter: 'day@contoso.example', external: 5, internal: 5, at: T0 + i * 2 * HOUR });
  const day = await h.send({ submitter: 'day@contoso.example', external: 1, at: T0 + 11 * HOUR });
  assert.deepEqual([day.verdict.limit, day.verdict.threshold], ['recipientsPerDay', 50]);
});

test('policies match users, groups and domains (subdomains too): OR within a condition, AND across, lowest priority wins', () => {
  const policy = policyWith(
    {
      outboundSpamPolicies: [
        {
          name: 'Sales in EU',
          priority: 5,
          preset: 'strict',
          groups: ['sales@contoso.example'],
          domains: ['eu.contoso.example'],
        },
        {
          name: 'Bosses',
          priority: 1,
          externalPerHour: 50,
          users: ['ceo@contoso.example', 'cfo@contoso.example'],
        },
        { name: 'Everyone at contoso', priority: 9, preset: 'standard', domains: ['contoso.example'] },
      ],
    },
    {
      groups: {
        'sales@contoso.example': ['bob@eu.contoso.example', 'ceo@contoso.example', 'sue@us.contoso.example'],
      },
    },
  );
  const limits = policy.tenants.contoso?.limits ?? assert.fail();
  const nameFor = (from: string) => chooseOutboundSpamPolicy(from, limits).name;
  assert.equal(nameFor('cfo@contoso.example'), 'Bosses', 'one of the listed users (OR)');
  assert.equal(nameFor('ceo@contoso.example'), 'Bosses', 'priority 1 beats 5 and 9');
  assert.equal(nameFor('bob@eu.contoso.example'), 'Sales in EU', 'in the group AND in the domain');
  assert.equal(
    nameFor('sue@us.contoso.example'),
    'Everyone at contoso',
    'in the group but not the domain: falls through',
  );
  assert.equal(
    nameFor('zoe@mail.eu.contoso.example'),
    'Everyone at contoso',
    'subdomains match, but zoe is not in sales',
  );
  assert.equal(nameFor('eve@fabrikam.example'), 'Default');
  assert.deepEqual(
    { ...chooseOutboundSpamPolicy('bob@eu.contoso.example', limits) },
    { name: 'Sales in EU', action: 'BlockUserForToday', ...PRESETS.strict },
  );
  const bosses = chooseOutboundSpamPolicy('ceo@contoso.example', limits);
  assert.equal(bosses.externalPerHour, 50);
  assert.equal(bosses.perDay, DEFAULT_POLICY.defaults.limits.serviceDefaults.perDay, '0 = service default');
});

test('Send As: the From address picks the policy, the submitter is counted and restricted', async () => {
  const h = harness(
    policyWith({
      outboundSpamPolicies: [
        { name: 'CEO strict', priority: 0, externalPerHour: 5, users: ['ceo@contoso.example'] },
      ],
    }),
  );
  await h.send({ submitter: 'assistant@contoso.example', from: '"CEO" <ceo@contoso.example>', external: 5 });
  const over = await h.send({
    submitter: 'assistant@contoso.example',
    from: 'ceo@contoso.example',
    external: 1,
  });
  assert.equal(over.verdict.policy, 'CEO strict');
  assert.equal(over.verdict.decision, 'BLOCK');
  assert.equal(over.restriction?.sender, 'assistant@contoso.example');
  // The CEO's own mail is counted on the CEO, who is not restricted.
  assert.notEqual(
    (await h.send({ submitter: 'ceo@contoso.example', external: 5 })).verdict.decision,
    'BLOCK',
  );
  // The assistant is restricted whatever the From address now says.
  const blocked = await h.send({
    submitter: 'assistant@contoso.example',
    from: 'assistant@contoso.example',
    external: 1,
  });
  assert.deepEqual([blocked.verdict.decision, blocked.verdict.limit], ['BLOCK', 'restricted']);
});

test('BlockUserForToday: blocked with 550 5.1.8 until the next UTC midnight in event time, then sending again', async () => {
  const h = harness(policyWith({ defaultPolicy: { externalPerHour: 3 } }));
  const late = Date.UTC(2026, 10, 23, 23, 50);
  await h.send({ external: 3, at: late });
  assert.equal(
    (await h.send({ external: 1, at: late + 60_000 })).verdict.restrictedUntil,
    Date.UTC(2026, 10, 24),
  );
  const still = await h.send({ external: 1, at: Date.UTC(2026, 10, 24) - 1 });
  assert.deepEqual(
    [still.verdict.decision, still.verdict.limit, still.verdict.smtpReply],
    ['BLOCK', 'restricted', SMTP_REPLIES.restricted],
  );
  const morning = await h.send({ external: 1, at: Date.UTC(2026, 10, 24, 1) });
  assert.notEqual(morning.verdict.decision, 'BLOCK');
  assert.deepEqual(await h.store.restrictions(), [], 'the restriction ended with the day');
});

test('BlockUser: restricted until an admin releases the sender; the release is returned for the audit record', async () => {
  const h = harness(policyWith({ defaultPolicy: { externalPerHour: 3, action: 'BlockUser' } }));
  await h.send({ external: 3 });
  const over = await h.send({ external: 1 });
  assert.equal(over.restriction?.action, 'BlockUser');
  assert.equal(over.restriction?.until, null);
  assert.equal(
    (await h.send({ external: 1, at: T0 + 3 * DAY })).verdict.limit,
    'restricted',
    'days later, still restricted',
  );
  const [entry] = await h.store.restrictions();
  assert.deepEqual(
    [entry?.tenantId, entry?.sender, entry?.limit, entry?.count, entry?.threshold],
    ['contoso', 'alice@contoso.example', 'externalPerHour', 4, 3],
  );
  assert.equal((await h.store.release('contoso', 'Alice@Contoso.example'))?.action, 'BlockUser');
  assert.equal(await h.store.release('contoso', 'alice@contoso.example'), undefined, 'released once');
  assert.notEqual((await h.send({ external: 1, at: T0 + 3 * DAY + 1 })).verdict.decision, 'BLOCK');
});

test('Alert: the message goes on and is counted, nobody is restricted', async () => {
  const h = harness(policyWith({ defaultPolicy: { externalPerHour: 3, action: 'Alert' } }));
  await h.send({ external: 3 });
  const alert = await h.send({ external: 2 });
  assert.deepEqual(
    [alert.verdict.decision, alert.verdict.limit, alert.verdict.count, alert.verdict.action],
    ['ALERT', 'externalPerHour', 5, 'Alert'],
  );
  assert.equal(alert.restriction, undefined);
  assert.equal((await h.send({ external: 1 })).verdict.count, 6, 'the alerted message was counted');
});

test('warnings from 80 % of a limit (configurable), naming the limit nearest to its threshold', async () => {
  const h = harness(policyWith({ defaultPolicy: { externalPerHour: 10, internalPerHour: 100 } }));
  assert.equal((await h.send({ external: 7 })).verdict.decision, 'ALLOW');
  const warn = await h.send({ external: 1 });
  assert.deepEqual(
    [warn.verdict.decision, warn.verdict.limit, warn.verdict.count, warn.verdict.threshold],
    ['WARN', 'externalPerHour', 8, 10],
  );
  assert.deepEqual(warn.verdict.usage, [{ limit: 'externalPerHour', count: 8, threshold: 10 }]);
  const early = harness(policyWith({ warnAt: 0.5, defaultPolicy: { externalPerHour: 10 } }));
  assert.equal((await early.send({ external: 5 })).verdict.decision, 'WARN');
});

test('a message id counted once: a replay returns the stored verdict and changes no counter', async () => {
  const h = harness(policyWith({ defaultPolicy: { externalPerHour: 10 } }));
  const first = await h.send({ id: 'same', external: 6 });
  const again = await h.send({ id: 'same', external: 6 });
  assert.equal(again.duplicate, true);
  assert.deepEqual(again.verdict, first.verdict);
  assert.equal((await h.send({ external: 4 })).verdict.decision, 'WARN', '6 + 4 = 10: counted once');
  // A restriction is announced again on replay (its transaction may have been aborted), identically.
  const over = await h.send({ id: 'over', external: 1 });
  const replayed = await h.send({ id: 'over', external: 1 });
  assert.deepEqual(replayed.restriction, over.restriction);
});

test('late events: inside the grace they count at their own time and see what came after them; later ones count at the latest minus the grace', async () => {
  const order = harness(policyWith({ recipientRateLimit: { recipients: 100 } }), 5 * MINUTE);
  await order.send({ external: 60, at: T0 + 2 * MINUTE });
  // 2 minutes late: arriving after the 60 must not let it slip under the limit.
  assert.equal((await order.send({ external: 41, at: T0 })).verdict.decision, 'BLOCK');

  const ownTime = harness(policyWith({ recipientRateLimit: { recipients: 100 } }), 5 * MINUTE);
  await ownTime.send({ external: 70, at: T0 });
  await ownTime.send({ external: 20, at: T0 + DAY + 2 * MINUTE }); // T0 has left this one's window
  // 3 minutes late, at T0 + 24 h - 1 min: the 70 sent at T0 is still inside its 24 hours.
  const late = await ownTime.send({ external: 20, at: T0 + DAY - MINUTE });
  assert.deepEqual([late.verdict.decision, late.verdict.count], ['BLOCK', 110]);

  const clamped = harness(policyWith({ recipientRateLimit: { recipients: 20 } }), 5 * MINUTE);
  await clamped.send({ external: 10, at: T0 + 10 * MINUTE });
  // 10 minutes late, beyond the grace: counted at T0 + 5 min…
  assert.equal((await clamped.send({ external: 10, at: T0 })).verdict.decision, 'WARN');
  // …so it is still in the window of a message at T0 + 24 h + 1 min: 10 + 10 + 1.
  const next = await clamped.send({ external: 1, at: T0 + DAY + MINUTE });
  assert.deepEqual([next.verdict.decision, next.verdict.count], ['BLOCK', 21]);
});

test('one Redis round trip per batch, whatever its size', async () => {
  const h = harness();
  const before = h.store.roundTrips();
  await h.batch(
    Array.from({ length: 500 }, (_, i) => ({ submitter: `s${i % 37}@contoso.example`, at: T0 + i * 1000 })),
  );
  assert.equal(h.store.roundTrips() - before, 1);
});
