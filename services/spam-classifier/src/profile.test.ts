import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ProfileEvidence, profileMoves } from './profile.ts';

const policy = { enabled: true, minHistory: 10 };
const usual: ProfileEvidence = { n: 200, tw: 60, nw: 10, tr: 2, nr: 0, hc: 1, hm: 1.2, ms: 0.03, mn: 0.2 };
const changed: ProfileEvidence = { n: 200, tw: 60, nw: 55, tr: 5, nr: 5, hc: 12, hm: 1.2, ms: 0.03, mn: 0.2 };
const weight = (moves: { weight: number }[]) => moves.reduce((sum, m) => sum + m.weight, 0);

test('no history, no say; a profile that is switched off says nothing either', () => {
  assert.deepEqual(profileMoves({ ...changed, n: 9 }, 0.4, policy), []);
  assert.deepEqual(profileMoves(changed, 0.4, { ...policy, enabled: false }), []);
});

test('a change of pattern escalates only content that is already a little suspicious', () => {
  assert.deepEqual(profileMoves(changed, 0.02, policy), [], 'clean content: a good sender on a new topic');
  const full = profileMoves(changed, 0.3, policy);
  assert.deepEqual(full.map((m) => m.feature).sort(), [
    'profile:content-unlike-history',
    'profile:first-time-recipients',
    'profile:sending-burst',
  ]);
  const partly = profileMoves(changed, 0.1, policy);
  assert.ok(weight(partly) > 0 && weight(partly) < weight(full), 'the gate ramps between 0.05 and 0.2');
});

test('one change alone is no takeover: a salesperson writing to new prospects, a person on a new topic', () => {
  assert.deepEqual(profileMoves({ ...usual, tr: 4, nr: 4 }, 0.3, policy), []);
  assert.deepEqual(profileMoves({ ...usual, nw: 58 }, 0.3, policy), []);
  const two = profileMoves({ ...usual, tr: 4, nr: 4, nw: 58 }, 0.3, policy);
  assert.deepEqual(two.map((m) => m.feature).sort(), [
    'profile:content-unlike-history',
    'profile:first-time-recipients',
  ]);
});

test('new words are measured against what is usual for the submitter', () => {
  const varied = { ...changed, hc: 1, mn: 0.75, nw: 51 }; // 85 % new words from someone at 75 % usually
  assert.ok(!profileMoves(varied, 0.3, policy).some((m) => m.feature === 'profile:content-unlike-history'));
  const steady = { ...varied, mn: 0.2 };
  assert.ok(profileMoves(steady, 0.3, policy).some((m) => m.feature === 'profile:content-unlike-history'));
});

test('an established clean sender writing as it always does is trusted a little', () => {
  assert.deepEqual(profileMoves(usual, 0.3, policy), [{ feature: 'profile:like-its-history', weight: -1 }]);
  assert.deepEqual(
    profileMoves({ ...usual, ms: 0.4 }, 0.3, policy),
    [],
    'not a sender whose mail is often suspicious',
  );
  assert.deepEqual(
    profileMoves({ ...usual, n: 15 }, 0.3, policy),
    [],
    'not before twice the minimum history',
  );
});
