import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MailpoolsError } from '@mailpools/core';
import {
  compilePolicy,
  DEFAULT_POLICY,
  MTA_DEFAULTS,
  tenantClass,
  tenantMetricLabels,
  tenantPolicy,
} from './index.ts';

test('tenant overrides layer over the defaults, which layer over the built-in ones', () => {
  const policy = compilePolicy({
    version: 'v7',
    defaults: { spam: { spamAt: 0.8 } },
    tenants: { contoso: { spam: { suspiciousAt: 0.6 } } },
  });
  assert.deepEqual(tenantPolicy(policy, 'contoso').spam, {
    ...DEFAULT_POLICY.defaults.spam,
    suspiciousAt: 0.6,
    spamAt: 0.8,
  });
  assert.deepEqual(tenantPolicy(policy, 'fabrikam').spam, {
    ...DEFAULT_POLICY.defaults.spam,
    suspiciousAt: DEFAULT_POLICY.defaults.spam.suspiciousAt,
    spamAt: 0.8,
  });
  assert.ok(Object.isFrozen(tenantPolicy(policy, 'contoso').spam));
});

test("NDR surge thresholds: the platform's in defaults, a noisy tenant's own on top", () => {
  const policy = compilePolicy({
    version: 'v8',
    defaults: { ndr: { startProbability: 1e-5 } },
    tenants: { noisy: { ndr: { startFactor: 8, startWindowsMinutes: [2, 5] } } },
  });
  assert.equal(policy.defaults.ndr.startProbability, 1e-5);
  assert.equal(policy.defaults.ndr.startFactor, DEFAULT_POLICY.defaults.ndr.startFactor);
  assert.deepEqual(
    { ...tenantPolicy(policy, 'noisy').ndr },
    { ...DEFAULT_POLICY.defaults.ndr, startProbability: 1e-5, startFactor: 8, startWindowsMinutes: [2, 5] },
  );
});

for (const [document, path] of [
  [{ version: 'v', defaults: { spam: { spamAt: 2 } } }, 'defaults.spam.spamAt'],
  [
    { version: 'v', tenants: { t: { spam: { spamAt: 0.3, suspiciousAt: 0.4 } } } },
    'tenants.t.spam.suspiciousAt',
  ],
  [{ version: 'v', tenants: { t: { spam: { spamAtt: 0.3 } } } }, 'tenants.t.spam.spamAtt'],
  [{ defaults: {} }, 'version'],
  [{ version: 'v', surprise: 1 }, 'surprise'],
  [{ version: 'v', defaults: { ndr: { startProbability: 0 } } }, 'defaults.ndr.startProbability'],
  [
    { version: 'v', tenants: { t: { ndr: { startWindowsMinutes: [1, 0.5] } } } },
    'tenants.t.ndr.startWindowsMinutes[1]',
  ],
  [{ version: 'v', tenants: { t: { ndr: { startWindows: [1] } } } }, 'tenants.t.ndr.startWindows'],
] as const) {
  test(`an invalid policy names ${path}`, () => {
    assert.throws(
      () => compilePolicy(document, 'p.json'),
      (error: unknown) =>
        error instanceof MailpoolsError &&
        error.code === 'MAILPOOLS_ERR_POLICY_INVALID' &&
        error.message.startsWith(`p.json: ${path} `),
    );
  });
}

test('limits: presets fill an outbound spam policy, groups expand to their members, policies sort by priority', () => {
  const policy = compilePolicy({
    version: 'v',
    tenants: {
      contoso: {
        directory: { licenses: 100, groups: { 'Sales@Contoso.example': ['Bob@Contoso.example'] } },
        limits: {
          outboundSpamPolicies: [
            { name: 'b', priority: 7, preset: 'standard', perDay: 900, domains: ['contoso.example'] },
            { name: 'a', priority: 2, preset: 'strict', groups: ['sales@contoso.example'], action: 'Alert' },
          ],
        },
      },
    },
  });
  const [first, second] = tenantPolicy(policy, 'contoso').limits.outboundSpamPolicies;
  assert.equal(first?.name, 'a');
  assert.deepEqual(
    [first?.externalPerHour, first?.internalPerHour, first?.perDay, first?.action],
    [400, 800, 800, 'Alert'],
  );
  assert.ok(first?.groupMembers.has('bob@contoso.example'));
  assert.deepEqual(
    [second?.externalPerHour, second?.perDay, second?.action],
    [500, 900, 'BlockUserForToday'],
  );
  assert.equal(tenantPolicy(policy, 'contoso').directory.licenses, 100);
  assert.equal(tenantPolicy(policy, 'other').limits.recipientRateLimit.recipients, 10_000);
});

