import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compilePolicy } from '@mailpools/policy';
import { typeOf } from '@mailpools/schemas';
import { sampleEvent } from '@mailpools/testkit';
import PostalMime from 'postal-mime';
import { classify, labelOf } from './classify.ts';
import { extractFeatures } from './features.ts';
import { quality, rocAuc } from './metrics.ts';
import { explain, loadModel, saveModel, score, train, vectorise } from './model.ts';

const multipart = Buffer.from(
  [
    'From: "Deals Team" <deals@promo.example>',
    'Reply-To: claims@elsewhere.example',
    'To: undisclosed-recipients:;',
    'Subject: WIN A FREE PRIZE NOW!!!',
    'X-Mailer: MassMailer 2.0',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: multipart/alternative; boundary="b2"',
    '',
    '--b2',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Click http://cheap.pills.example/buy now to claim your prize',
    '--b2',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<html><body><font color=red>Click</font> <a href="http://cheap.pills.example/buy">here</a><img src="x.gif"></body></html>',
    '--b2--',
    '--b1',
    'Content-Type: application/zip; name="invoice.zip"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="invoice.zip"',
    '',
    'UEsDBAoAAAAAAA==',
    '--b1--',
    '',
  ].join('\r\n'),
);
const blastSignals = {
  recipients: 250,
  externalRecipients: 250,
  recipientAddresses: ['victim@target.example'],
};
const limits = { maxBytes: 64 * 1024, timeoutMs: 1_000 };

test('features come from the decoded MIME parts, headers, links, attachments and the envelope', async () => {
  const { counts, truncated, parseFailed } = await extractFeatures(multipart, blastSignals, limits);
  for (const name of [
    's:win',
    's:prize',
    'subj:excl',
    'subj:caps',
    'w:click',
    'b:claim_prize',
    'url:http',
    'url:only-elsewhere',
    'html:img:le1',
    'att:archive',
    'replyto:differs',
    'bcc-only',
    'rcpt:gt100',
  ]) {
    assert.ok(counts.has(name), `has ${name}`);
  }
  assert.equal(truncated, false);
  assert.equal(parseFailed, false);
});

test('what only tells 2002 mailing lists from 2002 spam is not a feature', async () => {
  const { counts } = await extractFeatures(multipart, blastSignals, limits);
  const names = [...counts.keys()];
  for (const artefact of [
    /^mailer:/,
    /^ct:/,
    /^charset:/,
    /^fromname:deals/,
    /^from:promo/,
    /^url:pills/,
    /^size:/,
    /^words:/,
    /NUM/,
  ])
    assert.ok(!names.some((n) => artefact.test(n)), `no ${artefact}`);
});

async function featuresOf(headers: string[], body: string, html?: string) {
  const parts = html
    ? [...headers, 'MIME-Version: 1.0', 'Content-Type: text/html; charset=utf-8', '', html]
    : [...headers, 'Content-Type: text/plain; charset=utf-8', '', body];
  return (
    await extractFeatures(
      Buffer.from(parts.join('\r\n')),
      { recipients: 1, externalRecipients: 1, recipientAddresses: ['a@b.example'] },
      limits,
    )
  ).counts;
}

test('link facts: look-alike brands, link text naming another host, shorteners, IP literals, login paths', async () => {
  const from = ['From: IT <it@contoso.example>', 'To: a@b.example', 'Subject: mailbox'];
  const lookalike = await featuresOf(
    from,
    '',
    '<p>Sign in</p><a href="https://micros0ft-365.support-desk.top/login">https://login.microsoftonline.com</a>',
  );
  for (const name of [
    'url:brand-lookalike',
    'url:text-names-other-host',
    'url:login-path-elsewhere',
    'url:only-elsewhere',
  ])
    assert.ok(lookalike.has(name), `look-alike: ${name}`);
  const genuine = await featuresOf(
    from,
    '',
    '<a href="https://portal.contoso.example/reset?token=1">portal.contoso.example</a>',
  );
  assert.ok(genuine.has('url:own-domain') && genuine.has('url:login-path-own'));
  assert.ok(!genuine.has('url:text-names-other-host') && !genuine.has('url:brand-lookalike'));
  const hidden = await featuresOf(from, 'see http://bit.ly/3xYz and http://198.51.100.7/a.zip');
  assert.ok(hidden.has('url:shortener') && hidden.has('url:ip'));
  const tracked = await featuresOf(
    from,
    '',
    '<a href="https://contoso.list-manage.com/track/click?u=1">www.contoso-shop.example</a>',
  );
  assert.ok(
    tracked.has('url:tracked') && !tracked.has('url:text-names-other-host'),
    'click tracking is no deceit',
  );
});

