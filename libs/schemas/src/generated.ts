// Generated from /schemas/*.avsc by src/generate.ts. Do not edit.

export type RecipientScope = 'INTERNAL' | 'EXTERNAL';

export interface Recipient {
  address: string;
  scope: RecipientScope;
}

/** Inbound connector the message came through (third-party or on-premises MX). */
export interface Connector {
  name: string;
  /** Evaluate SPF against originalClientIp, the IP before the third-party hop. */
  enhancedFiltering: boolean;
  originalClientIp: null | string;
}

export type Origin = 'CLIENT_SUBMISSION' | 'ON_PREMISES_CONNECTOR' | 'FORWARDED' | 'RELAYED' | 'SYSTEM_NDR';

export type MessageClass = 'NORMAL' | 'NDR' | 'DSN' | 'READ_RECEIPT' | 'AUTO_REPLY' | 'JOURNAL';

export interface DsnDetails {
  /** failed, delayed, delivered, relayed, expanded. */
  action: string;
  /** Enhanced status code, e.g. 5.1.1. */
  status: string;
  diagnosticCode: null | string;
  /** The recipient the original message failed for. */
  finalRecipient: string;
  remoteMta: null | string;
  /** messageId of the bounced message when the platform knows it. */
  originalMessageId: null | string;
  originalEnvelopeSender: null | string;
  /** The connector the bounced message came in through, when it did. */
  originalConnector: null | string;
  /** The IP the bounced message came from. */
  originalClientIp: null | string;
}

export type SpamLabel = 'HAM' | 'SUSPICIOUS' | 'SPAM';

export interface FeatureWeight {
  feature: string;
  weight: number;
}

export interface SpamVerdict {
  /** Probability-like score from 0 (ham) to 1 (spam). */
  score: number;
  label: SpamLabel;
  modelVersion: string;
  truncated: boolean;
  topFeatures: FeatureWeight[];
}

export type LimitDecision = 'ALLOW' | 'WARN' | 'THROTTLE' | 'REJECT' | 'BLOCK' | 'ALERT';

export interface LimitUsage {
  limit: string;
  /** Including this message. */
  count: number;
  threshold: number;
}

export interface LimitsVerdict {
  decision: LimitDecision;
  /** The limit that decided, when one did. */
  limit: null | string;
  count: number;
  threshold: number;
  restricted: boolean;
  deferUntil: null | number;
  /** The outbound spam policy chosen by the From address; 'Default' when none of the tenant's matched. */
  policy: null | string;
  /** BlockUserForToday, BlockUser or Alert: what the deciding limit does to the submitter. */
  action: null | string;
  /** When the submitter's restriction ends by itself; null while restricted: until released. */
  restrictedUntil: null | number;
  /** What the MTA answers when the message is not sent, e.g. 550 5.1.8. */
  smtpReply: null | string;
  /** Every limit at or above the warning share, with its count and threshold: what the decision saw. */
  usage: LimitUsage[];
}

export type DnsStatus = 'OK' | 'NXDOMAIN' | 'TEMPERROR' | 'INVALID_DOMAIN';

export interface DnsVerdict {
  domain: string;
  status: DnsStatus;
  hasA: boolean;
  hasAaaa: boolean;
  hasMx: boolean;
  nullMx: boolean;
  ttlSeconds: number;
  fromCache: boolean;
}

export type AuthStatus = 'VERIFIED' | 'PARTIAL' | 'SKIPPED';

export interface DkimSignature {
  domain: string;
  selector: string;
  algorithm: string;
  /** pass, fail, neutral, policy, temperror, permerror, none. */
  result: string;
}

export interface AuthVerdict {
  /** pass, fail, softfail, neutral, none, temperror, permerror. */
  spf: string;
  spfDomain: null | string;
  dkimPassForSender: boolean;
  dmarc: string;
  arc: string;
  acceptedDomain: boolean;
  /** acceptedDomain OR SPF pass OR DKIM pass for the sender domain. */
  vouched: boolean;
  /** PARTIAL: only SPF (a message truncated or over the size bound, or the time bound reached); SKIPPED: not forwarded or relayed and the tenant verifies only those. */
  status: AuthStatus;
  statusReason: null | string;
  /** The domain the criteria were checked for: the envelope sender's, else the From header's. */
  senderDomain: null | string;
  /** The IP SPF was evaluated against: the connector's original client IP under enhanced filtering. */
  spfClientIp: null | string;
  dkimSignatures: DkimSignature[];
  /** The policy DMARC applied: none, quarantine, reject. */
  dmarcPolicy: null | string;
}

export interface Hop {
  stage: string;
  at: number;
}