for (const [limits, path] of [
  [{ recipientsPerMessage: 0 }, 'tenants.t.limits.recipientsPerMessage'],
  [{ defaultPolicy: { externalPerHour: 10_001 } }, 'tenants.t.limits.defaultPolicy.externalPerHour'],
  [{ defaultPolicy: { action: 'Shout' } }, 'tenants.t.limits.defaultPolicy.action'],
  [{ outboundSpamPolicies: [{ name: 'x', priority: 1 }] }, 'tenants.t.limits.outboundSpamPolicies[0]'],
  [
    { outboundSpamPolicies: [{ name: 'x', priority: 1, groups: ['nope@t'] }] },
    'tenants.t.limits.outboundSpamPolicies[0].groups[0]',
  ],
  [
    { outboundSpamPolicies: [{ name: 'x', priority: 1, users: ['a@t'], preset: 'lax' }] },
    'tenants.t.limits.outboundSpamPolicies[0].preset',
  ],
  [
    {
      outboundSpamPolicies: [
        { name: 'x', priority: 1, users: ['a@t'] },
        { name: 'y', priority: 1, users: ['b@t'] },
      ],
    },
    'tenants.t.limits.outboundSpamPolicies[1]',
  ],
  [{ recipientRateLimit: { recipients: 10, per: 'day' } }, 'tenants.t.limits.recipientRateLimit.per'],
] as const) {
  test(`an invalid limits section names ${path}`, () => {
    assert.throws(
      () => compilePolicy({ version: 'v', tenants: { t: { limits } } }, 'p.json'),
      (error: unknown) => error instanceof MailpoolsError && error.message.startsWith(`p.json: ${path} `),
    );
  });
}

test('outbound spam policies belong to tenants, not to the defaults', () => {
  assert.throws(
    () => compilePolicy({ version: 'v', defaults: { limits: { outboundSpamPolicies: [] } } }, 'p.json'),
    /p\.json: defaults\.limits\.outboundSpamPolicies belongs in tenants/,
  );
});

test('metric labels name only the tenants the policy lists, and class every tenant by its licences', () => {
  const policy = compilePolicy({
    version: 'labels-1',
    defaults: { directory: { licenses: 20 } },
    tenants: { contoso: { directory: { licenses: 12_000 } }, fabrikam: { directory: { licenses: 300 } } },
  });
  assert.deepEqual(tenantMetricLabels(policy, 'contoso'), { tenant: 'contoso', tenant_class: 'large' });
  assert.deepEqual(tenantMetricLabels(policy, 'fabrikam'), { tenant: 'fabrikam', tenant_class: 'medium' });
  assert.deepEqual(tenantMetricLabels(policy, 'someone-else'), { tenant: 'other', tenant_class: 'small' });
  assert.deepEqual([299, 300, 4_999, 5_000].map(tenantClass), ['small', 'medium', 'medium', 'large']);
});

test('routing: HELO names per pool and per IP are host names; the mta section says what a late decision does', () => {
  const policy = compilePolicy({
    version: 'h1',
    defaults: {
      routing: {
        pools: { NORMAL: { helo: 'Out.Example.NET', ips: [{ ip: '192.0.2.1', helo: 'o1.example.net' }] } },
      },
    },
    tenants: { patient: { mta: { decisionTimeoutMs: 60_000, onTimeout: 'high-risk' } } },
  });
  assert.equal(policy.defaults.routing.pools.NORMAL.helo, 'out.example.net');
  assert.equal(policy.defaults.routing.pools.NORMAL.ips[0]?.helo, 'o1.example.net');
  assert.deepEqual(policy.defaults.mta, MTA_DEFAULTS);
  assert.equal(policy.tenants.patient?.mta.onTimeout, 'high-risk');
  const wrong = (document: unknown, field: RegExp) =>
    assert.throws(
      () => compilePolicy(document),
      (error: Error) => field.test(error.message),
    );
  wrong(
    { version: 'x', defaults: { routing: { pools: { RELAY: { helo: 'localhost' } } } } },
    /pools\.RELAY\.helo/,
  );
  wrong(
    {
      version: 'x',
      defaults: { routing: { pools: { RELAY: { ips: [{ ip: '192.0.2.9', helo: 'a_b.example' }] } } } },
    },
    /ips\[0\]\.helo/,
  );
  wrong(
    { version: 'x', defaults: { mta: { onTimeout: 'normal' } } },
    /mta\.onTimeout must be one of defer, high-risk/,
  );
  wrong({ version: 'x', defaults: { mta: { deferReply: '550 5.7.1 no' } } }, /mta\.deferReply/);
});
