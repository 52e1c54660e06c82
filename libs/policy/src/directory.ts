// The directory section: what the platform knows of a tenant (licences, accepted domains, groups).
import type { Reader } from './reader.ts';

/** What the platform knows of a tenant. */
export interface TenantDirectory {
  readonly licenses: number;
  /** The tenant's accepted domains (lower case); mail from them can be vouched for. */
  readonly acceptedDomains: readonly string[];
  /** Group address → member addresses (lower case). */
  readonly groups: Readonly<Record<string, readonly string[]>>;
}

export const DIRECTORY_DEFAULTS: TenantDirectory = { licenses: 1, acceptedDomains: [], groups: {} };

export function directorySection(raw: unknown, base: TenantDirectory, at: Reader): TenantDirectory {
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
