// pool-router's logic: the enrichments of one message, under its tenant's policy, become the pool
// it leaves through. Rules are tried in the policy's order and the first that matches decides;
// every rule tried is in the trace with the inputs it saw. A vouched-for forwarded message is
// SRS-rewritten; a throttled one carries its not-before time.
import { addressOf } from '@mailpools/dns';
import {
  chooseSourceIp,
  type Policy,
  type PoolKey,
  type RoutingRule,
  type TenantPolicy,
  tenantPolicy,
} from '@mailpools/policy';
import {
  isRelayedOrigin,
  type OutboundMessage,
  type Pool,
  type PoolAssignment,
  type RuleEvaluation,
} from '@mailpools/schemas';
import { srsBounces, srsForward } from './srs.ts';

interface RuleOutcome {
  readonly matched: boolean;
  readonly pool?: Pool;
  readonly reason?: string;
  readonly smtpReply?: string | null;
  readonly inputs: Record<string, string>;
}

type Rule = (event: OutboundMessage, tenant: TenantPolicy) => RuleOutcome;

const missing = (tenant: TenantPolicy, enrichment: string): RuleOutcome => {
  const penalise = tenant.routing.onMissingEnrichment === 'high-risk';
  return {
    matched: penalise,
    pool: 'HIGH_RISK',
    reason: `the ${enrichment} enrichment is missing (policy: onMissingEnrichment=high-risk)`,
    inputs: { [enrichment]: 'missing', onMissingEnrichment: tenant.routing.onMissingEnrichment },
  };
};

const RULES: Readonly<Record<RoutingRule, Rule>> = {
  blocked: (event, tenant) => {
    const limits = event.limits;
    if (!limits) return missing(tenant, 'limits');
    const inputs = {
      decision: limits.decision,
      limit: limits.limit ?? '',
      count: String(limits.count),
      threshold: String(limits.threshold),
      restricted: String(limits.restricted),
      overLimit: tenant.routing.overLimit,
    };
    if (limits.decision !== 'BLOCK' && limits.decision !== 'REJECT') return { matched: false, inputs };
    const why = limits.restricted
      ? `the submitter is restricted (${limits.action ?? 'restriction'} after ${limits.limit === 'restricted' ? 'an earlier limit' : limits.limit})`
      : `over the ${limits.limit} limit (${limits.count} > ${limits.threshold})`;
    // The older behaviour sent over-limit mail through the high-risk pool; a restricted sender and
    // a message rejected outright are never sent.
    if (tenant.routing.overLimit === 'high-risk' && limits.decision === 'BLOCK' && !limits.restricted)
      return {
        matched: true,
        pool: 'HIGH_RISK',
        reason: `${why}; the tenant sends over-limit mail high-risk`,
        inputs,
      };
    return { matched: true, pool: 'BLOCKED', reason: why, smtpReply: limits.smtpReply, inputs };
  },

  ndr: (event) => {
    const failedDsn = event.messageClass === 'DSN' && event.dsn?.action === 'failed';
    const matched = event.messageClass === 'NDR' || event.origin === 'SYSTEM_NDR' || failedDsn;
    return {
      matched,
      pool: 'HIGH_RISK',
      reason: 'a non-delivery report: every NDR leaves through the high-risk pool',
      inputs: { messageClass: event.messageClass, origin: event.origin, dsnStatus: event.dsn?.status ?? '' },
    };
  },

  'no-a-no-mx': (event, tenant) => {
    const dns = event.dns;
    if (!dns) return missing(tenant, 'dns');
    const inputs = {
      domain: dns.domain,
      status: dns.status,
      hasA: String(dns.hasA),
      hasAaaa: String(dns.hasAaaa),
      hasMx: String(dns.hasMx),
      nullMx: String(dns.nullMx),
      onDnsTempError: tenant.routing.onDnsTempError,
    };
    if (dns.status === 'TEMPERROR')
      return {
        matched: tenant.routing.onDnsTempError === 'high-risk',
        pool: 'HIGH_RISK',
        reason: `DNS could not answer for ${dns.domain} (policy: onDnsTempError=high-risk)`,
        inputs,
      };
    const noRecords = dns.status !== 'OK' || (!dns.hasA && !dns.hasAaaa && !dns.hasMx);
    return {
      matched: noRecords,
      pool: 'HIGH_RISK',
      reason: `the sender domain ${dns.domain} has neither an A nor an MX record (${dns.status}${dns.nullMx ? ', null MX' : ''})`,
      inputs,
    };
  },

  spam: (event, tenant) => {
    const spam = event.spam;
    if (!spam) return missing(tenant, 'spam');
    // SUSPICIOUS changes nothing unless the tenant's policy sends it to high-risk too.
    const suspicious = spam.label === 'SUSPICIOUS' && tenant.spam.onSuspicious === 'high-risk';
    return {
      matched: spam.label === 'SPAM' || suspicious,
      pool: 'HIGH_RISK',
      reason: suspicious
        ? `judged suspicious (score ${spam.score.toFixed(3)} ≥ ${tenant.spam.suspiciousAt}, model ${spam.modelVersion}; policy: onSuspicious=high-risk)`
        : `judged spam (score ${spam.score.toFixed(3)} ≥ ${tenant.spam.spamAt}, model ${spam.modelVersion})`,
      inputs: {
        label: spam.label,
        score: spam.score.toFixed(4),
        spamAt: String(tenant.spam.spamAt),
        onSuspicious: tenant.spam.onSuspicious,
        model: spam.modelVersion,
      },
    };
  },

  'unvouched-relay': (event, tenant) => {
    const relayed = isRelayedOrigin(event.origin);
    const auth = event.auth;
    if (relayed && !auth) return missing(tenant, 'auth');
    const inputs = {
      origin: event.origin,
      acceptedDomain: String(auth?.acceptedDomain ?? ''),
      spf: auth?.spf ?? '',
      dkimPassForSender: String(auth?.dkimPassForSender ?? ''),
      vouched: String(auth?.vouched ?? ''),
    };
    return {
      matched: relayed && auth?.vouched === false,
      pool: 'RELAY',
      reason: `${event.origin.toLowerCase().replace(/_/g, ' ')} mail the platform cannot vouch for: not from an accepted domain, no SPF pass (${auth?.spf}), no DKIM pass for the sender`,
      inputs,
    };
  },
};

