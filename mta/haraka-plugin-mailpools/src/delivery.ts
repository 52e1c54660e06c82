// What the MTA does with an assignment, apart from Haraka: refuse, defer until a time, or deliver
// from a source IP with its HELO name to the recipient domain's mail exchangers.

import { isIPv4, isIPv6 } from 'node:net';
import type { LookupResult } from '@mailpools/dns';

export interface Exchange {
  readonly exchange: string;
  readonly priority: number;
}

type Lookup = (name: string, type: 'MX' | 'A' | 'AAAA') => Promise<LookupResult>;

/**
 * The addresses to deliver a domain's mail to, best first (RFC 5321 5.1): its MX hosts by
 * preference, or the domain itself when it has none; `null` when the domain takes no mail
 * (a null MX, RFC 7505, or no such domain). Only addresses of the source's family are kept.
 */
export async function mailExchangers(
  domain: string,
  lookup: Lookup,
  family: 4 | 6,
): Promise<Exchange[] | null> {
  const mx = await lookup(domain, 'MX');
  if (mx.status === 'NXDOMAIN') return null;
  let hosts: Exchange[];
  if (mx.status === 'OK' && mx.records.length > 0) {
    hosts = mx.records
      .map((record) => {
        const [preference, host] = record.split(' ');
        return { exchange: (host ?? '').replace(/\.$/, ''), priority: Number(preference) };
      })
      .sort((a, b) => a.priority - b.priority);
    if (hosts.length === 1 && (hosts[0]?.exchange === '' || hosts[0]?.exchange === '.')) return null;
  } else {
    hosts = [{ exchange: domain, priority: 0 }];
  }
  const resolved: Exchange[] = [];
  for (const host of hosts) {
    if ((family === 4 && isIPv4(host.exchange)) || (family === 6 && isIPv6(host.exchange))) {
      resolved.push(host);
      continue;
    }
    const answer = await lookup(host.exchange, family === 4 ? 'A' : 'AAAA');
    for (const ip of answer.records) resolved.push({ exchange: ip, priority: host.priority });
  }
  return resolved;
}