test('requests map to one concept across languages; quoted history does not speak for the sender', async () => {
  const head = ['From: Anna <anna@fabrikam.example>', 'To: b@contoso.example'];
  const german = await featuresOf(
    [...head, 'Subject: Bankverbindung'],
    'Bitte beachten Sie unsere neue Bankverbindung, die Überweisung bitte umgehend.',
  );
  assert.ok(german.has('lex:payment-change') && german.has('lex:urgency'));
  const japanese = await featuresOf(
    [...head, 'Subject: 確認'],
    'パスワードの有効期限が切れます。至急ログインしてください。',
  );
  assert.ok(japanese.has('lex:credential') && japanese.has('lex:urgency'));
  const reply = await featuresOf(
    [...head, 'Subject: Re: invoice', 'In-Reply-To: <x@contoso.example>'],
    [
      'Thanks, the figures look right to me and I have no further questions on them.',
      '',
      'On Mon, 3 Mar 2025 at 10:00, Bob <b@contoso.example> wrote:',
      '> Please update the bank details and wire the payment urgently.',
    ].join('\r\n'),
  );
  assert.ok(reply.has('subj:reply') && reply.has('quoted:le0.8'));
  assert.ok(
    !reply.has('lex:payment-change') && !reply.has('w:wire'),
    "the quoted request is not the sender's",
  );
});

test('only the first maxBytes are read, and the features say the message was truncated', async () => {
  const huge = Buffer.concat([
    Buffer.from('Subject: long\r\n\r\n'),
    Buffer.alloc(2_000_000, 'lorem ipsum dolor '),
  ]);
  const started = performance.now();
  const features = await extractFeatures(huge, blastSignals, { maxBytes: 16 * 1024, timeoutMs: 1_000 });
  assert.ok(features.truncated);
  assert.ok(features.counts.has('truncated'));
  assert.ok(performance.now() - started < 500, 'bounded work');
});

test('MIME nested deeper than the parser allows is judged as text and flagged, not a crash', async () => {
  let deep = 'Subject: deep\r\n';
  for (let i = 0; i < 80; i++) deep += `Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n`;
  deep += 'Content-Type: text/plain\r\n\r\nbuy cheap pills\r\n';
  const features = await extractFeatures(Buffer.from(deep), blastSignals, limits);
  assert.ok(features.parseFailed || features.counts.has('w:cheap'));
});

function syntheticExamples(n: number) {
  const examples = [];
  for (let i = 0; i < n; i++) {
    const spam = i % 3 === 0;
    const counts = new Map<string, number>([
      [spam ? 'w:viagra' : 'w:meeting', 1 + (i % 4)],
      [spam ? 'w:winner' : 'w:agenda', 1],
      [`w:noise${i % 7}`, 1],
      ['w:the', 3],
    ]);
    examples.push({ x: vectorise(counts), spam });
  }
  return examples;
}

