// What every MTA integration does alike: which tenant, origin and submitter a connection's
// message has, and what an assignment tells the MTA to do (refuse, wait until a time, deliver
// from a source address). The MTA-specific parts (Haraka's hooks, Postfix's listeners) sit on top.
import type { Policy } from '@mailpools/policy';
import type { Connector, Origin, PoolAssignment } from '@mailpools/schemas';
import { domainOf, quotedMessageId } from './message.ts';

/** The header the platform's own forwarding hosts set on forwarded and relayed mail. */
export const ARRIVAL_HEADER = 'X-Mailpools-Arrival';

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

/** `X-Mailpools-Arrival: origin=forwarded; client-ip=203.0.113.5; helo=mx.example.org; mailbox=alice@contoso.test` */
export function parseArrival(
  value: string,
): { origin: Origin; clientIp: string; helo: string; mailbox: string } | null {
  if (!value) return null;
  const fields = new Map<string, string>();
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const origin = (fields.get('origin') ?? '').toUpperCase();
  if (origin !== 'FORWARDED' && origin !== 'RELAYED') return null;
  return {
    origin,
    clientIp: fields.get('client-ip') ?? '',
    helo: fields.get('helo') ?? '',
    mailbox: (fields.get('mailbox') ?? '').toLowerCase(),
  };
}

/** The tenant whose accepted domains include `domain` (or a parent of it), if one does. */
export function tenantOfDomain(policy: Policy, domain: string): string | undefined {
  const name = domain.toLowerCase();
  for (const [tenantId, tenant] of Object.entries(policy.tenants))
    if (
      tenant.directory.acceptedDomains.some((accepted) => name === accepted || name.endsWith(`.${accepted}`))
    )
      return tenantId;
  return undefined;
}

export interface ConnectionFacts {
  /** The connecting host's IP and HELO. */
  readonly ip: string;
  readonly helo: string;
  /** Who authenticated with SMTP AUTH ('' for nobody). */
  readonly authUser: string;
  /** MAIL FROM ('' for the null sender). */
  readonly sender: string;
  /** The X-Mailpools-Arrival header's value, if the message has one. */
  readonly arrivalHeader: string;
}

export interface TrustedHosts {
  /** On-premises connectors by the IP they connect from. */
  readonly connectors: ReadonlyMap<string, { readonly tenantId: string; readonly name: string }>;
  /** The platform's own hosts that hand over forwarded or relayed mail. */
  readonly forwarders: ReadonlySet<string>;
  /** The tenant of a sender whose domain no tenant accepts; '' refuses such mail. */
  readonly defaultTenant: string;
}

export type Identity =
  | {
      readonly ok: true;
      readonly tenantId: string;
      readonly origin: Origin;
      readonly submitter: string;
      readonly clientIp: string;
      readonly helo: string;
      readonly connector: Connector | null;
    }
  | { readonly ok: false; readonly reply: string };

/**
 * Who sent a message, as the platform knows it: the forwarding host's hand-over (believed only
 * from a forwarder's IP), an on-premises connector by its IP, or an authenticated submitter.
 */
export function identify(facts: ConnectionFacts, trusted: TrustedHosts, policy: Policy): Identity {
  const tenantOf = (address: string) =>
    tenantOfDomain(policy, domainOf(address)) ?? (trusted.defaultTenant || undefined);
  const arrival = trusted.forwarders.has(facts.ip) ? parseArrival(facts.arrivalHeader) : null;
  const connector = trusted.connectors.get(facts.ip);
  let origin: Origin;
  let submitter: string;
  let tenantId: string | undefined;
  if (arrival) {
    origin = arrival.origin;
    submitter = arrival.mailbox || facts.sender;
    tenantId = tenantOf(submitter);
  } else if (connector) {
    origin = 'ON_PREMISES_CONNECTOR';
    submitter = facts.sender;
    tenantId = connector.tenantId;
  } else if (facts.authUser) {
    origin = 'CLIENT_SUBMISSION';
    submitter = facts.authUser.includes('@') ? facts.authUser : facts.sender;
    tenantId = tenantOf(submitter);
  } else
    return {
      ok: false,
      reply: '550 5.7.1 Relaying denied: authenticate, or connect from a configured connector or forwarder',
    };
  if (!tenantId)
    return { ok: false, reply: `550 5.7.1 ${domainOf(submitter)} is an accepted domain of no tenant here` };
  return {
    ok: true,
    tenantId,
    origin,
    submitter: submitter.toLowerCase(),
    clientIp: arrival?.clientIp || facts.ip,
    helo: arrival?.helo || facts.helo,
    connector: connector ? { name: connector.name, enhancedFiltering: false, originalClientIp: null } : null,
  };
}

/**
 * What an MTA remembers of the mail it sent, by mailpools message id, so that a bounce it makes
 * later is charged to the tenant (and source) of the message it returns. Bounded: the oldest
 * entries go first.
 */
export interface SentMemory<T> {
  remember(messageId: string, facts: T): void;
  /** The facts of the message a bounce returns, when it quotes one this MTA sent. */
  ofBounce(raw: Buffer): T | undefined;
}

export function sentMemory<T>(limit = 100_000): SentMemory<T> {
  const sent = new Map<string, T>();
  return {
    remember(messageId, facts) {
      sent.set(messageId, facts);
      if (sent.size > limit) sent.delete(sent.keys().next().value as string);
    },
    ofBounce(raw) {
      const quoted = quotedMessageId(raw);
      return quoted ? sent.get(quoted) : undefined;
    },
  };
}
