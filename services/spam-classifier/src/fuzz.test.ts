// Malformed MIME must never crash or hang the classifier: seeded mutations of corpus messages
// and hand-made pathological shapes, each must give a verdict that fits the schema, in bounded time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '@mailpools/core';
import { DEFAULT_POLICY } from '@mailpools/policy';
import { typeOf } from '@mailpools/schemas';
import { sampleEvent } from '@mailpools/testkit';
import { classify, DEFAULT_EXTRACT, DEFAULT_MODEL_PATH } from './classify.ts';
import { loadCorpus } from './corpus.ts';
import { loadModel } from './model.ts';

const deps = { model: loadModel(DEFAULT_MODEL_PATH), policy: () => DEFAULT_POLICY, extract: DEFAULT_EXTRACT };
const verdictType = typeOf('OutboundMessage');

function pathological(): Buffer[] {
  const deepMultipart = (depth: number) => {
    let text = 'Subject: deep\r\n';
    for (let i = 0; i < depth; i++)
      text += `Content-Type: multipart/mixed; boundary="d${i}"\r\n\r\n--d${i}\r\n`;
    return Buffer.from(`${text}Content-Type: text/plain\r\n\r\nhello\r\n`);
  };
  return [
    Buffer.alloc(0),
    Buffer.from('\r\n\r\n\r\n'),
    Buffer.from('Subject: no body'),
    deepMultipart(300),
    deepMultipart(5_000),
    Buffer.concat([Buffer.from('Subject: long line\r\n\r\n'), Buffer.alloc(3_000_000, 'x')]),
    Buffer.concat([Buffer.from('Subject: '), Buffer.alloc(500_000, 'h'), Buffer.from('\r\n\r\nbody')]),
    Buffer.from(
      `Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Transfer-Encoding: base64\r\n\r\n${'QUJD'.repeat(400_000)}\r\n--x--`,
    ),
    Buffer.from('Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n--\r\n----\r\n'),
    Buffer.from(
      'Content-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=4',
    ),
    Buffer.from([0xff, 0xfe, 0x00, 0x00, 0x0d, 0x0a, 0x0d, 0x0a, 0xc3, 0x28, 0xa0, 0xa1]),
    Buffer.from('From: =?utf-8?B?////?= <\u0000@\u0000>\r\nSubject: =?x?Q?=FF?=\r\n\r\n'),
    Buffer.from(
      `Content-Type: message/rfc822\r\n\r\n${'Content-Type: message/rfc822\r\n\r\n'.repeat(2_000)}end`,
    ),
  ];
}

function mutate(raw: Buffer, random: () => number): Buffer {
  const bytes = Buffer.from(raw);
  switch (Math.floor(random() * 5)) {
    case 0: // flip bytes
      for (let i = 0; i < 20; i++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      return bytes;
    case 1: // cut anywhere
      return bytes.subarray(0, Math.floor(random() * bytes.length));
    case 2: // drop the line breaks of the header block
      return Buffer.from(bytes.toString('latin1').replace(/\r?\n/, ''), 'latin1');
    case 3: // break every boundary
      return Buffer.from(
        bytes.toString('latin1').replace(/boundary="?([^";\r\n]+)/gi, 'boundary="$1-broken'),
        'latin1',
      );
    default: // repeat a random slice many times
      return Buffer.concat([
        bytes,
        ...Array.from({ length: 50 }, () => bytes.subarray(0, Math.floor(random() * 200))),
      ]);
  }
}

test('malformed MIME gives a verdict in bounded time, never a crash or a hang', {
  timeout: 120_000,
}, async () => {
  const random = seededRandom(42);
  const corpus = loadCorpus();
  const inputs = [...pathological()];
  for (let i = 0; i < 400; i++)
    inputs.push(mutate((corpus[Math.floor(random() * corpus.length)] as { raw: Buffer }).raw, random));
  let slowest = 0;
  for (const [i, raw] of inputs.entries()) {
    const started = performance.now();
    const verdict = await classify({ ...sampleEvent(`fuzz-${i}`), raw, rawSize: raw.length }, deps);
    slowest = Math.max(slowest, performance.now() - started);
    assert.ok(verdict.score >= 0 && verdict.score <= 1, `input ${i}: a score in [0, 1]`);
    assert.ok(
      verdictType.isValid({ ...sampleEvent(`fuzz-${i}`), spam: verdict }),
      `input ${i}: the verdict fits the schema`,
    );
  }
  assert.ok(slowest < 1_000, `the slowest input took ${slowest.toFixed(0)} ms`);
});
