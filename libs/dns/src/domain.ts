// Addresses and domains as the services read them from an event: the bare address of a header,
// the sender domain (envelope sender, else From), and a domain normalised for DNS.
import { domainToASCII } from 'node:url';

/** The bare address of a header value such as `"Alice" <alice@contoso.com>`, lower case. */
export function addressOf(header: string): string {
  const angle = /<([^<>]*)>\s*$/.exec(header);
  return (angle?.[1] ?? header).trim().toLowerCase();
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** The domain to check, as written in the event (not yet normalised). */
export function senderDomainOf(event: {
  readonly envelopeSender: string;
  readonly fromHeader: string;
}): string {
  const address = event.envelopeSender.trim() || addressOf(event.fromHeader);
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1);
}

/** Lower case, no trailing dot, IDN as A-labels; undefined when it is no valid host name. */
export function normaliseDomain(raw: string): string | undefined {
  const trimmed = raw.trim().replace(/\.$/, '');
  if (trimmed === '' || trimmed.startsWith('[')) return undefined; // IP literals have no A or MX
  const ascii = domainToASCII(trimmed.toLowerCase());
  if (ascii === '' || ascii.length > 253) return undefined;
  const labels = ascii.split('.');
  if (
    labels.length < 2 ||
    !labels.every((l) => LABEL.test(l)) ||
    /^\d+$/.test(labels[labels.length - 1] as string)
  )
    return undefined;
  return ascii;
}
