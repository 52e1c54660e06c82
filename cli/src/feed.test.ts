import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MailpoolsError } from '@mailpools/core';
import { envelopeFlags, readEvents } from './feed.ts';

const FEED = fileURLToPath(new URL('../../test/fixtures/feed/', import.meta.url));
const usage = (message: string) => new MailpoolsError('MAILPOOLS_ERR_USAGE', message);
const values = (extra: { time?: string; now?: boolean }) => ({
  tenant: 't',
  origin: 'CLIENT_SUBMISSION',
  'internal-domains': '',
  'client-ip': '127.0.0.1',
  helo: 'localhost',
  ...extra,
});

test('feed: each event says where its time came from; --time and --now apply to every input', () => {
  const plain = readEvents([FEED], envelopeFlags(values({}), 1_000_000, usage));
  const from = new Set(plain.map((r) => r.timeFrom));
  assert.ok(from.has('its Date header'), [...from].join(', '));
  assert.ok(from.has('its eventTime field'), [...from].join(', '));
  const report = plain.find((r) => r.event.messageId === 'report-1@contoso.example');
  assert.equal(report?.event.eventTime, Date.UTC(2026, 10, 23, 9));

  const at = readEvents([FEED], envelopeFlags(values({ time: '2026-10-01T09:00:00Z' }), 1_000_000, usage));
  assert.ok(at.every((r) => r.timeFrom === '--time' && r.event.eventTime === Date.UTC(2026, 9, 1, 9)));

  const before = Date.now();
  const now = readEvents([FEED], envelopeFlags(values({ now: true }), 1_000_000, usage));
  assert.ok(now.every((r) => r.timeFrom === '--now' && r.event.eventTime >= before));

  assert.throws(
    () => envelopeFlags(values({ now: true, time: '2026-10-01T09:00:00Z' }), 1_000_000, usage),
    /Give --time or --now, not both/,
  );
});
