// Tenant policy as data (KumoMTA/Rspamd style): platform defaults, then per-tenant overrides,
// validated when loaded — a wrong field fails at start-up naming its path — then frozen.
// Each service reads only its own section; sections grow with the services that need them.
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { MailpoolsError } from '@mailpools/core';

export interface SpamPolicy {
  /** Score from which a message is labelled SUSPICIOUS. */
  readonly suspiciousAt: number;
  /** Score from which a message is labelled SPAM. */
  readonly spamAt: number;
  /** Where SUSPICIOUS mail goes: the normal pool (the default) or, when the tenant says so, high-risk. */
  readonly onSuspicious: 'normal' | 'high-risk';
  /** The submitter's own pattern (spam-classifier's profile). */
  readonly profile: {
    readonly enabled: boolean;
    /** Messages a submitter must have sent before its profile moves a score. */
    readonly minHistory: number;
  };
}

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

/** What the platform knows of a tenant. */
export interface TenantDirectory {
  readonly licenses: number;
  /** The tenant's accepted domains (lower case); mail from them can be vouched for. */
  readonly acceptedDomains: readonly string[];
  /** Group address → member addresses (lower case). */
  readonly groups: Readonly<Record<string, readonly string[]>>;
}

export interface AuthPolicy {
  /** Verify every message (the results feed the trace and dashboards), or only forwarded and relayed ones. */
  readonly verifyAll: boolean;
}

export const POOLS = ['NORMAL', 'HIGH_RISK', 'RELAY'] as const;
export type PoolKey = (typeof POOLS)[number];

export interface SourceIp {
  readonly ip: string;
  readonly weight: number;
}

export interface PoolSettings {
  /** The friendly name a message trace shows, in the style of RegularRelayOutboundPool. */
  readonly name: string;
  readonly ips: readonly SourceIp[];
}

/** The router's rules, in the order they are tried; the first that matches decides. */
export const ROUTING_RULES = ['blocked', 'ndr', 'no-a-no-mx', 'spam', 'unvouched-relay'] as const;
export type RoutingRule = (typeof ROUTING_RULES)[number];

export interface RoutingPolicy {
  readonly pools: Readonly<Record<PoolKey, PoolSettings>>;
  /** The friendly name of "not sent at all". */
  readonly blockedName: string;
  readonly rules: readonly RoutingRule[];
  /** Over-limit mail: blocked (the current behaviour) or sent through the high-risk pool (the older one). */
  readonly overLimit: 'blocked' | 'high-risk';
  /** A sender domain DNS could not answer for: not penalised (ignore), or high-risk. */
  readonly onDnsTempError: 'ignore' | 'high-risk';
  /** An enrichment missing from the event (a stage skipped): ignore its rule, or send high-risk. */
  readonly onMissingEnrichment: 'ignore' | 'high-risk';
  /** Sender Rewriting Scheme; without a secret nothing is rewritten. */
  readonly srs: { readonly secret: string; readonly maxAgeDays: number };
}

/** When the NDR-surge detector calls a tenant's (or, in `defaults`, the platform's) bounces a surge. */
export interface NdrSurgePolicy {
  /** The windows a surge can start on: this many whole minutes before now, plus the minute under way. */
  readonly startWindowsMinutes: readonly number[];
  /** A window must hold this many times its baseline… */
  readonly startFactor: number;
  /** …at least this many NDRs… */
  readonly startMinimum: number;
  /** …and be this unlikely under the baseline (Poisson upper tail): noise is not a surge. */
  readonly startProbability: number;
  /** Minutes in the window a surge ends on; a surge lasts at least twice this. */
  readonly endWindowMinutes: number;
  /** It ends when that window holds less than this many times the baseline (plus half the start minimum). */
  readonly endFactor: number;
  /** Days of the same hour the baseline looks back on. */
  readonly baselineDays: number;
  /** The lowest baseline, in NDRs a minute: a quiet scope's handful is not a surge by itself. */
  readonly floorPerMinute: number;
  /** Minutes between UPDATED alerts of one surge when its cause stays the same. */
  readonly updateEveryMinutes: number;
}

export interface TenantPolicy {
  readonly spam: SpamPolicy;
  readonly limits: LimitsPolicy;
  readonly auth: AuthPolicy;
  readonly routing: RoutingPolicy;
  readonly directory: TenantDirectory;
  readonly ndr: NdrSurgePolicy;
}

