import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { MailpoolsError } from '@mailpools/core';
import { generateTypes } from './generate.ts';
import { fromJsonForm, type OutboundMessage, toJsonForm } from './index.ts';

test('generated.ts is up to date with schemas/*.avsc (run npm run schemas:generate)', () => {
  const committed = readFileSync(new URL('./generated.ts', import.meta.url), 'utf8');
  assert.equal(committed, generateTypes());
});

const minimal = {
  messageId: 'm-1',
  tenantId: 'tenant-a',
  eventTime: '2026-11-23T08:00:00.000Z',
  submitter: 'alice@contoso.example',
  envelopeSender: 'alice@contoso.example',
  fromHeader: 'alice@contoso.example',
  recipients: [{ address: 'bob@fabrikam.example', scope: 'EXTERNAL' }],
  clientIp: '203.0.113.7',
  helo: 'mail.contoso.example',
  origin: 'CLIENT_SUBMISSION',
  raw: 'Subject: hi\r\n\r\nhello\r\n',
  rawSize: 22,
};

test('the JSON form fills defaults, turns ISO times into epoch ms and text into bytes', () => {
  const event = fromJsonForm<OutboundMessage>('OutboundMessage', minimal);
  assert.equal(event.eventTime, Date.UTC(2026, 10, 23, 8));
  assert.ok(Buffer.isBuffer(event.raw));
  assert.equal(event.messageClass, 'NORMAL');
  assert.equal(event.spam, null);
  assert.deepEqual(event.hops, []);
  const json = toJsonForm('OutboundMessage', event) as Record<string, unknown>;
  assert.equal(json.eventTime, '2026-11-23T08:00:00.000Z');
  assert.equal(json.raw, minimal.raw);
  assert.deepEqual(fromJsonForm('OutboundMessage', json), event, 'round trip');
});

test('bytes that are not UTF-8 travel as base64', () => {
  const event = fromJsonForm<OutboundMessage>('OutboundMessage', {
    ...minimal,
    raw: { base64: Buffer.from([0xff, 0xfe, 0x41]).toString('base64') },
  });
  assert.deepEqual([...event.raw], [0xff, 0xfe, 0x41]);
  assert.deepEqual((toJsonForm('OutboundMessage', event) as { raw: unknown }).raw, { base64: '//5B' });
});

test('a wrong JSON form names every field that is wrong', () => {
  const { tenantId: _t, ...noTenant } = minimal;
  assert.throws(
    () => fromJsonForm('OutboundMessage', { ...noTenant, origin: 'CARRIER_PIGEON' }),
    (error: unknown) =>
      error instanceof MailpoolsError &&
      error.code === 'MAILPOOLS_ERR_INVALID_RECORD' &&
      /tenantId/.test(error.message) &&
      /origin/.test(error.message),
  );
  assert.throws(
    () => fromJsonForm('OutboundMessage', { ...minimal, eventTime: 'yesterday' }),
    /eventTime must be an ISO-8601 time/,
  );
});
