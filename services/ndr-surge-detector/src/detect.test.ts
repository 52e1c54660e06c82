// The detector's pieces without I/O: the Poisson tail, the cause named from a window, the baseline
// learnt per hour of day, and one surge's life (started, ended) on the in-memory store.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_POLICY } from '@mailpools/policy';
import {
  baselinePerMinute,
  emptyWindow,
  evaluate,
  likelyCause,
  type NdrFact,
  poissonTail,
} from './detect.ts';
import { MemoryNdrStore } from './stores.ts';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 1);

test('Poisson upper tail', () => {
  assert.equal(poissonTail(0, 3), 1);
  assert.ok(Math.abs(poissonTail(1, 2) - (1 - Math.exp(-2))) < 1e-12);
  assert.ok(poissonTail(20, 4) < 1e-6);
  assert.ok(poissonTail(6, 4) > 0.2);
});

const window = (fill: (w: ReturnType<typeof emptyWindow>) => void) => {
  const w = emptyWindow();
  fill(w);
  return w;
};

for (const [cause, w] of [
  [
    'DIRECTORY_HARVEST',
    window((w) =>
      Object.assign(w, {
        total: 100,
        unknownUser: 90,
        unknownOriginal: 95,
        distinctRecipients: 98,
        recipientDomains: new Map([['contoso.test', 92]]),
      }),
    ),
  ],
  [
    'SPOOFING',
    window((w) =>
      Object.assign(w, {
        total: 100,
        unknownOriginal: 85,
        unknownUser: 30,
        distinctRecipients: 100,
        recipientDomains: new Map([['a.test', 5]]),
      }),
    ),
  ],
  [
    'ROGUE_SERVER',
    window((w) => Object.assign(w, { total: 100, unknownOriginal: 5, sources: new Map([['onprem-7', 80]]) })),
  ],
  [
    'SPAM_ATTACK',
    window((w) =>
      Object.assign(w, {
        total: 100,
        policyReject: 70,
        senders: new Map([
          ['a@c.test', 40],
          ['b@c.test', 30],
        ]),
      }),
    ),
  ],
  [
    'UNKNOWN',
    window((w) =>
      Object.assign(w, { total: 100, unknownOriginal: 10, unknownUser: 30, distinctRecipients: 90 }),
    ),
  ],
] as const) {
  test(`a window like this is named ${cause}, with its evidence`, () => {
    const named = likelyCause(w);
    assert.equal(named.cause, cause);
    assert.equal(named.evidence.ndrs, '100');
  });
}

function facts(tenantId: string, at: number, n: number, known = true): NdrFact[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${tenantId}-${at}-${i}`,
    tenantId,
    at: at + i,
    status: '5.1.1',
    finalRecipient: `u${i}@x${i}.test`,
    originalKnown: known,
    originalSender: null,
    originalSource: null,
  }));
}

test('the baseline is the median of the same hour on earlier days: the daily rhythm, not one bad day', async () => {
  const store = new MemoryNdrStore();
  for (let day = 0; day < 5; day++) {
    await store.add(facts('t', T0 + day * 86_400_000 + 9 * 3_600_000, day === 2 ? 600 : 60)); // 09:00 busy, one day a surge
    await store.add(facts('t', T0 + day * 86_400_000 + 3 * 3_600_000, 6)); // 03:00 quiet
  }
  const nine = await baselinePerMinute(
    store,
    't',
    T0 + 5 * 86_400_000 + 9 * 3_600_000 + 30 * MINUTE,
    DEFAULT_POLICY.defaults.ndr,
  );
  const three = await baselinePerMinute(
    store,
    't',
    T0 + 5 * 86_400_000 + 3 * 3_600_000 + 30 * MINUTE,
    DEFAULT_POLICY.defaults.ndr,
  );
  assert.equal(nine, 1, '60 an hour at nine, whatever day 2 did');
  assert.equal(three, 0.1);
  assert.equal(
    await baselinePerMinute(store, 'new', T0, DEFAULT_POLICY.defaults.ndr),
    Number.POSITIVE_INFINITY,
    'nothing learnt: no alert',
  );
});

test('one surge, one alertId: started within two minutes, ended once quiet again', async () => {
  const store = new MemoryNdrStore();
  for (let day = 0; day < 2; day++)
    for (let h = 0; h < 24; h++) await store.add(facts('t', T0 + day * 86_400_000 + h * 3_600_000, 30));
  const start = T0 + 2 * 86_400_000 + 10 * 3_600_000;
  const phases: string[] = [];
  const ids = new Set<string>();
  for (let m = 0; m < 40; m++) {
    if (m >= 2 && m < 12) await store.add(facts('t', start + m * MINUTE, 50, false));
    const alert = await evaluate(store, 't', start + (m + 1) * MINUTE);
    if (alert) {
      phases.push(`${alert.phase}@${m}`);
      ids.add(alert.alertId);
    }
  }
  assert.equal(phases[0], 'STARTED@2', 'at the end of the first surge minute');
  assert.match(phases.at(-1) ?? '', /^ENDED@/);
  assert.equal(phases.filter((p) => p.startsWith('STARTED')).length, 1);
  assert.equal(ids.size, 1);
});

test('a surge is seen while its first minute is still under way, not when the minute completes', async () => {
  const store = new MemoryNdrStore();
  for (let day = 0; day < 2; day++)
    for (let h = 0; h < 24; h++) await store.add(facts('t', T0 + day * 86_400_000 + h * 3_600_000, 30));
  const minute = T0 + 2 * 86_400_000 + 10 * 3_600_000 + 7 * MINUTE;
  // Half a minute in: 20 bounces against half a minute's expected 0.25.
  await store.add(facts('t', minute + 5_000, 20, false));
  const alert = await evaluate(store, 't', minute + 30_000);
  assert.equal(alert?.phase, 'STARTED');
  assert.equal(alert?.eventTime, minute + 30_000);
  assert.equal(alert?.likelyCause, 'SPOOFING');
});

test('learning: the first, partly watched hour counts toward the mean so far', async () => {
  const store = new MemoryNdrStore();
  const first = T0 + 20 * MINUTE; // seen from 00:20: the first hour is two thirds watched
  for (let m = 0; m < 60; m++) await store.add(facts('t', first + m * MINUTE, 2));
  // 120 bounces in the hour since first seen: a mean of 2 a minute, so twice that while learning.
  assert.equal(await baselinePerMinute(store, 't', first + 60 * MINUTE, DEFAULT_POLICY.defaults.ndr), 4);
});
