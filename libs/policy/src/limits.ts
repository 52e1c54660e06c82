// The limits section: the sending limits and the tenant's outbound spam policies (limit-counter).
import type { TenantDirectory } from './directory.ts';
import { oneOf, type Reader } from './reader.ts';

export const RESTRICTION_ACTIONS = ['BlockUserForToday', 'BlockUser', 'Alert'] as const;
/** What happens to a sender who reaches a threshold: blocked until the next UTC midnight, until released, or only reported. */
export type RestrictionAction = (typeof RESTRICTION_ACTIONS)[number];

/** An outbound spam policy's three thresholds; 0 means "the service default". */
export interface RecipientThresholds {
  readonly externalPerHour: number;
  readonly internalPerHour: number;
  readonly perDay: number;
}

export const PRESETS: Readonly<Record<'standard' | 'strict', RecipientThresholds>> = Object.freeze({
  standard: Object.freeze({ externalPerHour: 500, internalPerHour: 1000, perDay: 1000 }),
  strict: Object.freeze({ externalPerHour: 400, internalPerHour: 800, perDay: 800 }),
});

export interface OutboundSpamPolicy extends RecipientThresholds {
  readonly name: string;
  /** The lowest number wins when several policies match. */
  readonly priority: number;
  readonly action: RestrictionAction;
  /** Conditions: values of one are OR'ed, conditions AND'ed; an empty list is no condition. */
  readonly users: readonly string[];
  readonly groups: readonly string[];
  /** Domains match their subdomains too. */
  readonly domains: readonly string[];
  /** Every address the `groups` condition admits (the groups' members and the groups themselves). */
  readonly groupMembers: ReadonlySet<string>;
}

export interface LimitsPolicy {
  /** Recipients one message may have (1–1000); more rejects the message. */
  readonly recipientsPerMessage: number;
  /** Recipients per submitter per sliding 24 hours, whatever the outbound spam policy. */
  readonly recipientRateLimit: { readonly recipients: number; readonly action: RestrictionAction };
  /** Messages per submitter per minute; more are deferred into later minutes. */
  readonly messageRatePerMinute: number;
  /** External recipients per tenant per sliding 24 hours: perLicense × licenses^exponent + base. */
  readonly tenantExternalRecipients: {
    readonly perLicense: number;
    readonly exponent: number;
    readonly base: number;
  };
  /** Share of a limit from which a message carries a warning. */
  readonly warnAt: number;
  /** What a threshold of 0 in an outbound spam policy stands for. */
  readonly serviceDefaults: RecipientThresholds;
  /** Applies when no outbound spam policy's conditions match the From address. */
  readonly defaultPolicy: RecipientThresholds & { readonly action: RestrictionAction };
  /** Sorted by priority. */
  readonly outboundSpamPolicies: readonly OutboundSpamPolicy[];
}

/** The reference service's figures (MISSION.md): every number configurable. */
export const LIMITS_DEFAULTS: LimitsPolicy = {
  recipientsPerMessage: 500,
  recipientRateLimit: { recipients: 10_000, action: 'BlockUserForToday' },
  messageRatePerMinute: 30,
  tenantExternalRecipients: { perLicense: 500, exponent: 0.7, base: 9_500 },
  warnAt: 0.8,
  serviceDefaults: { externalPerHour: 10_000, internalPerHour: 10_000, perDay: 10_000 },
  defaultPolicy: { externalPerHour: 0, internalPerHour: 0, perDay: 0, action: 'BlockUserForToday' },
  outboundSpamPolicies: [],
};

export function thresholds(
  given: Record<string, unknown>,
  base: RecipientThresholds,
  at: Reader,
  min: number,
): RecipientThresholds {
  const read = (key: keyof RecipientThresholds) =>
    given[key] === undefined ? base[key] : at.at(key).number(given[key], min, 10_000, true);
  return {
    externalPerHour: read('externalPerHour'),
    internalPerHour: read('internalPerHour'),
    perDay: read('perDay'),
  };
}