export interface Policy {
  readonly version: string;
  readonly defaults: TenantPolicy;
  readonly tenants: Readonly<Record<string, TenantPolicy>>;
}

const BUILTIN_DEFAULTS: TenantPolicy = deepFreeze({
  spam: {
    suspiciousAt: 0.2,
    spamAt: 0.5,
    onSuspicious: 'normal',
    profile: { enabled: true, minHistory: 10 },
  },
  limits: {
    recipientsPerMessage: 500,
    recipientRateLimit: { recipients: 10_000, action: 'BlockUserForToday' },
    messageRatePerMinute: 30,
    tenantExternalRecipients: { perLicense: 500, exponent: 0.7, base: 9_500 },
    warnAt: 0.8,
    serviceDefaults: { externalPerHour: 10_000, internalPerHour: 10_000, perDay: 10_000 },
    defaultPolicy: { externalPerHour: 0, internalPerHour: 0, perDay: 0, action: 'BlockUserForToday' },
    outboundSpamPolicies: [],
  },
  auth: { verifyAll: true },
  routing: {
    pools: {
      NORMAL: { name: 'RegularRelayOutboundPool', ips: [] },
      HIGH_RISK: { name: 'HighRiskRelayOutboundPool', ips: [] },
      RELAY: { name: 'ForwardedRelayOutboundPool', ips: [] },
    },
    blockedName: 'BlockedOutboundPool',
    rules: [...ROUTING_RULES],
    overLimit: 'blocked',
    onDnsTempError: 'ignore',
    onMissingEnrichment: 'ignore',
    srs: { secret: '', maxAgeDays: 21 },
  },
  directory: { licenses: 1, acceptedDomains: [], groups: {} },
  ndr: {
    startWindowsMinutes: [1, 2, 3],
    startFactor: 4,
    startMinimum: 4,
    startProbability: 3e-5,
    endWindowMinutes: 5,
    endFactor: 1.5,
    baselineDays: 7,
    floorPerMinute: 0.05,
    updateEveryMinutes: 15,
  },
});

export const DEFAULT_POLICY: Policy = Object.freeze({
  version: 'builtin-1',
  defaults: BUILTIN_DEFAULTS,
  tenants: Object.freeze({}),
});

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !(value instanceof Set)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Collects the validation context: the file and the path of the field being read. */
class Reader {
  readonly file: string;
  readonly path: string;

  constructor(file: string, path: string) {
    this.file = file;
    this.path = path;
  }

  at(key: string | number): Reader {
    return new Reader(this.file, typeof key === 'number' ? `${this.path}[${key}]` : `${this.path}.${key}`);
  }

  error(problem: string): MailpoolsError {
    return new MailpoolsError('MAILPOOLS_ERR_POLICY_INVALID', `${this.file}: ${this.path} ${problem}.`, {
      hint: 'Fix the policy file (see "Tenant policy" in the README); the service does not start with a policy it cannot trust.',
    });
  }

  object(raw: unknown, known: readonly string[]): Record<string, unknown> {
    if (!isObject(raw)) throw this.error('must be an object');
    for (const key of Object.keys(raw))
      if (!known.includes(key))
        throw this.at(key).error(`is not a known setting (one of: ${known.join(', ')})`);
    return raw;
  }

  number(raw: unknown, min: number, max: number, integer = false): number {
    if (typeof raw !== 'number' || !(raw >= min && raw <= max) || (integer && !Number.isInteger(raw)))
      throw this.error(
        `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(raw)}`,
      );
    return raw;
  }

  flag(raw: unknown): boolean {
    if (typeof raw !== 'boolean') throw this.error(`must be true or false, got ${JSON.stringify(raw)}`);
    return raw;
  }

  text(raw: unknown): string {
    if (typeof raw !== 'string' || raw.trim() === '') throw this.error('must be a non-empty string');
    return raw.trim();
  }

  action(raw: unknown): RestrictionAction {
    if (!RESTRICTION_ACTIONS.includes(raw as RestrictionAction))
      throw this.error(`must be one of ${RESTRICTION_ACTIONS.join(', ')}, got ${JSON.stringify(raw)}`);
    return raw as RestrictionAction;
  }

