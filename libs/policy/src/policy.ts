// Tenant policy as data (KumoMTA/Rspamd style): platform defaults, then per-tenant overrides,
// validated when loaded — a wrong field fails at start-up naming its path — then frozen. Each
// section lives in its own file (spam, limits, auth, routing, directory, ndr, mta) with its type, its
// built-in defaults and its validation; this file composes them, loads the file and watches it.
import { readFileSync, statSync } from 'node:fs';
import { defineSettings, MailpoolsError } from '@mailpools/core';
import { AUTH_DEFAULTS, type AuthPolicy, authSection } from './auth.ts';
import { DIRECTORY_DEFAULTS, directorySection, type TenantDirectory } from './directory.ts';
import { LIMITS_DEFAULTS, type LimitsPolicy, limitsSection } from './limits.ts';
import { MTA_DEFAULTS, type MtaPolicy, mtaSection } from './mta.ts';
import { NDR_DEFAULTS, type NdrSurgePolicy, ndrSection } from './ndr.ts';
import { deepFreeze, isObject, Reader } from './reader.ts';
import { ROUTING_DEFAULTS, type RoutingPolicy, routingSection } from './routing.ts';
import { SPAM_DEFAULTS, type SpamPolicy, spamSection } from './spam.ts';

export const POLICY_SETTINGS = defineSettings('every service (tenant policy)', {
  MAILPOOLS_POLICY_FILE: {
    default: '',
    doc: 'Tenant policy (JSON, see [policy](policy.md)), reloaded when the file changes; unset: the built-in defaults.',
  },
});

export interface TenantPolicy {
  readonly spam: SpamPolicy;
  readonly limits: LimitsPolicy;
  readonly auth: AuthPolicy;
  readonly routing: RoutingPolicy;
  readonly directory: TenantDirectory;
  readonly ndr: NdrSurgePolicy;
  readonly mta: MtaPolicy;
}

export interface Policy {
  readonly version: string;
  readonly defaults: TenantPolicy;
  readonly tenants: Readonly<Record<string, TenantPolicy>>;
}

const BUILTIN_DEFAULTS: TenantPolicy = deepFreeze({
  spam: SPAM_DEFAULTS,
  limits: LIMITS_DEFAULTS,
  auth: AUTH_DEFAULTS,
  routing: ROUTING_DEFAULTS,
  directory: DIRECTORY_DEFAULTS,
  ndr: NDR_DEFAULTS,
  mta: MTA_DEFAULTS,
});

export const DEFAULT_POLICY: Policy = Object.freeze({
  version: 'builtin-1',
  defaults: BUILTIN_DEFAULTS,
  tenants: Object.freeze({}),
});

function tenantSection(raw: unknown, base: TenantPolicy, at: Reader): TenantPolicy {
  const given = at.object(raw, ['spam', 'limits', 'auth', 'routing', 'directory', 'ndr', 'mta']);
  const directory = directorySection(given.directory, base.directory, at.at('directory'));
  return deepFreeze({
    spam: spamSection(given.spam, base.spam, at.at('spam')),
    limits: limitsSection(given.limits, base.limits, directory, at.at('limits')),
    auth: authSection(given.auth, base.auth, at.at('auth')),
    routing: routingSection(given.routing, base.routing, at.at('routing')),
    directory,
    ndr: ndrSection(given.ndr, base.ndr, at.at('ndr')),
    mta: mtaSection(given.mta, base.mta, at.at('mta')),
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
  const file = POLICY_SETTINGS.text(env, 'MAILPOOLS_POLICY_FILE');
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
  const file = POLICY_SETTINGS.text(env, 'MAILPOOLS_POLICY_FILE');
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
