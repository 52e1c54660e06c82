import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadRuntimeConfig } from './config.ts';
import { MailpoolsError } from './errors.ts';
import { allTopics, deadLetterTopic, STAGES, TOPICS, topicName } from './topology.ts';

test('defaults describe the local stack and the config is frozen', () => {
  const config = loadRuntimeConfig({});
  assert.deepEqual(config.kafkaBrokers, ['127.0.0.1:9092']);
  assert.equal(config.delivery, 'exactly-once');
  assert.equal(config.partitions, 6);
  assert.ok(Object.isFrozen(config));
});

for (const [name, value, field] of [
  ['MAILPOOLS_DELIVERY', 'twice', 'MAILPOOLS_DELIVERY'],
  ['MAILPOOLS_PARTITIONS', '0', 'MAILPOOLS_PARTITIONS'],
  ['KAFKA_BROKERS', 'localhost', 'KAFKA_BROKERS'],
  ['REDIS_URL', 'http://x', 'REDIS_URL'],
  ['MAILPOOLS_NAMESPACE', 'a b', 'MAILPOOLS_NAMESPACE'],
  ['LOG_LEVEL', 'loud', 'LOG_LEVEL'],
] as const) {
  test(`bad ${name}="${value}" fails at start-up naming the field`, () => {
    assert.throws(
      () => loadRuntimeConfig({ [name]: value }),
      (error: unknown) =>
        error instanceof MailpoolsError &&
        error.code === 'MAILPOOLS_ERR_CONFIG_INVALID' &&
        error.message.startsWith(field) &&
        error.hint.length > 0,
    );
  });
}

test('retry bounds that contradict each other are refused', () => {
  assert.throws(
    () => loadRuntimeConfig({ MAILPOOLS_RETRY_INITIAL_MS: '5000', MAILPOOLS_RETRY_MAX_MS: '100' }),
    /MAILPOOLS_RETRY_MAX_MS/,
  );
});

test('the stages form one chain from submitted to routed, each with a dead-letter topic', () => {
  for (const [index, stage] of STAGES.entries()) {
    if (index > 0)
      assert.ok(
        STAGES.slice(0, index).some((earlier) => earlier.outputs.includes(stage.input)),
        `${stage.service} reads what an earlier stage writes`,
      );
  }
  assert.equal(STAGES[0]?.input, 'submitted');
  const topics = allTopics('ns.', 3);
  assert.equal(new Set(topics.map((t) => t.topic)).size, topics.length);
  for (const stage of STAGES)
    assert.ok(topics.some((t) => t.topic === deadLetterTopic(topicName(stage.input, 'ns.'))));
  assert.ok(topics.find((t) => t.topic === `ns.${TOPICS.senderRestrictions}`)?.compacted);
});