export interface SrsRecord {
  /** Where the original of a short (bounces+SRS) address is kept. */
  readonly key: string;
  readonly original: string;
  readonly ttlSeconds: number;
}

/** The rewritten envelope sender of a vouched-for relayed message, when one is due. */
function rewrite(
  event: OutboundMessage,
  tenant: TenantPolicy,
  pool: Pool,
): { sender: string | null; note: string; record?: SrsRecord } {
  const auth = event.auth;
  if (!isRelayedOrigin(event.origin) || !auth?.vouched || pool === 'RELAY' || pool === 'BLOCKED')
    return { sender: null, note: '' };
  if (auth.acceptedDomain || !event.envelopeSender) return { sender: null, note: '' };
  const { srs } = tenant.routing;
  const defaultDomain = tenant.directory.acceptedDomains[0];
  if (!srs.secret || !defaultDomain)
    return {
      sender: null,
      note: 'SRS not rewritten: the policy has no SRS secret or the tenant no accepted domain',
    };
  const keys = { secret: srs.secret, maxAgeDays: srs.maxAgeDays };
  const forwarder = addressOf(event.submitter);
  const forwarderDomain = forwarder.slice(forwarder.lastIndexOf('@') + 1);
  if (
    event.origin !== 'ON_PREMISES_CONNECTOR' &&
    tenant.directory.acceptedDomains.includes(forwarderDomain)
  ) {
    const user = forwarder.slice(0, forwarder.lastIndexOf('@'));
    const long = srsForward(event.envelopeSender, user, forwarderDomain, event.eventTime, keys);
    if (long) return { sender: long, note: `SRS: envelope sender rewritten for ${forwarderDomain}` };
  }
  const short = srsBounces(event.envelopeSender, defaultDomain, event.eventTime, keys);
  return {
    sender: short.address,
    note: `SRS: envelope sender rewritten to the bounces form at ${defaultDomain}`,
    record: { key: short.key, original: event.envelopeSender, ttlSeconds: srs.maxAgeDays * 86_400 + 86_400 },
  };
}

