// The auth section: auth-verifier's checks.
import type { Reader } from './reader.ts';

export interface AuthPolicy {
  /** Verify every message (the results feed the trace and dashboards), or only forwarded and relayed ones. */
  readonly verifyAll: boolean;
}

export const AUTH_DEFAULTS: AuthPolicy = { verifyAll: true };

export function authSection(raw: unknown, base: AuthPolicy, at: Reader): AuthPolicy {
  if (raw === undefined) return base;
  const given = at.object(raw, ['verifyAll']);
  if (given.verifyAll !== undefined && typeof given.verifyAll !== 'boolean')
    throw at.at('verifyAll').error(`must be true or false, got ${JSON.stringify(given.verifyAll)}`);
  return { verifyAll: (given.verifyAll as boolean | undefined) ?? base.verifyAll };
}
