// The harness runs a handler as the runtime does: a poison record is narrowed down and
// dead-lettered while the records around it flow on; an output its schema refuses is a dead letter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MailpoolsError } from '@mailpools/core';
import type { OutboundMessage } from '@mailpools/schemas';
import { createStage } from '@mailpools/stream';
import { sampleEvent } from './env.ts';
import { stageHarness } from './harness.ts';

test('a poison record is dead-lettered with its code; the rest of the batch flows on', async () => {
  const harness = await stageHarness(
    'harness-test',
    ({ config }) =>
      createStage<OutboundMessage>({
        service: 'harness-test',
        config,
        input: { topic: 'in', schema: 'OutboundMessage' },
        topics: [],
        http: false,
        // A whole-batch handler, as enrichment stages have: one bad record fails the batch.
        handle: async (records) => {
          if (records.some((r) => r.value.messageId === 'poison'))
            throw new MailpoolsError('MAILPOOLS_ERR_TEST_POISON', 'poison by design');
          return records.map((r) => [
            {
              topic: 'out',
              schema: 'OutboundMessage',
              key: r.value.messageId,
              value: r.value.messageId === 'broken' ? { ...r.value, recipients: 'nobody' } : r.value,
            },
          ]);
        },
      }),
    { connect: false },
  );
  try {
    const fed = await harness.feed([
      sampleEvent('a'),
      sampleEvent('poison'),
      sampleEvent('b'),
      sampleEvent('broken'),
    ]);
    assert.deepEqual(
      fed.outputs.map((o) => o.key),
      ['a', 'b'],
    );
    assert.deepEqual(
      fed.deadLetters.map((d) => [d.value.messageId, d.error.code]),
      [
        ['poison', 'MAILPOOLS_ERR_TEST_POISON'],
        ['broken', 'MAILPOOLS_ERR_ENCODE_FAILED'],
      ],
    );
  } finally {
    await harness.close();
  }
});
