// A message as an MTA accepted it (envelope, connection, bytes) becomes the OutboundMessage event
// the pipeline judges. Only headers and, for reports, the delivery-status part are read here; the
// MIME body is left to the stages that judge it.
import { createHash } from 'node:crypto';
import type {
  Connector,
  DsnDetails,
  MessageClass,
  Origin,
  OutboundMessage,
  RecipientScope,
} from '@mailpools/schemas';
import { unenriched } from '@mailpools/schemas';

/** The header that ties a delivered copy (and the bounces that quote it) to its event. */
export const MESSAGE_ID_HEADER = 'X-Mailpools-Message-Id';

/** Unfolded header fields of the header block, names lower-cased; the first of each wins. */
export function readHeaders(raw: Buffer): Map<string, string> {
  const text = raw.subarray(0, 256 * 1024).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  return headerFields(end === -1 ? text : text.slice(0, end));
}

function headerFields(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}

/** The addr-specs of an address-list header ("A <a@x>, b@y" → ["a@x", "b@y"]). */
export function addresses(value: string | undefined): string[] {
  if (!value) return [];
  const found = value.match(/<([^<>\s]+@[^<>\s]+)>|[^\s<>,;:"()]+@[^\s<>,;:"()]+/g) ?? [];
  return found.map((a) => a.replace(/^<|>$/g, '').toLowerCase());
}

export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

export interface Submission {
  readonly tenantId: string;
  readonly origin: Origin;
  /** The authenticated submitter (limits count against them); '' for system messages. */
  readonly submitter: string;
  /** MAIL FROM; '' for bounces. */
  readonly envelopeSender: string;
  /** RCPT TO, as given. */
  readonly recipients: readonly string[];
  /** Where the message arrived from, and what that host said in HELO. */
  readonly clientIp: string;
  readonly helo: string;
  readonly connector?: Connector | null;
  readonly raw: Buffer;
  /** When the platform accepted it: the event time every window runs on. */
  readonly acceptedAt: number;
}

export interface SubmissionContext {
  /** The tenant's accepted domains: recipients there are internal. */
  readonly internalDomains: readonly string[];
  readonly maxRawBytes: number;
}

/**
 * The message's platform-wide id: the same submission retried after a deferral gets the same
 * id (so its limits are counted once), a different message or recipient set another. Headers an
 * MTA adds on the way (Received) are left out: the id rests on the submitter's envelope, the
 * message's own Message-ID and the body's bytes.
 */
export function submissionId(submission: Submission): string {
  const headers = readHeaders(submission.raw);
  const text = submission.raw.toString('latin1');
  const bodyStart = text.search(/\r?\n\r?\n/);
  const body = bodyStart === -1 ? Buffer.alloc(0) : submission.raw.subarray(bodyStart);
  return createHash('sha256')
    .update(
      JSON.stringify([
        submission.tenantId,
        submission.submitter,
        submission.envelopeSender.toLowerCase(),
        [...submission.recipients].map((r) => r.toLowerCase()).sort(),
        headers.get('message-id') ?? '',
        headers.get('date') ?? '',
      ]),
    )
    .update(body)
    .digest('hex')
    .slice(0, 32);
}

/** NDRs, DSNs, read receipts and automatic replies by their own marks (RFC 3464, 8098, 3834). */
export function messageClassOf(raw: Buffer, envelopeSender: string, origin: Origin): MessageClass {
  const headers = readHeaders(raw);
  const type = (headers.get('content-type') ?? '').toLowerCase();
  const report = /^multipart\/report\b/.test(type)
    ? /report-type\s*=\s*"?([a-z-]+)/.exec(type)?.[1]
    : undefined;
  if (report === 'delivery-status') {
    const dsn = dsnOf(raw);
    return origin === 'SYSTEM_NDR' || !dsn || dsn.action === 'failed' ? 'NDR' : 'DSN';
  }
  if (origin === 'SYSTEM_NDR') return 'NDR';
  if (report === 'disposition-notification') return 'READ_RECEIPT';
  const autoSubmitted = (headers.get('auto-submitted') ?? 'no').toLowerCase();
  if (autoSubmitted.startsWith('auto-replied')) return 'AUTO_REPLY';
  if (envelopeSender === '' && autoSubmitted !== 'no') return 'AUTO_REPLY';
  return 'NORMAL';
}

/**
 * The first recipient's delivery status of a delivery-status report, with the bounced message's
 * id when the report quotes the header this platform stamps on what it delivers.
 */
