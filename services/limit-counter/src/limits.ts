// limit-counter's logic: which limits a message is held to (platform limits, the tenant's
// licence-based external limit, the outbound spam policy its From address selects) and what the
// counting decided, as the `limits` enrichment and, when a sender is restricted, a
// SenderRestriction record. The counting itself is atomic in Redis: count.lua, via store.ts.
import { addressOf } from '@mailpools/dns';
import type {
  LimitsPolicy,
  OutboundSpamPolicy,
  Policy,
  RecipientThresholds,
  TenantPolicy,
} from '@mailpools/policy';
import { tenantPolicy } from '@mailpools/policy';
import type { LimitsVerdict, MessageClass, OutboundMessage, SenderRestriction } from '@mailpools/schemas';
import { type OutputRecord, withHop } from '@mailpools/stream';
import type { CountInput, CountResult, LimitSet, LimitStore } from './store.ts';

export const SMTP_REPLIES: Readonly<Record<string, string>> = {
  restricted: '550 5.1.8 Access denied, bad outbound sender',
  recipientsPerMessage: '550 5.5.3 Too many recipients',
  tenantExternalRecipients:
    "550 5.7.233 Message can't be sent: the organisation has exceeded its external recipient rate limit",
};

/** Mail the platform sends on a user's behalf that must not use up the tenant's external limit. */
const NOT_COUNTED_FOR_TENANT: ReadonlySet<MessageClass> = new Set([
  'NDR',
  'DSN',
  'READ_RECEIPT',
  'AUTO_REPLY',
  'JOURNAL',
]);

export const DEFAULT_POLICY_NAME = 'Default';

/** 500 × licenses^0.7 + 9,500 with the reference figures: 1 → 10,000; 100 → 22,059; 1,000 → 72,446. */
export function tenantExternalLimit(
  licenses: number,
  formula: LimitsPolicy['tenantExternalRecipients'],
): number {
  return Math.floor(formula.perLicense * licenses ** formula.exponent + formula.base);
}

function matches(policy: OutboundSpamPolicy, address: string): boolean {
  const domain = address.slice(address.lastIndexOf('@') + 1);
  return (
    (policy.users.length === 0 || policy.users.includes(address)) &&
    (policy.groups.length === 0 || policy.groupMembers.has(address)) &&
    (policy.domains.length === 0 || policy.domains.some((d) => domain === d || domain.endsWith(`.${d}`)))
  );
}

export interface ChosenPolicy extends RecipientThresholds {
  readonly name: string;
  readonly action: OutboundSpamPolicy['action'];
}

/** The outbound spam policy of a From address: the matching one with the lowest priority number, else the default; 0 thresholds become the service defaults. */
export function chooseOutboundSpamPolicy(fromAddress: string, limits: LimitsPolicy): ChosenPolicy {
  const chosen = limits.outboundSpamPolicies.find((p) => matches(p, fromAddress));
  const base = chosen ?? limits.defaultPolicy;
  const orDefault = (key: keyof RecipientThresholds) => base[key] || limits.serviceDefaults[key];
  return {
    name: chosen?.name ?? DEFAULT_POLICY_NAME,
    action: base.action,
    externalPerHour: orDefault('externalPerHour'),
    internalPerHour: orDefault('internalPerHour'),
    perDay: orDefault('perDay'),
  };
}

export function limitSetOf(chosen: ChosenPolicy, tenant: TenantPolicy): LimitSet {
  const { limits } = tenant;
  return {
    recipientsPerMessage: limits.recipientsPerMessage,
    tenantExternal: tenantExternalLimit(tenant.directory.licenses, limits.tenantExternalRecipients),
    recipientRate: limits.recipientRateLimit.recipients,
    recipientRateAction: limits.recipientRateLimit.action,
    externalPerHour: chosen.externalPerHour,
    internalPerHour: chosen.internalPerHour,
    perDay: chosen.perDay,
    policyAction: chosen.action,
    messageRatePerMinute: limits.messageRatePerMinute,
    warnAt: limits.warnAt,
  };
}

