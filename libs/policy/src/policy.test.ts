import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MailpoolsError } from '@mailpools/core';
import { compilePolicy, DEFAULT_POLICY, tenantPolicy } from './index.ts';

test('tenant overrides layer over the defaults, which layer over the built-in ones', () => {
  const policy = compilePolicy({
    version: 'v7',
    defaults: { spam: { spamAt: 0.8 } },
    tenants: { contoso: { spam: { suspiciousAt: 0.6 } } },
  });
  assert.deepEqual(tenantPolicy(policy, 'contoso').spam, { suspiciousAt: 0.6, spamAt: 0.8 });
  assert.deepEqual(tenantPolicy(policy, 'fabrikam').spam, {
    suspiciousAt: DEFAULT_POLICY.defaults.spam.suspiciousAt,
    spamAt: 0.8,
  });
  assert.ok(Object.isFrozen(tenantPolicy(policy, 'contoso').spam));
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
