import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  authenticatedSender,
  dsnOf,
  eventFromSubmission,
  messageClassOf,
  quotedMessageId,
  type Submission,
  submissionId,
  withHeader,
  withoutHeaders,
} from './message.ts';
import { sentMemory } from './mta.ts';

const submission = (raw: string, overrides: Partial<Submission> = {}): Submission => ({
  tenantId: 'contoso',
  origin: 'CLIENT_SUBMISSION',
  submitter: 'Bob@Contoso.test',
  envelopeSender: 'bob@contoso.test',
  recipients: ['ann@example.com', 'Carl@contoso.test'],
  clientIp: '192.0.2.1',
  helo: 'laptop',
  raw: Buffer.from(raw),
  acceptedAt: 1_700_000_000_000,
  ...overrides,
});

const MESSAGE =
  'From: Bob <bob@contoso.test>\r\nMessage-ID: <1@contoso.test>\r\nDate: Mon, 1 Dec 2026 10:00:00 +0000\r\n\r\nHi\r\n';

test('a submission becomes an event: recipients scoped by the tenant domains, the event time is acceptance', () => {
  const event = eventFromSubmission(submission(MESSAGE), {
    internalDomains: ['contoso.test'],
    maxRawBytes: 20,
  });
  assert.deepEqual(event.recipients, [
    { address: 'ann@example.com', scope: 'EXTERNAL' },
    { address: 'carl@contoso.test', scope: 'INTERNAL' },
  ]);
  assert.equal(event.submitter, 'bob@contoso.test');
  assert.equal(event.fromHeader, 'bob@contoso.test');
  assert.equal(event.eventTime, 1_700_000_000_000);
  assert.deepEqual([event.raw.length, event.rawTruncated, event.rawSize], [20, true, MESSAGE.length]);
  assert.equal(event.messageClass, 'NORMAL');
});

test('a retry of the same message has the same id, whatever the MTA prepended; another recipient set has another', () => {
  const first = submissionId(submission(MESSAGE));
  assert.equal(submissionId(submission(`Received: from laptop by mta (id 2)\r\n${MESSAGE}`)), first);
  assert.notEqual(submissionId(submission(MESSAGE, { recipients: ['ann@example.com'] })), first);
  assert.notEqual(submissionId(submission(MESSAGE.replace('Hi', 'Ho'))), first);
  assert.match(first, /^[0-9a-f]{32}$/);
});

const BOUNCE = [
  'From: MAILER-DAEMON@mta.contoso.test',
  'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain',
  '',
  'Your message could not be delivered.',
  '--b1',
  'Content-Type: message/delivery-status',
  '',
  'Reporting-MTA: dns; mta.contoso.test',
  '',
  'Final-Recipient: rfc822; nobody@example.com',
  'Action: failed',
  'Status: 5.1.1',
  'Remote-MTA: dns; mx.example.com',
  'Diagnostic-Code: smtp; 550 5.1.1 no such user',
  '',
  '--b1',
  'Content-Type: text/rfc822-headers',
  '',
  'Return-Path: <bob@contoso.test>',
  'X-Mailpools-Message-Id: 0123456789abcdef0123456789abcdef',
  '--b1--',
  '',
].join('\r\n');

test('bounces, read receipts and automatic replies are told by their own marks; a DSN gives its status', () => {
  assert.equal(messageClassOf(Buffer.from(BOUNCE), '', 'CLIENT_SUBMISSION'), 'NDR');
  assert.equal(
    messageClassOf(Buffer.from(BOUNCE.replace('Action: failed', 'Action: delayed')), '', 'CLIENT_SUBMISSION'),
    'DSN',
  );
  assert.equal(
    messageClassOf(
      Buffer.from('Content-Type: multipart/report; report-type=disposition-notification\r\n\r\n'),
      '',
      'CLIENT_SUBMISSION',
    ),
    'READ_RECEIPT',
  );
  assert.equal(
    messageClassOf(
      Buffer.from('Auto-Submitted: auto-replied\r\n\r\nOut of office'),
      'a@b.c',
      'CLIENT_SUBMISSION',
    ),
    'AUTO_REPLY',
  );
  assert.deepEqual(dsnOf(Buffer.from(BOUNCE)), {
    action: 'failed',
    status: '5.1.1',
    diagnosticCode: 'smtp; 550 5.1.1 no such user',
    finalRecipient: 'rfc822; nobody@example.com',
    remoteMta: 'dns; mx.example.com',
    originalMessageId: '0123456789abcdef0123456789abcdef',
    originalEnvelopeSender: 'bob@contoso.test',
    originalConnector: null,
    originalClientIp: null,
  });
  assert.equal(dsnOf(Buffer.from(MESSAGE)), null);
});

test('header fields are removed with their folded lines, added on top; the authenticated sender is read from the top Received', () => {
  const raw = Buffer.from(
    'Received: from laptop (localhost [127.0.0.1])\r\n\t(Authenticated sender: Alice@Contoso.test)\r\n\tby mta with ESMTPSA\r\nX-Mailpools-Arrival: origin=forwarded;\r\n client-ip=1.2.3.4\r\nSubject: hi\r\n\r\nX-Mailpools-Arrival: stays in the body\r\n',
  );
  const cleaned = withoutHeaders(raw, ['x-mailpools-arrival']).toString();
  assert.doesNotMatch(cleaned.split('\r\n\r\n')[0] ?? '', /Arrival|client-ip/);
  assert.match(cleaned, /Subject: hi\r\n\r\nX-Mailpools-Arrival: stays in the body/);
  assert.match(withHeader(raw, 'X-Test', '1').toString(), /^X-Test: 1\r\nReceived:/);
  assert.equal(authenticatedSender(raw), 'alice@contoso.test');
  assert.equal(
    authenticatedSender(
      Buffer.from('Received: from x\r\nSubject: (Authenticated sender: eve@x.test)\r\n\r\n'),
    ),
    '',
  );
});

test("a bounce is charged to the message it returns: the MTA's memory of what it sent is found by the quoted id, and bounded", () => {
  const memory = sentMemory<string>(2);
  memory.remember('0123456789abcdef0123456789abcdef', 'contoso');
  assert.equal(quotedMessageId(BOUNCE), '0123456789abcdef0123456789abcdef');
  assert.equal(memory.ofBounce(Buffer.from(BOUNCE)), 'contoso');
  assert.equal(memory.ofBounce(Buffer.from(MESSAGE)), undefined, 'mail that quotes no id');
  memory.remember('1'.repeat(32), 'fabrikam');
  memory.remember('2'.repeat(32), 'fabrikam');
  assert.equal(memory.ofBounce(Buffer.from(BOUNCE)), undefined, 'the oldest entry went first');
});
