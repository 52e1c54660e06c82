// RFC 7208 conformance: every case of the openspf.org suite gives the result it expects.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSpfSuite } from './spf-suite.ts';

test('the RFC 7208 test suite passes whole (203 cases)', { timeout: 120_000 }, async () => {
  const outcomes = await runSpfSuite();
  assert.equal(outcomes.length, 203);
  const failed = outcomes
    .filter((o) => !o.passed)
    .map((o) => `${o.name}: expected ${o.expected.join('|')}, got ${o.got}`);
  assert.deepEqual(failed, []);
});