export function countInputOf(event: OutboundMessage, limitSetIndex: number): CountInput {
  let external = 0;
  for (const recipient of event.recipients) if (recipient.scope === 'EXTERNAL') external++;
  return {
    id: event.messageId,
    tk: event.tenantId,
    sub: addressOf(event.submitter),
    t: event.eventTime,
    n: event.recipients.length,
    e: external,
    i: event.recipients.length - external,
    tc: NOT_COUNTED_FOR_TENANT.has(event.messageClass) ? 0 : 1,
    p: limitSetIndex,
  };
}

export function verdictOf(result: CountResult, policyName: string): LimitsVerdict {
  const blocked = result.d === 'BLOCK';
  const replyKey = blocked ? 'restricted' : result.d === 'REJECT' ? (result.l ?? '') : '';
  return {
    decision: result.d,
    limit: result.l ?? null,
    count: result.c ?? 0,
    threshold: result.th ?? 0,
    restricted: blocked,
    deferUntil: result.du ?? null,
    policy: policyName,
    action: result.a ?? null,
    restrictedUntil: blocked ? (result.ru ?? null) : null,
    smtpReply: SMTP_REPLIES[replyKey] ?? null,
    usage: result.u.map(([limit, count, threshold]) => ({ limit, count, threshold })),
  };
}

/** The record that announces a restriction this message caused (the same on a replay). */
export function restrictionOf(
  event: OutboundMessage,
  input: CountInput,
  result: CountResult,
): SenderRestriction | undefined {
  if (result.new !== 1 || !result.a) return undefined;
  return {
    tenantId: event.tenantId,
    sender: input.sub,
    restricted: true,
    action: result.a,
    limit: result.l ?? 'unknown',
    count: result.c ?? 0,
    threshold: result.th ?? 0,
    until: result.ru ?? null,
    at: event.eventTime,
    by: null,
  };
}

export interface Counted {
  readonly event: OutboundMessage;
  readonly restriction: SenderRestriction | undefined;
  readonly duplicate: boolean;
}

export interface LimitsDeps {
  readonly store: LimitStore;
  readonly policy: () => Policy;
}

/** Counts a batch of events in one Redis round trip and returns them with `limits` filled in, in order. */
export async function countBatch(events: readonly OutboundMessage[], deps: LimitsDeps): Promise<Counted[]> {
  const policy = deps.policy();
  const limitSets: LimitSet[] = [];
  const indexOfSet = new Map<string, number>();
  const policyNames: string[] = [];
  const inputs = events.map((event) => {
    const tenant = tenantPolicy(policy, event.tenantId);
    const chosen = chooseOutboundSpamPolicy(addressOf(event.fromHeader), tenant.limits);
    // A tenant and a policy name fix the limits: one set per pair is sent to Redis.
    const key = `${event.tenantId}\u0000${chosen.name}`;
    let index = indexOfSet.get(key);
    if (index === undefined) {
      limitSets.push(limitSetOf(chosen, tenant));
      index = limitSets.length; // Lua lists start at 1
      indexOfSet.set(key, index);
    }
    policyNames.push(chosen.name);
    return countInputOf(event, index);
  });
  const results = await deps.store.count(limitSets, inputs);
  return events.map((event, i) => {
    const result = results[i] as CountResult;
    const input = inputs[i] as CountInput;
    return {
      event: { ...event, limits: verdictOf(result, policyNames[i] as string) },
      restriction: restrictionOf(event, input, result),
      duplicate: result.duplicate,
    };
  });
}

export interface LimitTopics {
  readonly counted: string;
  /** Compacted: the current table of restrictions. */
  readonly senderRestrictions: string;
  /** Every restriction and release, kept whole. */
  readonly restrictionAudit: string;
}

/** What a counted event produces: itself for the next stage and, if it restricted its sender, the restriction on both topics. */
export function outputsOf(
  { event, restriction }: Counted,
  topics: LimitTopics,
  stage: string,
): OutputRecord[] {
  const outputs: OutputRecord[] = [
    { topic: topics.counted, schema: 'OutboundMessage', key: event.messageId, value: withHop(event, stage) },
  ];
  if (restriction) {
    const key = `${restriction.tenantId}/${restriction.sender}`;
    outputs.push(
      { topic: topics.senderRestrictions, schema: 'SenderRestriction', key, value: restriction },
      { topic: topics.restrictionAudit, schema: 'SenderRestriction', key, value: restriction },
    );
  }
  return outputs;
}
