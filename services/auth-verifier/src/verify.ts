// auth-verifier's logic: SPF, DKIM, DMARC and ARC of a message as it arrived at the platform
// (mailauth, in strict RFC mode, DNS through the shared cached resolver), and whether the
// platform can vouch for its sender: an accepted domain, SPF pass, or DKIM pass for the sender's
// domain. The relay-pool decision itself is the router's.
import { type NodeStyleResolve, normaliseDomain, senderDomainOf } from '@mailpools/dns';
import { type Policy, tenantPolicy } from '@mailpools/policy';
import {
  type AuthVerdict,
  type DkimSignature,
  isRelayedOrigin,
  type OutboundMessage,
} from '@mailpools/schemas';
import { authenticate, spf } from 'mailauth';

export interface VerifyDeps {
  readonly resolve: NodeStyleResolve;
  readonly policy: () => Policy;
  /** Raw messages longer than this get SPF only (PARTIAL). */
  readonly maxBytes: number;
  /** Time bound of one message's checks; past it the verdict is PARTIAL with SPF temperror. */
  readonly timeoutMs: number;
  /** The authserv-id of the results. */
  readonly mta: string;
}

/** The IP SPF is evaluated against: under enhanced filtering, the one before the third-party hop. */
export function spfClientIp(event: Pick<OutboundMessage, 'clientIp' | 'connector'>): string {
  const connector = event.connector;
  return connector?.enhancedFiltering && connector.originalClientIp
    ? connector.originalClientIp
    : event.clientIp;
}

/** DKIM passed for the sender's domain: a passing signature of that domain or of a parent of it. */
export function dkimPassFor(domain: string | undefined, signatures: readonly DkimSignature[]): boolean {
  if (!domain) return false;
  return signatures.some(
    (s) => s.result === 'pass' && (domain === s.domain || domain.endsWith(`.${s.domain}`)),
  );
}

interface Checks {
  spf: string;
  spfDomain: string | null;
  dkimSignatures: DkimSignature[];
  dmarc: string;
  dmarcPolicy: string | null;
  arc: string;
}

const NOT_CHECKED: Checks = {
  spf: 'none',
  spfDomain: null,
  dkimSignatures: [],
  dmarc: 'none',
  dmarcPolicy: null,
  arc: 'none',
};

/** Who the message came from, as mailauth checks it: strict RFC behaviour, our resolver. */
function arrival(event: OutboundMessage, ip: string, deps: VerifyDeps) {
  return {
    sender: event.envelopeSender,
    ip,
    helo: event.helo,
    mta: deps.mta,
    resolver: deps.resolve,
    strict: true,
  };
}

async function spfOnly(event: OutboundMessage, ip: string, deps: VerifyDeps): Promise<Checks> {
  const result = await spf({ ...arrival(event, ip, deps), maxElapsedTime: deps.timeoutMs });
  return { ...NOT_CHECKED, spf: result.status.result, spfDomain: result.domain ?? null };
}

async function everything(event: OutboundMessage, ip: string, deps: VerifyDeps): Promise<Checks> {
  const result = await authenticate(event.raw, { ...arrival(event, ip, deps), disableBimi: true });
  return {
    spf: result.spf ? result.spf.status.result : 'none',
    spfDomain: result.spf ? (result.spf.domain ?? null) : null,
    dkimSignatures: result.dkim.results.map((r) => ({
      domain: (r.signingDomain ?? '').toLowerCase(),
      selector: r.selector ?? '',
      algorithm: r.algo ?? '',
      result: r.status.result,
    })),
    dmarc: result.dmarc ? result.dmarc.status.result : 'none',
    dmarcPolicy: result.dmarc ? result.dmarc.policy || null : null,
    arc: result.arc ? result.arc.status.result : 'none',
  };
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

export async function verify(event: OutboundMessage, deps: VerifyDeps): Promise<AuthVerdict> {
  const tenant = tenantPolicy(deps.policy(), event.tenantId);
  const senderDomain = normaliseDomain(senderDomainOf(event)) ?? null;
  const acceptedDomain = senderDomain !== null && tenant.directory.acceptedDomains.includes(senderDomain);
  const ip = spfClientIp(event);

  let status: AuthVerdict['status'] = 'VERIFIED';
  let statusReason: string | null = null;
  let checks = NOT_CHECKED;
  if (!tenant.auth.verifyAll && !isRelayedOrigin(event.origin)) {
    status = 'SKIPPED';
    statusReason = 'the tenant verifies forwarded and relayed mail only';
  } else if (event.rawTruncated || event.raw.length > deps.maxBytes) {
    // Signatures cover the whole body: a part of a message can only fail them. SPF needs no body.
    status = 'PARTIAL';
    statusReason = event.rawTruncated
      ? 'the platform truncated the message: DKIM, DMARC and ARC not evaluated'
      : `the message is over ${deps.maxBytes} bytes: DKIM, DMARC and ARC not evaluated`;
    checks = await spfOnly(event, ip, deps);
  } else {
    const result = await within(everything(event, ip, deps), deps.timeoutMs);
    if (result === 'timeout') {
      status = 'PARTIAL';
      statusReason = `the checks took longer than ${deps.timeoutMs} ms`;
      checks = { ...NOT_CHECKED, spf: 'temperror' };
    } else checks = result;
  }
  const dkimPassForSender = dkimPassFor(senderDomain ?? undefined, checks.dkimSignatures);
  return {
    spf: checks.spf,
    spfDomain: checks.spfDomain,
    dkimPassForSender,
    dmarc: checks.dmarc,
    arc: checks.arc,
    acceptedDomain,
    vouched: acceptedDomain || checks.spf === 'pass' || dkimPassForSender,
    status,
    statusReason,
    senderDomain,
    spfClientIp: ip,
    dkimSignatures: checks.dkimSignatures,
    dmarcPolicy: checks.dmarcPolicy,
  };
}

export async function enrich(event: OutboundMessage, deps: VerifyDeps): Promise<OutboundMessage> {
  return { ...event, auth: await verify(event, deps) };
}