export function dsnOf(raw: Buffer): DsnDetails | null {
  const text = raw.toString('latin1');
  const typeLine = /^content-type:\s*message\/(?:global-)?delivery-status\b/im.exec(text);
  if (!typeLine) return null;
  const afterPartHeaders = text.slice(typeLine.index).search(/\r?\n\r?\n/);
  if (afterPartHeaders === -1) return null;
  const start = typeLine.index + afterPartHeaders;
  const end = text.slice(start).search(/\r?\n--/);
  const content = text.slice(start, end === -1 ? undefined : start + end).trim();
  // Per-message fields, a blank line, then one group per recipient.
  const groups = content.split(/\r?\n\s*\r?\n/).map(headerFields);
  const perRecipient = groups.find((fields) => fields.has('final-recipient') || fields.has('status'));
  if (!perRecipient) return null;
  const originalSender = /^return-path:\s*<?([^>\s]*)>?/im.exec(text.slice(start))?.[1];
  return {
    action: (perRecipient.get('action') ?? 'failed').toLowerCase(),
    status: /\d\.\d{1,3}\.\d{1,3}/.exec(perRecipient.get('status') ?? '')?.[0] ?? '5.0.0',
    diagnosticCode: perRecipient.get('diagnostic-code') ?? null,
    finalRecipient: perRecipient.get('final-recipient') ?? perRecipient.get('original-recipient') ?? '',
    remoteMta: perRecipient.get('remote-mta') ?? null,
    originalMessageId: quotedMessageId(text),
    originalEnvelopeSender: originalSender ? originalSender : null,
    originalConnector: null,
    originalClientIp: null,
  };
}

/**
 * The mailpools message id a bounce quotes: the `X-Mailpools-Message-Id` of the message it
 * returns, found in its returned headers (null when it quotes none).
 */
export function quotedMessageId(raw: Buffer | string): string | null {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  return /^x-mailpools-message-id:\s*([0-9a-f]{32})\s*$/im.exec(text)?.[1] ?? null;
}

export function eventFromSubmission(submission: Submission, context: SubmissionContext): OutboundMessage {
  const headers = readHeaders(submission.raw);
  const raw = submission.raw;
  const kept = raw.length > context.maxRawBytes ? raw.subarray(0, context.maxRawBytes) : raw;
  const messageClass = messageClassOf(raw, submission.envelopeSender, submission.origin);
  const internal = new Set(context.internalDomains.map((d) => d.toLowerCase()));
  const scope = (address: string): RecipientScope =>
    internal.has(domainOf(address)) ? 'INTERNAL' : 'EXTERNAL';
  return {
    messageId: submissionId(submission),
    tenantId: submission.tenantId,
    eventTime: submission.acceptedAt,
    submitter: submission.submitter.toLowerCase(),
    envelopeSender: submission.envelopeSender,
    fromHeader: addresses(headers.get('from'))[0] ?? '',
    recipients: [...new Set(submission.recipients.map((r) => r.toLowerCase()))].map((address) => ({
      address,
      scope: scope(address),
    })),
    clientIp: submission.clientIp,
    helo: submission.helo,
    connector: submission.connector ?? null,
    origin: submission.origin,
    messageClass,
    dsn: messageClass === 'NDR' || messageClass === 'DSN' ? dsnOf(raw) : null,
    raw: Buffer.from(kept),
    rawTruncated: kept.length < raw.length,
    rawSize: raw.length,
    ...unenriched(),
  };
}

/** The message without the named header fields (with their folded lines), the body untouched. */
export function withoutHeaders(raw: Buffer, names: readonly string[]): Buffer {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  if (end === -1) return raw;
  const drop = new Set(names.map((n) => n.toLowerCase()));
  const kept: string[] = [];
  let dropping = false;
  for (const line of text.slice(0, end).split(/(?<=\n)/)) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    const colon = line.indexOf(':');
    dropping = colon > 0 && drop.has(line.slice(0, colon).trim().toLowerCase());
    if (!dropping) kept.push(line);
  }
  const head = kept.join('');
  return Buffer.concat([
    Buffer.from(head, 'latin1'),
    raw.subarray(Buffer.byteLength(text.slice(0, end), 'latin1')),
  ]);
}

/** The message with one header field added at the top of its header block. */
export function withHeader(raw: Buffer, name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from(`${name}: ${value}\r\n`, 'latin1'), raw]);
}

/** Who authenticated, from the Received header the MTA itself added on top ("(Authenticated sender: …)"). */
export function authenticatedSender(raw: Buffer): string {
  const text = raw.subarray(0, 8 * 1024).toString('latin1');
  const received = /^received:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)/im.exec(text)?.[1] ?? '';
  return /\(Authenticated sender:\s*([^)\s]+)\)/i.exec(received)?.[1]?.toLowerCase() ?? '';
}
