import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressOf, normaliseDomain, senderDomainOf } from './domain.ts';

test('the envelope sender decides; the From header when the envelope sender is empty (NDRs)', () => {
  assert.equal(
    senderDomainOf({ envelopeSender: 'alice@Contoso.example', fromHeader: 'x@other.example' }),
    'Contoso.example',
  );
  assert.equal(
    senderDomainOf({ envelopeSender: '', fromHeader: 'postmaster@contoso.example' }),
    'contoso.example',
  );
  assert.equal(
    senderDomainOf({ envelopeSender: '', fromHeader: '"Post Master" <postmaster@Contoso.example>' }),
    'contoso.example',
  );
  assert.equal(senderDomainOf({ envelopeSender: '', fromHeader: '' }), '');
  assert.equal(addressOf('"The CEO" <CEO@Contoso.example>'), 'ceo@contoso.example');
});

for (const [raw, expected] of [
  ['Example.COM.', 'example.com'],
  ['  mail.example.org ', 'mail.example.org'],
  ['bücher.example', 'xn--bcher-kva.example'],
  ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
  ['a-b.example', 'a-b.example'],
] as const) {
  test(`"${raw}" normalises to ${expected}`, () => assert.equal(normaliseDomain(raw), expected));
}

for (const raw of [
  '',
  'localhost',
  '[192.0.2.1]',
  'a..example',
  '-bad.example',
  'bad-.example',
  'spaces in.example',
  'under_score.example',
  `${'a'.repeat(64)}.example`,
  '192.0.2.1',
  'example.123',
]) {
  test(`"${raw}" is not a valid sender domain`, () => assert.equal(normaliseDomain(raw), undefined));
}
