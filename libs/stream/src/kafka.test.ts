import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFenced, isRetriable } from './kafka.ts';

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
