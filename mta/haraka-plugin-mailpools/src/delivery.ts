// What the MTA does with an assignment, apart from Haraka: refuse, defer until a time, or deliver
// from a source IP with its HELO name to the recipient domain's mail exchangers.

import { isIPv4, isIPv6 } from 'node:net';
import type { LookupResult } from '@mailpools/dns';
import type { PoolAssignment } from '@mailpools/schemas';

export type Action =
  | { readonly kind: 'refuse'; readonly code: number; readonly reply: string }
  | { readonly kind: 'deliver'; readonly assignment: PoolAssignment };

/** The assignment's SMTP reply, split into its basic code and the rest ("5.1.8 Access denied…"). */
export function splitReply(reply: string): { code: number; text: string } {
  const match = /^([245]\d\d)[ -](.*)$/s.exec(reply.trim());
  if (!match) return { code: 550, text: reply.trim() };
  return { code: Number(match[1]), text: match[2] ?? '' };
}

export function actionFor(assignment: PoolAssignment): Action {
  if (assignment.pool === 'BLOCKED') {
    const { code, text } = splitReply(assignment.smtpReply ?? '550 5.7.1 Message blocked by outbound policy');
    return { kind: 'refuse', code, reply: text };
  }
  return { kind: 'deliver', assignment };
}

/** Seconds until a throttled message may leave (0: now). */
export function secondsUntil(notBefore: number | null, now: number): number {
  if (notBefore === null || notBefore <= now) return 0;
  return Math.ceil((notBefore - now) / 1000);
}

/**
 * Why this assignment cannot be delivered from the address it names, or null. A pool without
 * IPs would send from the MTA's own address — which is the normal pool's reputation — so only
 * the normal pool may go without one.
 */
export function sourceProblem(assignment: PoolAssignment): string | null {
  if (assignment.sourceIp) return null;
  if (assignment.pool === 'NORMAL') return null;
  return `the ${assignment.pool} pool (${assignment.poolName}) has no source IP in the routing policy; refusing to send it from the MTA's own address`;
}

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