function poolName(tenant: TenantPolicy, pool: Pool): string {
  return pool === 'BLOCKED' ? tenant.routing.blockedName : tenant.routing.pools[pool as PoolKey].name;
}

export interface Routed {
  readonly assignment: PoolAssignment;
  readonly srsRecord: SrsRecord | undefined;
}

export function route(event: OutboundMessage, policy: Policy, decidedAt: number): Routed {
  const tenant = tenantPolicy(policy, event.tenantId);
  const trace: RuleEvaluation[] = [];
  let decided: RuleOutcome | undefined;
  for (const rule of tenant.routing.rules) {
    const outcome = RULES[rule](event, tenant);
    trace.push({ rule, matched: outcome.matched, inputs: outcome.inputs });
    if (outcome.matched) {
      decided = outcome;
      break;
    }
  }
  const pool: Pool = decided?.pool ?? 'NORMAL';
  const reasons = [decided?.reason ?? 'no rule matched: good mail from a well-behaved sender'];
  const notBefore =
    pool !== 'BLOCKED' && event.limits?.decision === 'THROTTLE' ? (event.limits.deferUntil ?? null) : null;
  if (notBefore !== null)
    reasons.push(
      `throttled: over ${event.limits?.threshold} messages a minute, deferred to ${new Date(notBefore).toISOString()}`,
    );
  if (pool !== 'BLOCKED' && event.limits?.decision === 'WARN')
    reasons.push(`near the ${event.limits.limit} limit (${event.limits.count}/${event.limits.threshold})`);
  const source =
    pool === 'BLOCKED' ? null : chooseSourceIp(event.messageId, tenant.routing.pools[pool as PoolKey].ips);
  const srs = rewrite(event, tenant, pool);
  if (srs.note) reasons.push(srs.note);
  const dsn = event.dsn;
  // RFC 3464: Final-Recipient is "address-type; address", e.g. "rfc822; bob@example.com".
  const failedRecipient = dsn ? addressOf(dsn.finalRecipient.replace(/^\s*[a-z0-9-]+\s*;/i, '')) : '';
  return {
    assignment: {
      messageId: event.messageId,
      tenantId: event.tenantId,
      eventTime: event.eventTime,
      pool,
      poolName: poolName(tenant, pool),
      sourceIp: source?.ip ?? null,
      heloName: source ? (source.helo ?? tenant.routing.pools[pool as PoolKey].helo) : null,
      reasons,
      trace,
      policyVersion: policy.version,
      smtpReply:
        pool === 'BLOCKED' ? (decided?.smtpReply ?? '550 5.7.1 Message blocked by outbound policy') : null,
      notBefore,
      rewrittenSender: srs.sender,
      isNdr: trace.some((t) => t.rule === 'ndr' && t.matched) || event.messageClass === 'NDR',
      decidedAt,
      submitter: event.submitter,
      sender: event.envelopeSender,
      fromHeader: event.fromHeader,
      recipients: event.recipients.map((r) => r.address),
      ndr:
        dsn && (event.messageClass === 'NDR' || event.origin === 'SYSTEM_NDR' || dsn.action === 'failed')
          ? {
              status: dsn.status,
              finalRecipientDomain: failedRecipient.slice(failedRecipient.lastIndexOf('@') + 1),
              remoteMta: dsn.remoteMta,
              originalKnown: dsn.originalMessageId !== null,
              finalRecipient: failedRecipient,
              originalSender:
                dsn.originalEnvelopeSender === null ? null : addressOf(dsn.originalEnvelopeSender),
              originalSource: dsn.originalConnector ?? dsn.originalClientIp,
            }
          : null,
    },
    srsRecord: srs.record,
  };
}