export function outboundSpamPolicy(raw: unknown, directory: TenantDirectory, at: Reader): OutboundSpamPolicy {
  const given = at.object(raw, [
    'name',
    'priority',
    'preset',
    'externalPerHour',
    'internalPerHour',
    'perDay',
    'action',
    'users',
    'groups',
    'domains',
  ]);
  let preset: RecipientThresholds = { externalPerHour: 0, internalPerHour: 0, perDay: 0 };
  if (given.preset !== undefined) {
    if (given.preset !== 'standard' && given.preset !== 'strict')
      throw at.at('preset').error(`must be "standard" or "strict", got ${JSON.stringify(given.preset)}`);
    preset = PRESETS[given.preset];
  }
  const users = given.users === undefined ? [] : at.at('users').names(given.users);
  const groups = given.groups === undefined ? [] : at.at('groups').names(given.groups);
  const domains = given.domains === undefined ? [] : at.at('domains').names(given.domains);
  if (users.length + groups.length + domains.length === 0)
    throw at.error(
      'needs at least one condition (users, groups or domains); the defaultPolicy applies to everyone else',
    );
  const groupMembers = new Set<string>();
  for (const [i, group] of groups.entries()) {
    const members = directory.groups[group];
    if (!members)
      throw at.at('groups').at(i).error(`names "${group}", which is not a group of directory.groups`);
    groupMembers.add(group);
    for (const member of members) groupMembers.add(member);
  }
  return {
    name: at.at('name').text(given.name),
    priority: at.at('priority').number(given.priority, 0, 1_000_000, true),
    ...thresholds(given, preset, at, 0),
    action:
      given.action === undefined
        ? 'BlockUserForToday'
        : oneOf(at.at('action'), given.action, RESTRICTION_ACTIONS),
    users,
    groups,
    domains,
    groupMembers,
  };
}

export function limitsSection(
  raw: unknown,
  base: LimitsPolicy,
  directory: TenantDirectory,
  at: Reader,
): LimitsPolicy {
  if (raw === undefined) return base;
  const given = at.object(raw, [
    'recipientsPerMessage',
    'recipientRateLimit',
    'messageRatePerMinute',
    'tenantExternalRecipients',
    'warnAt',
    'serviceDefaults',
    'defaultPolicy',
    'outboundSpamPolicies',
  ]);
  const merge = <K extends keyof LimitsPolicy>(
    key: K,
    read: (value: unknown, at: Reader) => LimitsPolicy[K],
  ) => (given[key] === undefined ? base[key] : read(given[key], at.at(key)));

  const recipientRateLimit = merge('recipientRateLimit', (value, at) => {
    const rate = at.object(value, ['recipients', 'action']);
    return {
      recipients:
        rate.recipients === undefined
          ? base.recipientRateLimit.recipients
          : at.at('recipients').number(rate.recipients, 1, 1_000_000_000, true),
      action:
        rate.action === undefined
          ? base.recipientRateLimit.action
          : oneOf(at.at('action'), rate.action, RESTRICTION_ACTIONS),
    };
  });
  const tenantExternalRecipients = merge('tenantExternalRecipients', (value, at) => {
    const formula = at.object(value, ['perLicense', 'exponent', 'base']);
    const read = (key: 'perLicense' | 'exponent' | 'base', max: number) =>
      formula[key] === undefined
        ? base.tenantExternalRecipients[key]
        : at.at(key).number(formula[key], 0, max);
    return {
      perLicense: read('perLicense', 1_000_000),
      exponent: read('exponent', 2),
      base: read('base', 1_000_000_000),
    };
  });
  const serviceDefaults = merge('serviceDefaults', (value, at) =>
    thresholds(
      at.object(value, ['externalPerHour', 'internalPerHour', 'perDay']),
      base.serviceDefaults,
      at,
      1,
    ),
  );
  const defaultPolicy = merge('defaultPolicy', (value, at) => {
    const policy = at.object(value, ['externalPerHour', 'internalPerHour', 'perDay', 'action']);
    return {
      ...thresholds(policy, base.defaultPolicy, at, 0),
      action:
        policy.action === undefined
          ? base.defaultPolicy.action
          : oneOf(at.at('action'), policy.action, RESTRICTION_ACTIONS),
    };
  });
  const outboundSpamPolicies = merge('outboundSpamPolicies', (value, at) => {
    // Policies name a tenant's users and groups: they belong to a tenant, never to the defaults.
    if (at.path.startsWith('defaults.'))
      throw at.error('belongs in tenants.<id>.limits, not in the defaults');
    if (!Array.isArray(value)) throw at.error('must be a list of policies');
    const policies = value.map((item, i) => outboundSpamPolicy(item, directory, at.at(i)));
    for (const [i, policy] of policies.entries()) {
      const clash = policies.findIndex((p) => p.priority === policy.priority || p.name === policy.name);
      if (clash !== i)
        throw at
          .at(i)
          .error(`has the same name or priority as outboundSpamPolicies[${clash}]; both must be unique`);
    }
    return policies.sort((a, b) => a.priority - b.priority);
  });
  return {
    recipientsPerMessage: merge('recipientsPerMessage', (value, at) => at.number(value, 1, 1000, true)),
    recipientRateLimit,
    messageRatePerMinute: merge('messageRatePerMinute', (value, at) => at.number(value, 1, 1_000_000, true)),
    tenantExternalRecipients,
    warnAt: merge('warnAt', (value, at) => at.number(value, 0.01, 1)),
    serviceDefaults,
    defaultPolicy,
    outboundSpamPolicies,
  };
}
