// Turning raw messages (.eml, mbox) into OutboundMessage events for `mailpools feed`. Only the
// few envelope headers are read here; the MIME body is left to the stages that judge it.
import { createHash } from 'node:crypto';
import { addresses, domainOf, readHeaders } from '@mailpools/client';
import { type Origin, type OutboundMessage, unenriched } from '@mailpools/schemas';

export interface EnvelopeFlags {
  tenantId: string;
  origin: Origin;
  submitter?: string;
  sender?: string;
  recipients?: string[];
  internalDomains: string[];
  clientIp: string;
  helo: string;
  eventTime?: number;
  /** How eventTime was given (`--time`, `--now`), for telling the user. */
  eventTimeFrom?: string;
  maxRawBytes: number;
}

/** Whether the message has a Date header that parses: its event time then. */
export function hasDate(raw: Buffer): boolean {
  return !Number.isNaN(Date.parse(readHeaders(raw).get('date') ?? ''));
}

export function eventFromRaw(raw: Buffer, flags: EnvelopeFlags): OutboundMessage {
  const headers = readHeaders(raw);
  const from = addresses(headers.get('from'))[0] ?? '';
  const sender = flags.sender ?? addresses(headers.get('return-path'))[0] ?? from;
  const recipients = flags.recipients ?? [...addresses(headers.get('to')), ...addresses(headers.get('cc'))];
  const messageIdHeader = headers.get('message-id')?.replace(/^<|>$/g, '');
  const date = Date.parse(headers.get('date') ?? '');
  const kept = raw.length > flags.maxRawBytes ? raw.subarray(0, flags.maxRawBytes) : raw;
  const isNdr = flags.origin === 'SYSTEM_NDR';
  return {
    messageId: messageIdHeader || createHash('sha256').update(raw).digest('hex').slice(0, 32),
    tenantId: flags.tenantId,
    eventTime: flags.eventTime ?? (Number.isNaN(date) ? Date.now() : date),
    submitter: flags.submitter ?? (isNdr ? '' : sender),
    envelopeSender: isNdr ? '' : sender,
    fromHeader: from,
    recipients: [...new Set(recipients)].map((address) => ({
      address,
      scope: flags.internalDomains.includes(domainOf(address)) ? 'INTERNAL' : 'EXTERNAL',
    })),
    clientIp: flags.clientIp,
    helo: flags.helo,
    connector: null,
    origin: flags.origin,
    messageClass: isNdr ? 'NDR' : 'NORMAL',
    dsn: null,
    raw: Buffer.from(kept),
    rawTruncated: kept.length < raw.length,
    rawSize: raw.length,
    ...unenriched(),
  };
}

/** Splits an mbox (mboxrd) file into its messages, undoing the ">From " quoting. */
export function splitMbox(mbox: Buffer): Buffer[] {
  const text = mbox.toString('latin1');
  const parts = text.split(/^From .*\r?\n/m).filter((part) => part.trim().length > 0);
  return parts.map((part) => Buffer.from(part.replace(/^>(>*From )/gm, '$1'), 'latin1'));
}

export function looksLikeMbox(content: Buffer): boolean {
  return content.subarray(0, 5).toString('latin1') === 'From ';
}