test('the model learns, explains itself, and trains the same model twice from the same seed', () => {
  const options = {
    epochs: 5,
    learningRate: 0.5,
    l2: 1e-6,
    seed: 7,
    nbAlpha: 0.1,
    stackFolds: 3,
    minDocs: 1,
    targetFpr: 0.05,
  };
  const model = train(syntheticExamples(90), options);
  const spam = vectorise(
    new Map([
      ['w:viagra', 2],
      ['w:winner', 1],
      ['w:the', 1],
    ]),
  );
  const ham = vectorise(
    new Map([
      ['w:meeting', 2],
      ['w:agenda', 1],
      ['w:the', 1],
    ]),
  );
  assert.ok(score(model, spam) > 0.9, 'spam scores high');
  assert.ok(score(model, ham) < 0.1, 'ham scores low');
  assert.equal(explain(model, spam)[0]?.feature.startsWith('w:'), true);
  assert.ok((explain(model, spam)[0]?.weight ?? 0) > 0, 'the top feature of a spam pushes towards spam');
  assert.equal(train(syntheticExamples(90), options).version, model.version, 'deterministic');
  const path = join(mkdtempSync(join(tmpdir(), 'model-')), 'm.bin');
  saveModel(model, path);
  const loaded = loadModel(path);
  assert.equal(loaded.version, model.version);
  assert.equal(score(loaded, spam), score(model, spam), 'the artefact scores exactly like the model');
});

test('the label follows the tenant policy thresholds', async () => {
  const policy = compilePolicy({
    version: 'test',
    tenants: { strict: { spam: { suspiciousAt: 0.01, spamAt: 0.02 } } },
  });
  assert.equal(labelOf(0.3, { suspiciousAt: 0.2, spamAt: 0.5 }), 'SUSPICIOUS');
  assert.equal(labelOf(0.5, { suspiciousAt: 0.2, spamAt: 0.5 }), 'SPAM');
  assert.equal(labelOf(0.1, { suspiciousAt: 0.2, spamAt: 0.5 }), 'HAM');
  const model = loadModel(new URL('../model/spam-model.bin', import.meta.url).pathname);
  const deps = { model, policy: () => policy, extract: limits };
  const event = { ...sampleEvent('m-1'), raw: multipart };
  const relaxed = await classify({ ...event, tenantId: 'other' }, deps);
  const strict = await classify({ ...event, tenantId: 'strict' }, deps);
  assert.equal(strict.score, relaxed.score);
  if (strict.score >= 0.02) assert.equal(strict.label, 'SPAM');
  assert.equal(strict.modelVersion, model.version);
  assert.equal(strict.topFeatures.length, 5);
  assert.ok(typeOf('OutboundMessage').isValid({ ...event, spam: strict }), 'the verdict fits the schema');
});

test('quality figures: precision, recall, F1, false-positive rate and ROC AUC', () => {
  const results = [
    { spam: true, score: 0.9, predicted: true },
    { spam: true, score: 0.4, predicted: false },
    { spam: false, score: 0.6, predicted: true },
    { spam: false, score: 0.1, predicted: false },
  ];
  const q = quality(results);
  assert.equal(q.precision, 0.5);
  assert.equal(q.recall, 0.5);
  assert.equal(q.f1, 0.5);
  assert.equal(q.fpr, 0.5);
  assert.equal(q.rocAuc, 0.75);
  assert.equal(
    rocAuc([
      { spam: true, score: 1 },
      { spam: false, score: 1 },
    ]),
    0.5,
    'ties count half',
  );
});

test('postal-mime, with the project patch (patches/): parts decode byte for byte, joined without a Blob round trip', async () => {
  const patched = readFileSync(
    join(dirname(fileURLToPath(import.meta.resolve('postal-mime'))), 'pass-through-decoder.js'),
    'utf8',
  );
  assert.match(patched, /chunksToArrayBuffer/, 'npm ci applied patches/postal-mime+4.0.0.patch');
  const zip = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0xff, 0x10, 0x0a, 0x0d]);
  const message = [
    'From: a@example.com',
    'Subject: parts',
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'caf=C3=A9 cr=C3=A8me, a soft=',
    ' break',
    '--b',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from('<p>naïve résumé</p>').toString('base64'),
    '--b',
    'Content-Type: application/zip; name="a.zip"',
    'Content-Transfer-Encoding: base64',
    '',
    zip.toString('base64'),
    '--b--',
    '',
  ].join('\r\n');
  const parsed = await PostalMime.parse(message, { attachmentEncoding: 'arraybuffer' });
  assert.match(parsed.text ?? '', /^café crème, a soft break\n/);
  assert.match(parsed.html ?? '', /\n<p>naïve résumé<\/p>$/);
  assert.deepEqual(Buffer.from(parsed.attachments[0]?.content as ArrayBuffer), zip);
});