  /** A list of addresses or domains, lower-cased. */
  names(raw: unknown): string[] {
    if (!Array.isArray(raw)) throw this.error('must be a list of strings');
    return raw.map((item, i) => this.at(i).text(item).toLowerCase());
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function spamSection(raw: unknown, base: SpamPolicy, at: Reader): SpamPolicy {
  if (raw === undefined) return base;
  const given = at.object(raw, ['suspiciousAt', 'spamAt', 'onSuspicious', 'profile']);
  const suspiciousAt =
    given.suspiciousAt === undefined
      ? base.suspiciousAt
      : at.at('suspiciousAt').number(given.suspiciousAt, 0, 1);
  const spamAt = given.spamAt === undefined ? base.spamAt : at.at('spamAt').number(given.spamAt, 0, 1);
  if (suspiciousAt > spamAt) throw at.at('suspiciousAt').error(`must not exceed spamAt (${spamAt})`);
  const onSuspicious =
    given.onSuspicious === undefined
      ? base.onSuspicious
      : oneOf(at.at('onSuspicious'), given.onSuspicious, ['normal', 'high-risk'] as const);
  let profile = base.profile;
  if (given.profile !== undefined) {
    const p = at.at('profile').object(given.profile, ['enabled', 'minHistory']);
    profile = {
      enabled:
        p.enabled === undefined ? base.profile.enabled : at.at('profile').at('enabled').flag(p.enabled),
      minHistory:
        p.minHistory === undefined
          ? base.profile.minHistory
          : at.at('profile').at('minHistory').number(p.minHistory, 1, 100_000, true),
    };
  }
  return { suspiciousAt, spamAt, onSuspicious, profile };
}

function thresholds(
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

function outboundSpamPolicy(raw: unknown, directory: TenantDirectory, at: Reader): OutboundSpamPolicy {
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
    action: given.action === undefined ? 'BlockUserForToday' : at.at('action').action(given.action),
    users,
    groups,
    domains,
    groupMembers,
  };
}

function limitsSection(
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
        rate.action === undefined ? base.recipientRateLimit.action : at.at('action').action(rate.action),
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
      action: policy.action === undefined ? base.defaultPolicy.action : at.at('action').action(policy.action),
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

function directorySection(raw: unknown, base: TenantDirectory, at: Reader): TenantDirectory {
  if (raw === undefined) return base;
  const given = at.object(raw, ['licenses', 'acceptedDomains', 'groups']);
  let groups = base.groups;
  if (given.groups !== undefined) {
    const byGroup = at.at('groups').object(given.groups, Object.keys(given.groups as object));
    groups = Object.fromEntries(
      Object.entries(byGroup).map(([group, members]) => [
        group.toLowerCase(),
        at.at('groups').at(group).names(members),
      ]),
    );
  }
  return {
    licenses:
      given.licenses === undefined
        ? base.licenses
        : at.at('licenses').number(given.licenses, 1, 10_000_000, true),
    acceptedDomains:
      given.acceptedDomains === undefined
        ? base.acceptedDomains
        : at.at('acceptedDomains').names(given.acceptedDomains),
    groups,
  };
}

function oneOf<T extends string>(at: Reader, raw: unknown, values: readonly T[]): T {
  if (!values.includes(raw as T))
    throw at.error(`must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

function routingSection(raw: unknown, base: RoutingPolicy, at: Reader): RoutingPolicy {
  if (raw === undefined) return base;
  const given = at.object(raw, [
    'pools',
    'blockedName',
    'rules',
    'overLimit',
    'onDnsTempError',
    'onMissingEnrichment',
    'srs',
  ]);
  let pools = base.pools;
  if (given.pools !== undefined) {
    const byPool = at.at('pools').object(given.pools, POOLS);
    const merged: Record<PoolKey, PoolSettings> = { ...base.pools };
    pools = merged;
    for (const [key, value] of Object.entries(byPool)) {
      const here = at.at('pools').at(key);
      const pool = here.object(value, ['name', 'ips']);
      const basePool = base.pools[key as PoolKey];
      let ips = basePool.ips;
      if (pool.ips !== undefined) {
        if (!Array.isArray(pool.ips)) throw here.at('ips').error('must be a list of { ip, weight }');
        ips = pool.ips.map((item, i) => {
          const entry = here.at('ips').at(i).object(item, ['ip', 'weight']);
          const ip = here.at('ips').at(i).at('ip').text(entry.ip);
          if (!isIP(ip))
            throw here.at('ips').at(i).at('ip').error(`must be an IPv4 or IPv6 address, got "${ip}"`);
          const weight =
            entry.weight === undefined
              ? 1
              : here.at('ips').at(i).at('weight').number(entry.weight, 1, 1_000_000, true);
          return { ip, weight };
        });
      }
      merged[key as PoolKey] = {
        name: pool.name === undefined ? basePool.name : here.at('name').text(pool.name),
        ips,
      };
    }
  }
  let rules = base.rules;
  if (given.rules !== undefined) {
    if (!Array.isArray(given.rules))
      throw at.at('rules').error(`must be a list of rules (${ROUTING_RULES.join(', ')})`);
    rules = given.rules.map((rule, i) => oneOf(at.at('rules').at(i), rule, ROUTING_RULES));
    const twice = rules.find((rule, i) => rules.indexOf(rule) !== i);
    if (twice) throw at.at('rules').error(`names "${twice}" twice`);
  }
  let srs = base.srs;
  if (given.srs !== undefined) {
    const here = at.at('srs');
    const value = here.object(given.srs, ['secret', 'maxAgeDays']);
    const secret = value.secret === undefined ? base.srs.secret : here.at('secret').text(value.secret);
    if (secret.length < 16)
      throw here.at('secret').error('must be at least 16 characters (it signs every rewritten address)');
    srs = {
      secret,
      maxAgeDays:
        value.maxAgeDays === undefined
          ? base.srs.maxAgeDays
          : here.at('maxAgeDays').number(value.maxAgeDays, 1, 365, true),
    };
  }
  return {
    pools,
    blockedName:
      given.blockedName === undefined ? base.blockedName : at.at('blockedName').text(given.blockedName),
    rules,
    overLimit:
      given.overLimit === undefined
        ? base.overLimit
        : oneOf(at.at('overLimit'), given.overLimit, ['blocked', 'high-risk'] as const),
    onDnsTempError:
      given.onDnsTempError === undefined
        ? base.onDnsTempError
        : oneOf(at.at('onDnsTempError'), given.onDnsTempError, ['ignore', 'high-risk'] as const),
    onMissingEnrichment:
      given.onMissingEnrichment === undefined
        ? base.onMissingEnrichment
        : oneOf(at.at('onMissingEnrichment'), given.onMissingEnrichment, ['ignore', 'high-risk'] as const),
    srs,
  };
}

function authSection(raw: unknown, base: AuthPolicy, at: Reader): AuthPolicy {
  if (raw === undefined) return base;
  const given = at.object(raw, ['verifyAll']);
  if (given.verifyAll !== undefined && typeof given.verifyAll !== 'boolean')
    throw at.at('verifyAll').error(`must be true or false, got ${JSON.stringify(given.verifyAll)}`);
  return { verifyAll: (given.verifyAll as boolean | undefined) ?? base.verifyAll };
}

function ndrSection(raw: unknown, base: NdrSurgePolicy, at: Reader): NdrSurgePolicy {
  if (raw === undefined) return base;
  const given = at.object(raw, Object.keys(base));
  const read = (
    key: Exclude<keyof NdrSurgePolicy, 'startWindowsMinutes'>,
    min: number,
    max: number,
    integer = false,
  ) => (given[key] === undefined ? base[key] : at.at(key).number(given[key], min, max, integer));
  let startWindowsMinutes = base.startWindowsMinutes;
  if (given.startWindowsMinutes !== undefined) {
    const here = at.at('startWindowsMinutes');
    if (!Array.isArray(given.startWindowsMinutes) || given.startWindowsMinutes.length === 0)
      throw here.error('must be a non-empty list of minutes');
    startWindowsMinutes = given.startWindowsMinutes.map((m, i) => here.at(i).number(m, 1, 60, true));
  }
  return {
    startWindowsMinutes,
    startFactor: read('startFactor', 1, 1_000),
    startMinimum: read('startMinimum', 1, 100_000, true),
    startProbability: read('startProbability', 1e-12, 0.5),
    endWindowMinutes: read('endWindowMinutes', 1, 120, true),
    endFactor: read('endFactor', 1, 1_000),
    baselineDays: read('baselineDays', 1, 28, true),
    floorPerMinute: read('floorPerMinute', 0.001, 1_000),
    updateEveryMinutes: read('updateEveryMinutes', 1, 1_440, true),
  };
}

function tenantSection(raw: unknown, base: TenantPolicy, at: Reader): TenantPolicy {
  const given = at.object(raw, ['spam', 'limits', 'auth', 'routing', 'directory', 'ndr']);
  const directory = directorySection(given.directory, base.directory, at.at('directory'));
  return deepFreeze({
    spam: spamSection(given.spam, base.spam, at.at('spam')),
    limits: limitsSection(given.limits, base.limits, directory, at.at('limits')),
    auth: authSection(given.auth, base.auth, at.at('auth')),
    routing: routingSection(given.routing, base.routing, at.at('routing')),
    directory,
    ndr: ndrSection(given.ndr, base.ndr, at.at('ndr')),
  });
}

/** Validates a parsed policy document; `file` names it in errors. */
export function compilePolicy(document: unknown, file = 'policy'): Policy {
  const top = new Reader(file, '(top level)');
  if (!isObject(document)) throw top.error('must be an object');
  for (const key of Object.keys(document)) {
    if (!['version', 'defaults', 'tenants'].includes(key))
      throw new Reader(file, key).error('is not a known key');
  }
  const version = new Reader(file, 'version').text(document.version);
  const defaults = tenantSection(document.defaults ?? {}, BUILTIN_DEFAULTS, new Reader(file, 'defaults'));
  const tenantsRaw = document.tenants ?? {};
  if (!isObject(tenantsRaw)) throw new Reader(file, 'tenants').error('must be an object keyed by tenant id');
  const tenants: Record<string, TenantPolicy> = {};
  for (const [tenant, raw] of Object.entries(tenantsRaw))
    tenants[tenant] = tenantSection(raw, defaults, new Reader(file, `tenants.${tenant}`));
  return Object.freeze({ version, defaults, tenants: Object.freeze(tenants) });
}

/** The policy in MAILPOOLS_POLICY_FILE (JSON), or the built-in defaults when unset. */
export function loadPolicy(env: Readonly<Record<string, string | undefined>> = process.env): Policy {
  const file = env.MAILPOOLS_POLICY_FILE;
  if (!file) return DEFAULT_POLICY;
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new MailpoolsError(
      'MAILPOOLS_ERR_POLICY_INVALID',
      `${file} cannot be read as JSON: ${(error as Error).message}.`,
      {
        hint: 'Check MAILPOOLS_POLICY_FILE and the file.',
        cause: error,
      },
    );
  }
  return compilePolicy(document, file);
}

export function tenantPolicy(policy: Policy, tenantId: string): TenantPolicy {
  return policy.tenants[tenantId] ?? policy.defaults;
}

/** Tenant sizes by licence count, the label metrics carry instead of an unbounded tenant id. */
export type TenantClass = 'small' | 'medium' | 'large';

export function tenantClass(licenses: number): TenantClass {
  if (licenses < 300) return 'small';
  return licenses < 5_000 ? 'medium' : 'large';
}

/**
 * The tenant labels of a metric: the tenant id only for tenants the policy file lists (a set the
 * operator controls, so the label stays bounded), `other` for the rest; and the tenant's class.
 */
export function tenantMetricLabels(
  policy: Policy,
  tenantId: string,
): { tenant: string; tenant_class: TenantClass } {
  const listed = policy.tenants[tenantId];
  return {
    tenant: listed ? tenantId : 'other',
    tenant_class: tenantClass((listed ?? policy.defaults).directory.licenses),
  };
}

/**
 * The policy in MAILPOOLS_POLICY_FILE, reloaded when the file changes (checked every
 * `intervalMs`): a valid new version replaces the old one without a restart, an invalid one is
 * reported and the old one stays. Returns the current policy's getter and a stop function.
 */
export function watchPolicy(
  env: Readonly<Record<string, string | undefined>>,
  report: { changed(policy: Policy): void; refused(error: MailpoolsError): void },
  intervalMs = 1_000,
): { current: () => Policy; stop: () => void } {
  const file = env.MAILPOOLS_POLICY_FILE;
  // Stamped before reading, synchronously: a change made right after (even before the first
  // poll) is seen by the next one. fs.watchFile would take its first stat later, and miss it.
  let stamp = file ? fileStamp(file) : '';
  let policy = loadPolicy(env);
  if (!file) return { current: () => policy, stop: () => undefined };
  const timer = setInterval(() => {
    const now = fileStamp(file);
    if (now === stamp) return;
    stamp = now;
    try {
      policy = loadPolicy(env);
      report.changed(policy);
    } catch (error) {
      report.refused(error as MailpoolsError);
    }
  }, intervalMs);
  timer.unref();
  return { current: () => policy, stop: () => clearInterval(timer) };
}

function fileStamp(file: string): string {
  try {
    const { mtimeMs, size, ino } = statSync(file);
    return `${ino}:${size}:${mtimeMs}`;
  } catch {
    return 'missing';
  }
}
