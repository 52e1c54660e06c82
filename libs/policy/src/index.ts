// Tenant policy as data (KumoMTA/Rspamd style): platform defaults, then per-tenant overrides,
// validated when loaded — a wrong field fails at start-up naming its path — then frozen.
// Each service reads only its own section; sections grow with the services that need them.
import { readFileSync } from 'node:fs';
import { MailpoolsError } from '@mailpools/core';

export interface SpamPolicy {
  /** Score from which a message is labelled SUSPICIOUS. */
  readonly suspiciousAt: number;
  /** Score from which a message is labelled SPAM. */
  readonly spamAt: number;
}

export interface TenantPolicy {
  readonly spam: SpamPolicy;
}

export interface Policy {
  readonly version: string;
  readonly defaults: TenantPolicy;
  readonly tenants: Readonly<Record<string, TenantPolicy>>;
}

export const DEFAULT_POLICY: Policy = Object.freeze({
  version: 'builtin-1',
  defaults: Object.freeze({ spam: Object.freeze({ suspiciousAt: 0.2, spamAt: 0.5 }) }),
  tenants: Object.freeze({}),
});

function policyError(path: string, problem: string, file: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_POLICY_INVALID', `${file}: ${path} ${problem}.`, {
    hint: 'Fix the policy file (see "Tenant policy" in the README); the service does not start with a policy it cannot trust.',
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function spamSection(raw: unknown, base: SpamPolicy, path: string, file: string): SpamPolicy {
  if (raw === undefined) return base;
  if (!isObject(raw)) throw policyError(path, 'must be an object', file);
  for (const key of Object.keys(raw)) {
    if (key !== 'suspiciousAt' && key !== 'spamAt')
      throw policyError(`${path}.${key}`, 'is not a known setting', file);
  }
  const merged = { ...base, ...raw } as Record<string, unknown>;
  for (const key of ['suspiciousAt', 'spamAt']) {
    const value = merged[key];
    if (typeof value !== 'number' || !(value >= 0 && value <= 1))
      throw policyError(`${path}.${key}`, `must be a number from 0 to 1, got ${JSON.stringify(value)}`, file);
  }
  const spam = merged as unknown as SpamPolicy;
  if (spam.suspiciousAt > spam.spamAt)
    throw policyError(`${path}.suspiciousAt`, `must not exceed spamAt (${spam.spamAt})`, file);
  return Object.freeze({ suspiciousAt: spam.suspiciousAt, spamAt: spam.spamAt });
}

function tenantSection(raw: unknown, base: TenantPolicy, path: string, file: string): TenantPolicy {
  if (!isObject(raw)) throw policyError(path, 'must be an object', file);
  for (const key of Object.keys(raw))
    if (key !== 'spam') throw policyError(`${path}.${key}`, 'is not a known section', file);
  return Object.freeze({ spam: spamSection(raw.spam, base.spam, `${path}.spam`, file) });
}

/** Validates a parsed policy document; `file` names it in errors. */
export function compilePolicy(document: unknown, file = 'policy'): Policy {
  if (!isObject(document)) throw policyError('(top level)', 'must be an object', file);
  for (const key of Object.keys(document)) {
    if (!['version', 'defaults', 'tenants'].includes(key)) throw policyError(key, 'is not a known key', file);
  }
  if (typeof document.version !== 'string' || document.version === '')
    throw policyError('version', 'must be a non-empty string', file);
  const defaults = tenantSection(document.defaults ?? {}, DEFAULT_POLICY.defaults, 'defaults', file);
  const tenantsRaw = document.tenants ?? {};
  if (!isObject(tenantsRaw)) throw policyError('tenants', 'must be an object keyed by tenant id', file);
  const tenants: Record<string, TenantPolicy> = {};
  for (const [tenant, raw] of Object.entries(tenantsRaw))
    tenants[tenant] = tenantSection(raw, defaults, `tenants.${tenant}`, file);
  return Object.freeze({ version: document.version, defaults, tenants: Object.freeze(tenants) });
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
