import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Admin } from 'kafkajs';
import { committedOffset, isFenced, isRetriable } from './kafka.ts';

/** Errors shaped as kafkajs throws them (its error classes are not all exported). */
const kafkajsError = (name: string, message: string, extra: { type?: string; retriable: boolean }) =>
  Object.assign(new Error(message), { name, ...extra });
const protocolError = (type: string) =>
  kafkajsError('KafkaJSProtocolError', type, { type, retriable: false });

test('a group that moves on under a batch is transient: the batch is redone after the rejoin', () => {
  for (const type of ['REBALANCE_IN_PROGRESS', 'UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION'])
    assert.ok(isRetriable(protocolError(type)), type);
  assert.ok(
    isRetriable(
      kafkajsError('KafkaJSGroupCoordinatorNotFound', 'Failed to find group coordinator', {
        retriable: false,
      }),
    ),
  );
  assert.ok(isRetriable(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })));
  assert.ok(!isRetriable(protocolError('MESSAGE_TOO_LARGE')), 'a record the broker refuses is not');
  assert.ok(!isRetriable(new Error('a bug')));
  assert.ok(isFenced(protocolError('PRODUCER_FENCED')));
});

test('a stable offset read waits out a coordinator that is loading or an open transaction, and fails on anything else', async () => {
  const answers: (Error | number)[] = [
    protocolErrorRetriable('NOT_COORDINATOR_FOR_GROUP'),
    protocolErrorRetriable('UNSTABLE_OFFSET_COMMIT'),
    42,
  ];
  const admin = {
    async fetchOffsets() {
      const next = answers.shift();
      if (next instanceof Error) throw next;
      return [{ topic: 't', partitions: [{ partition: 0, offset: String(next), metadata: null }] }];
    },
  } as unknown as Admin;
  assert.equal(await committedOffset(admin, 'g', 't', 0), 42);
  assert.equal(answers.length, 0, 'asked until the answer was stable');
  const failing = {
    async fetchOffsets() {
      throw protocolError('GROUP_AUTHORIZATION_FAILED');
    },
  } as unknown as Admin;
  await assert.rejects(committedOffset(failing, 'g', 't', 0), /GROUP_AUTHORIZATION_FAILED/);
});

const protocolErrorRetriable = (type: string) =>
  kafkajsError('KafkaJSProtocolError', type, { type, retriable: true });
