// dns-checker's logic: does the sender domain have A/AAAA and MX records? The envelope sender's
// domain, or the From header's when the envelope sender is empty (NDRs), normalised; a malformed
// one is INVALID_DOMAIN. A DNS outage is a TEMPERROR verdict, never a reputation decision.
import { type LookupResult, normaliseDomain, type Resolver, senderDomainOf } from '@mailpools/dns';
import type { DnsVerdict, OutboundMessage } from '@mailpools/schemas';

/** A verdict without records: the domain is invalid, absent, or DNS could not say for now. */
function withoutRecords(
  domain: string,
  status: DnsVerdict['status'],
  ttlSeconds = 0,
  fromCache = false,
): DnsVerdict {
  return { domain, status, hasA: false, hasAaaa: false, hasMx: false, nullMx: false, ttlSeconds, fromCache };
}

export async function checkDomain(domain: string, resolver: Resolver): Promise<DnsVerdict> {
  // allSettled: a verdict is given only once no lookup of the domain is still under way.
  const settled = await Promise.allSettled([
    resolver.lookup(domain, 'A'),
    resolver.lookup(domain, 'AAAA'),
    resolver.lookup(domain, 'MX'),
  ]);
  const failure = settled.find((r) => r.status === 'rejected');
  if (failure) {
    if ((failure.reason as { retriable?: boolean }).retriable !== true) throw failure.reason;
    return withoutRecords(domain, 'TEMPERROR');
  }
  const results = settled.map((r) => (r as PromiseFulfilledResult<LookupResult>).value) as [
    LookupResult,
    LookupResult,
    LookupResult,
  ];
  const [a, aaaa, mx] = results;
  const ttlSeconds = Math.min(a.ttl, aaaa.ttl, mx.ttl);
  const fromCache = a.fromCache && aaaa.fromCache && mx.fromCache;
  if (results.some((r) => r.status === 'NXDOMAIN')) {
    return withoutRecords(domain, 'NXDOMAIN', ttlSeconds, fromCache);
  }
  // RFC 7505: a single MX of preference 0 pointing at the root says "this domain takes no mail".
  const nullMx = mx.records.length === 1 && mx.records[0] === '0 .';
  return {
    domain,
    status: 'OK',
    hasA: a.records.length > 0,
    hasAaaa: aaaa.records.length > 0,
    hasMx: mx.records.length > 0 && !nullMx,
    nullMx,
    ttlSeconds,
    fromCache,
  };
}

export async function enrich(event: OutboundMessage, resolver: Resolver): Promise<OutboundMessage> {
  const written = senderDomainOf(event);
  const domain = normaliseDomain(written);
  const dns = domain
    ? await checkDomain(domain, resolver)
    : withoutRecords(written.slice(0, 255), 'INVALID_DOMAIN');
  return { ...event, dns };
}
