// The submitter's own pattern, on real Redis: a replayed scenario of an account with four weeks
// of ordinary mail that starts sending phishing. Its earlier mail stays HAM; the phishing turns
// SPAM within a few messages although the content model alone finds it only suspicious; a
// replay of the same messages gives the same verdicts and changes no profile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, createRedisClient } from '@mailpools/core';
import { DEFAULT_POLICY } from '@mailpools/policy';
import type { OutboundMessage } from '@mailpools/schemas';
import { freshNamespace, sampleEvent } from '@mailpools/testkit';
import {
  classify,
  classifyBatch,
  DEFAULT_EXTRACT,
  DEFAULT_MODEL_PATH,
} from '../services/spam-classifier/src/classify.ts';
import { loadModel } from '../services/spam-classifier/src/model.ts';
import { loadModernCorpus } from '../services/spam-classifier/src/modern.ts';
import { createProfileStore, spamPrefix } from '../services/spam-classifier/src/profile.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 9, 5, 8); // a Monday
const SENDER = 'pat.lindqvist@contoso.example';
const COLLEAGUES = ['ana@contoso.example', 'ben@contoso.example', 'chidi@contoso.example'];
const PARTNERS = [
  'orders@fabrikam.example',
  'kim@northwind.example',
  'lee@adatum.example',
  'accounts@tailspin.example',
];

function event(id: string, raw: Buffer, at: number, recipients: string[]): OutboundMessage {
  return {
    ...sampleEvent(id, 100, at),
    tenantId: 'contoso',
    submitter: SENDER,
    envelopeSender: SENDER,
    fromHeader: SENDER,
    recipients: recipients.map((address) => ({
      address,
      scope: address.endsWith('@contoso.example') ? ('INTERNAL' as const) : ('EXTERNAL' as const),
    })),
    raw,
    rawSize: raw.length,
  };
}

test('a compromised account: weeks of ordinary mail stay HAM, its phishing turns SPAM within a few messages', {
  timeout: 120_000,
}, async () => {
  const redis = createRedisClient(
    process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    createLogger('test', 'warn'),
    '',
  );
  await redis.connect();
  const prefix = spamPrefix(freshNamespace());
  try {
    const profiles = createProfileStore(redis, { prefix, dedupTtlSeconds: 3_600, keyTtlSeconds: 3_600 });
    const model = loadModel(DEFAULT_MODEL_PATH);
    const contentOnly = { model, policy: () => DEFAULT_POLICY, extract: DEFAULT_EXTRACT };
    const deps = { ...contentOnly, profiles };
    // Mail the model never learnt from: the holdout split.
    const modern = loadModernCorpus().filter((m) => m.split === 'holdout');

    // Pat's ordinary mail: one writer's ham (replies, notices, invoices, memos), to colleagues
    // and the same few partners, four to six a working day for four weeks.
    const ordinary = modern.filter((m) => !m.spam && m.writer === 'h1').map((m) => m.raw);
    assert.ok(ordinary.length >= 30, 'enough ordinary mail to replay');
    const history: OutboundMessage[] = [];
    for (let day = 0; day < 28; day++) {
      if (day % 7 >= 5) continue;
      for (let k = 0; k < 4 + (day % 3); k++) {
        const raw = ordinary[history.length % ordinary.length] as Buffer;
        const to = [COLLEAGUES[k % 3] as string, PARTNERS[(day + k) % 4] as string];
        history.push(event(`ordinary-${history.length}`, raw, T0 + day * DAY + (k + 1) * 5_400_000, to));
      }
    }
    const earlier = await classifyBatch(history, deps);
    const spamBefore = earlier.filter((v) => v.label === 'SPAM').length;
    assert.equal(spamBefore, 0, 'none of the earlier mail is judged SPAM');
    const hamBefore = earlier.filter((v) => v.label === 'HAM').length;
    assert.ok(
      hamBefore >= 0.95 * earlier.length,
      `the earlier mail stays HAM (${hamBefore} of ${earlier.length})`,
    );

    // Then, on a Tuesday morning, lures the content model alone finds only suspicious, each to
    // five addresses Pat never wrote to, twenty in one hour.
    const lures: Buffer[] = [];
    for (const m of modern.filter((m) => m.spam)) {
      const alone = await classify(event('probe', m.raw, T0, ['x@elsewhere.example']), contentOnly);
      if (alone.score >= 0.1 && alone.label !== 'SPAM') lures.push(m.raw);
      if (lures.length === 20) break;
    }
    assert.ok(lures.length >= 8, `enough lures the content model misses (${lures.length})`);
    const attackAt = T0 + 29 * DAY + 9 * 3_600_000;
    const attack = lures.map((raw, i) =>
      event(
        `lure-${i}`,
        raw,
        attackAt + i * 150_000,
        [1, 2, 3, 4, 5].map((k) => `target${i * 5 + k}@victims${k}.example`),
      ),
    );
    const verdicts = [];
    for (const message of attack) verdicts.push(...(await classifyBatch([message], deps)));
    const firstSpam = verdicts.findIndex((v) => v.label === 'SPAM');
    assert.ok(firstSpam !== -1 && firstSpam < 3, `SPAM by the third lure (first at ${firstSpam + 1})`);
    const caught = verdicts.filter((v) => v.label === 'SPAM').length;
    assert.ok(
      caught >= 0.75 * verdicts.length,
      `most lures are judged SPAM (${caught} of ${verdicts.length})`,
    );
    const moves = new Set(
      verdicts.flatMap((v) => v.topFeatures.map((f) => f.feature)).filter((f) => f.startsWith('profile:')),
    );
    assert.ok(moves.has('profile:first-time-recipients'), `the verdict says why: ${[...moves]}`);

    // A replay (a crash before the commit) changes nothing: the same verdicts, the same profile.
    const before = await redis.get(`${prefix}p:contoso/${SENDER}:s`);
    const replayed = await classifyBatch(attack, deps);
    assert.deepEqual(
      replayed.map((v) => [v.label, v.score]),
      verdicts.map((v) => [v.label, v.score]),
    );
    assert.equal(await redis.get(`${prefix}p:contoso/${SENDER}:s`), before);
  } finally {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
});