/** One outbound message as the platform submits it; each stage fills in its own optional enrichment and passes it on. */
export interface OutboundMessage {
  /** Platform-wide unique id; the Kafka key of every record about this message. */
  messageId: string;
  tenantId: string;
  /** When the platform accepted the message; every window and limit runs on this clock. */
  eventTime: number;
  /** The authenticated submitter: limits count against, and restrict, this address. Empty for system messages. */
  submitter: string;
  /** SMTP MAIL FROM; empty for NDRs. */
  envelopeSender: string;
  /** Address of the From header: chooses the outbound spam policy. */
  fromHeader: string;
  recipients: Recipient[];
  /** IP the message arrived from at the platform. */
  clientIp: string;
  helo: string;
  connector: null | Connector;
  origin: Origin;
  /** What kind of message this is; NDRs, DSNs, read receipts, automatic replies and journaling do not count against the tenant limit. */
  messageClass: MessageClass;
  /** Delivery status details of a non-delivery report (RFC 3464). */
  dsn: null | DsnDetails;
  /** The RFC 5322 message, at most the configured number of bytes. */
  raw: Buffer;
  rawTruncated: boolean;
  /** Size of the whole message before any truncation. */
  rawSize: number;
  spam: null | SpamVerdict;
  limits: null | LimitsVerdict;
  dns: null | DnsVerdict;
  auth: null | AuthVerdict;
  /** When each stage finished with this message (wall clock), for per-stage latency. */
  hops: Hop[];
}

export type Pool = 'NORMAL' | 'HIGH_RISK' | 'RELAY' | 'BLOCKED';

export interface RuleEvaluation {
  rule: string;
  matched: boolean;
  inputs: Record<string, string>;
}

/** What the NDR-surge detector reads of a bounce. */
export interface NdrFacts {
  /** Enhanced status code, e.g. 5.1.1. */
  status: string;
  finalRecipientDomain: string;
  remoteMta: null | string;
  /** The bounced message is one the platform sent (false: backscatter of a forged sender). */
  originalKnown: boolean;
  finalRecipient: string;
  /** Who sent the bounced message. */
  originalSender: null | string;
  /** The connector, else the IP, the bounced message came in through. */
  originalSource: null | string;
}

/** The router's decision for one message: the pool it leaves through (or blocked) and why. */
export interface PoolAssignment {
  messageId: string;
  tenantId: string;
  eventTime: number;
  pool: Pool;
  /** Friendly name for message trace, e.g. RegularRelayOutboundPool. */
  poolName: string;
  sourceIp: null | string;
  /** The EHLO name the MTA greets with from sourceIp (the routing policy's, matching the IP's PTR record). */
  heloName: null | string;
  reasons: string[];
  /** Every rule evaluated, in order, with the inputs it saw and whether it matched. */
  trace: RuleEvaluation[];
  policyVersion: string;
  /** The reply for blocked mail, e.g. 550 5.1.8 Access denied, bad outbound sender. */
  smtpReply: null | string;
  /** Throttled messages leave no earlier than this. */
  notBefore: null | number;
  /** SRS-rewritten envelope sender, when rewritten. */
  rewrittenSender: null | string;
  isNdr: boolean;
  decidedAt: number;
  /** For the message trace: who submitted it. */
  submitter: string;
  /** The envelope sender as submitted (before any SRS rewrite). */
  sender: string;
  fromHeader: string;
  recipients: string[];
  ndr: null | NdrFacts;
}

export type SurgePhase = 'STARTED' | 'UPDATED' | 'ENDED';

export type SurgeScope = 'TENANT' | 'PLATFORM';

export type SurgeCause = 'SPOOFING' | 'DIRECTORY_HARVEST' | 'SPAM_ATTACK' | 'ROGUE_SERVER' | 'UNKNOWN';

/** A surge of non-delivery reports for one tenant or the whole platform: started, updated, ended. */
export interface NdrSurgeAlert {
  /** Stable for the whole life of one surge. */
  alertId: string;
  phase: SurgePhase;
  scope: SurgeScope;
  tenantId: null | string;
  windowStart: number;
  windowEnd: number;
  ndrCount: number;
  /** NDRs expected in such a window at this time of day. */
  baseline: number;
  ratio: number;
  likelyCause: SurgeCause;
  evidence: Record<string, string>;
  eventTime: number;
}

export type RestrictionAction = 'BlockUserForToday' | 'BlockUser' | 'Alert';

/** A sender restricted from sending, or released by an admin; keyed by tenant and sender on a compacted topic. */
export interface SenderRestriction {
  tenantId: string;
  sender: string;
  /** false: the sender was released. */
  restricted: boolean;
  action: RestrictionAction;
  /** The limit that was exceeded, or 'release'. */
  limit: string;
  count: number;
  threshold: number;
  /** When the restriction ends by itself; null: until released. */
  until: null | number;
  at: number;
  /** The admin who released the sender. */
  by: null | string;
}
