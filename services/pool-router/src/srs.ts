// The Sender Rewriting Scheme as MISSION.md writes it. A forwarded message whose sender the
// platform vouched for leaves with an envelope sender in the forwarding domain, so the
// destination's SPF check passes for the platform and a bounce still finds its way back:
//   user+SRS=<hash>=<timestamp>=<origDomain>=<origLocalPart>@<forwardingDomain>
// or, when that local part would pass 64 characters (or for on-premises relays of a domain that
// is not accepted), bounces+SRS=<hash>=<timestamp>@<defaultAcceptedDomain>, whose original the
// router keeps in Redis for as long as the address is valid. The hash (HMAC-SHA256 with the
// policy's secret, base32) authenticates the rest, so forged bounces are refused; the timestamp
// (days, base32, modulo 1024) makes addresses expire.
import { createHmac } from 'node:crypto';
import type { ErrorCode } from '@mailpools/core';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const DAY = 86_400_000;
const MAX_LOCAL_PART = 64; // RFC 5321 4.5.3.1.1

export interface SrsSecret {
  readonly secret: string;
  readonly maxAgeDays: number;
}

function base32(bytes: Buffer, length: number): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** Days since the epoch, modulo 1024, as two base32 characters. */
export function srsTimestamp(atMs: number): string {
  const day = Math.floor(atMs / DAY) % 1024;
  return `${BASE32[day >> 5]}${BASE32[day & 31]}`;
}

function ageInDays(timestamp: string, nowMs: number): number | undefined {
  const hi = BASE32.indexOf(timestamp[0] ?? '');
  const lo = BASE32.indexOf(timestamp[1] ?? '');
  if (timestamp.length !== 2 || hi < 0 || lo < 0) return undefined;
  const today = Math.floor(nowMs / DAY) % 1024;
  return (today - ((hi << 5) | lo) + 1024) % 1024;
}

function sign(secret: string, ...parts: string[]): string {
  return base32(createHmac('sha256', secret).update(parts.join('=').toLowerCase()).digest(), 8);
}

function split(address: string): [string, string] {
  const at = address.lastIndexOf('@');
  return [address.slice(0, at), address.slice(at + 1).toLowerCase()];
}

/** Where the router keeps the originals of short-form addresses in Redis (the key follows). */
export function srsKeyPrefix(namespace: string): string {
  return `mailpools:${namespace}srs:`;
}

/** The forwarded form, or undefined when its local part would be longer than 64 characters. */
export function srsForward(
  original: string,
  user: string,
  forwardingDomain: string,
  atMs: number,
  keys: SrsSecret,
): string | undefined {
  const [local, domain] = split(original);
  const timestamp = srsTimestamp(atMs);
  const localPart = `${user}+SRS=${sign(keys.secret, timestamp, domain, local)}=${timestamp}=${domain}=${local}`;
  return localPart.length > MAX_LOCAL_PART ? undefined : `${localPart}@${forwardingDomain}`;
}

/** The short form; `key` is what the original is kept under (in Redis) for the reverse lookup. */
export function srsBounces(
  original: string,
  defaultDomain: string,
  atMs: number,
  keys: SrsSecret,
): { address: string; key: string } {
  const timestamp = srsTimestamp(atMs);
  const hash = sign(keys.secret, timestamp, original);
  return { address: `bounces+SRS=${hash}=${timestamp}@${defaultDomain}`, key: `${hash}=${timestamp}` };
}

export type SrsReversal =
  | { readonly ok: true; readonly original: string }
  | { readonly ok: false; readonly code: SrsRefusal; readonly reason: string };

/** Why an address is refused: the error codes `mailpools srs reverse` answers with. */
export type SrsRefusal = Extract<ErrorCode, `MAILPOOLS_ERR_SRS_${string}`>;

const refuse = (code: SrsRefusal, reason: string): SrsReversal => ({ ok: false, code, reason });

/**
 * Verifies an SRS address and restores the original sender. `lookup` finds the original of a
 * short (bounces) form by its key.
 */
export async function srsReverse(
  address: string,
  nowMs: number,
  keys: SrsSecret,
  lookup: (key: string) => Promise<string | undefined>,
): Promise<SrsReversal> {
  const [localPart] = split(address.trim());
  const marker = localPart.toUpperCase().indexOf('+SRS=');
  if (marker < 0) return refuse('MAILPOOLS_ERR_SRS_NOT_SRS', `${address} is not an SRS address.`);
  const fields = localPart.slice(marker + 5).split('=');
  const [hash = '', timestamp = ''] = fields;
  const age = ageInDays(timestamp.toLowerCase(), nowMs);
  if (age === undefined) return refuse('MAILPOOLS_ERR_SRS_FORGED', `${address} has no valid timestamp.`);
  let original: string;
  let expected: string;
  if (fields.length === 2) {
    const kept = await lookup(`${hash.toLowerCase()}=${timestamp.toLowerCase()}`);
    if (kept === undefined)
      return refuse(
        'MAILPOOLS_ERR_SRS_UNKNOWN',
        `${address} was not issued here, or its record has expired.`,
      );
    original = kept;
    expected = sign(keys.secret, timestamp, original);
  } else if (fields.length >= 4) {
    const domain = fields[2] ?? '';
    const local = fields.slice(3).join('=');
    original = `${local}@${domain}`;
    expected = sign(keys.secret, timestamp, domain, local);
  } else return refuse('MAILPOOLS_ERR_SRS_FORGED', `${address} is not a well-formed SRS address.`);
  if (expected !== hash.toLowerCase())
    return refuse(
      'MAILPOOLS_ERR_SRS_FORGED',
      `${address} does not carry a valid hash: it was not issued here.`,
    );
  if (age > keys.maxAgeDays)
    return refuse(
      'MAILPOOLS_ERR_SRS_EXPIRED',
      `${address} is ${age} days old; SRS addresses last ${keys.maxAgeDays}.`,
    );
  return { ok: true, original };
}
