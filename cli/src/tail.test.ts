import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PoolAssignment } from '@mailpools/schemas';
import { humanDuration, tailLine } from './tail.ts';

const assignment = {
  messageId: 'm1',
  tenantId: 'contoso',
  eventTime: Date.UTC(2026, 11, 1, 9, 30),
  decidedAt: Date.UTC(2026, 11, 1, 9, 30) + 42,
  pool: 'HIGH_RISK',
  sender: 'alice@fabrikam.example',
  fromHeader: 'alice@fabrikam.example',
  trace: [
    { rule: 'blocked', matched: false, reason: '', inputs: {} },
    { rule: 'spam', matched: true, reason: 'judged spam', inputs: {} },
  ],
} as unknown as PoolAssignment;

test('tail: one line with time, tenant, sender domain, pool, the rule that decided and the latency', () => {
  const line = tailLine(assignment, false);
  assert.match(line, /^2026-12-01 09:30:00Z +contoso +fabrikam\.example +HIGH_RISK +spam +42 ms$/);
  assert.ok(
    tailLine(assignment, true).includes(`${String.fromCharCode(27)}[33mHIGH_RISK`),
    'coloured by pool on a terminal',
  );
  assert.equal(humanDuration(3_400), '3.4 s');
  assert.equal(humanDuration(14 * 86_400_000), '14 d');
});
