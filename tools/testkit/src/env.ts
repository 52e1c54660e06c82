// Shared test set-up: a runtime config pointing at the stack the test runner started, with a
// fresh namespace so that every test has its own topics and consumer groups.
import { randomUUID } from 'node:crypto';
import { loadRuntimeConfig, type RuntimeConfig } from '@mailpools/core';
import { type OutboundMessage, type PoolAssignment, unenriched } from '@mailpools/schemas';

export function freshNamespace(): string {
  return `t${randomUUID().slice(0, 8)}.`;
}

export function testConfig(overrides: Record<string, string> = {}): RuntimeConfig {
  return loadRuntimeConfig({
    ...process.env,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    MAILPOOLS_HTTP_PORT: '0',
    MAILPOOLS_NAMESPACE: freshNamespace(),
    MAILPOOLS_RETRY_INITIAL_MS: '50',
    MAILPOOLS_RETRY_MAX_MS: '1000',
    ...overrides,
  });
}

/** A plausible outbound event of roughly `bodyBytes` raw bytes. */
export function sampleEvent(
  messageId: string,
  bodyBytes = 1500,
  eventTime = Date.UTC(2026, 10, 23, 9),
): OutboundMessage {
  const body = 'Hello, this is a perfectly ordinary message body. '
    .repeat(Math.ceil(bodyBytes / 50))
    .slice(0, bodyBytes);
  const raw = Buffer.from(
    `From: alice@contoso.example\r\nTo: bob@fabrikam.example\r\nSubject: Report ${messageId}\r\nMessage-ID: <${messageId}@contoso.example>\r\n\r\n${body}\r\n`,
  );
  return {
    messageId,
    tenantId: 'tenant-a',
    eventTime,
    submitter: 'alice@contoso.example',
    envelopeSender: 'alice@contoso.example',
    fromHeader: 'alice@contoso.example',
    recipients: [{ address: 'bob@fabrikam.example', scope: 'EXTERNAL' }],
    clientIp: '203.0.113.7',
    helo: 'mail.contoso.example',
    connector: null,
    origin: 'CLIENT_SUBMISSION',
    messageClass: 'NORMAL',
    dsn: null,
    raw,
    rawTruncated: false,
    rawSize: raw.length,
    ...unenriched(),
  };
}

/** A NORMAL-pool assignment answering `event`, for tests that play the pipeline's part. */
export function sampleAssignment(event: OutboundMessage, decidedAt = Date.now()): PoolAssignment {
  return {
    messageId: event.messageId,
    tenantId: event.tenantId,
    eventTime: event.eventTime,
    pool: 'NORMAL',
    poolName: 'RegularRelayOutboundPool',
    sourceIp: '198.51.100.1',
    heloName: 'out.example.net',
    reasons: ['answered by the test'],
    trace: [],
    policyVersion: 'test',
    smtpReply: null,
    notBefore: null,
    rewrittenSender: null,
    isNdr: false,
    decidedAt,
    submitter: event.submitter,
    sender: event.envelopeSender,
    fromHeader: event.fromHeader,
    recipients: event.recipients.map((r) => r.address),
    ndr: null,
  };
}
