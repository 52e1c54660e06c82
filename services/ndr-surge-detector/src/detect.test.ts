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
  type NormalProfile,
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

// The scope's day before: 200 NDRs, a third unknown users, most mail through the submission
// service, spread over its usual senders.
const NORMAL: NormalProfile = {
  total: 200,
  unknownUser: 70,
  policyReject: 25,
  unknownOriginal: 10,
  senders: { 'ann@c.test': 60, 'bob@c.test': 50, 'cy@c.test': 40, 'dee@c.test': 30, 'eve@c.test': 20 },
  sources: { submission: 150, 'connector-a': 50 },
};

for (const [cause, w, normal, why] of [
  [
    'DIRECTORY_HARVEST',
    window((w) =>
      Object.assign(w, {
        total: 100,
        unknownUser: 90,
        unknownOriginal: 95,
        distinctRecipients: 98,
        recipientDomains: new Map([
          ['contoso.test', 40],
          ['fabrikam.test', 30],
          ['litware.test', 30],
        ]),
      }),
    ),
    NORMAL,
    'unknown users at three domains',
  ],
  [
    'DIRECTORY_HARVEST',
    window((w) =>
      Object.assign(w, {
        total: 100,
        unknownUser: 88,
        distinctRecipients: 100,
        senders: new Map([['bob@c.test', 95]]),
        sources: new Map([['submission', 95]]),
      }),
    ),
    NORMAL,
    'probes the platform sent from one account',
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
    NORMAL,
    'bounces of mail the platform did not send',
  ],
  [
    'ROGUE_SERVER',
    window((w) =>
      Object.assign(w, {
        total: 100,
        unknownOriginal: 5,
        unknownUser: 35,
        sources: new Map([['onprem-7', 80]]),
      }),
    ),
    NORMAL,
    'a source the scope hardly used',
  ],
  [
    'UNKNOWN',
    window((w) =>
      Object.assign(w, {
        total: 100,
        unknownOriginal: 5,
        unknownUser: 35,
        sources: new Map([['submission', 78]]),
        senders: new Map([
          ['ann@c.test', 30],
          ['bob@c.test', 25],
          ['cy@c.test', 20],
        ]),
      }),
    ),
    NORMAL,
    'the usual source and senders, at their usual shares',
  ],
  [
    'SPAM_ATTACK',
    window((w) =>
      Object.assign(w, {
        total: 100,
        policyReject: 70,
        unknownUser: 20,
        senders: new Map([
          ['mallory@c.test', 40],
          ['eve@c.test', 30],
        ]),
        sources: new Map([['submission', 75]]),
      }),
    ),
    NORMAL,
    'rejections as spam of two senders beyond their share',
  ],
  [
    'UNKNOWN',
    window((w) => Object.assign(w, { total: 100, unknownUser: 30, sources: new Map([['onprem-7', 80]]) })),
    undefined,
    'no day before to know the usual sources by',
  ],
] as const) {
  test(`${why}: named ${cause}, with the statistic`, () => {
    const named = likelyCause(w, { expected: 20, normal });
    assert.equal(named.cause, cause, JSON.stringify(named.evidence));
    assert.equal(named.evidence.ndrs, '100');
    assert.equal(named.evidence.extraNdrs, '80');
    assert.ok(named.evidence.firstStep, 'what an operator would do first');
    assert.doesNotMatch(JSON.stringify(named.evidence), /mallory@|ann@|bob@/, 'no full address in an alert');
    if (cause === 'UNKNOWN')
      assert.match(named.evidence.missing ?? '', /no kind of bounce accounts for half/);
    else assert.ok(Number.parseInt(named.evidence.confidence ?? '0', 10) >= 50, 'a confidence of its own');
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
  const at = (day: number, hour: number) => T0 + day * 86_400_000 + hour * 3_600_000 + 30 * MINUTE;
  for (let day = 0; day < 8; day++) {
    await store.add(facts('t', T0 + day * 86_400_000 + 9 * 3_600_000, day === 2 ? 600 : 60)); // 09:00 busy, one day a surge
    await store.add(facts('t', T0 + day * 86_400_000 + 3 * 3_600_000, 6)); // 03:00 quiet
  }
  const policy = DEFAULT_POLICY.defaults.ndr;
  const nine = await baselinePerMinute(store, 't', at(8, 9), policy);
  const three = await baselinePerMinute(store, 't', at(8, 3), policy);
  assert.equal(nine.perMinute, 1, '60 an hour at nine, whatever day 2 did');
  assert.equal(three.perMinute, 0.1);
  assert.equal(nine.learning, false, 'a whole week seen');
  // Five days in, the weekly rhythm is unknown: the quiet hour is held to twice the mean so far.
  const early = await baselinePerMinute(store, 't', at(5, 3), policy);
  assert.equal(early.learning, true);
  assert.ok(early.perMinute > 0.2, `${early.perMinute}`);
  assert.equal(
    (await baselinePerMinute(store, 'new', T0, policy)).perMinute,
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
  assert.equal(
    (await baselinePerMinute(store, 't', first + 60 * MINUTE, DEFAULT_POLICY.defaults.ndr)).perMinute,
    4,
  );
});
