// Where the bridge hands a judged message back to Postfix. Postfix picks a transport per message
// only through FILTER, so every source IP gets a re-injection listener of its own whose
// content_filter is a transport bound to that IP with its HELO name. The listeners follow each
// other from a base port, in an order both the Postfix configuration and the bridge compute from
// the routing policy: the hold listener (throttled mail, back to the bridge until its time), the
// default-address listener (normal mail when the normal pool lists no IP), then every distinct
// (IP, HELO) of every pool of the defaults and of every tenant.
import type { Policy, PoolKey, TenantPolicy } from '@mailpools/policy';
import { POOLS } from '@mailpools/policy';

export interface SourceRoute {
  readonly ip: string;
  readonly helo: string;
  /** The master.cf transport bound to this IP. */
  readonly transport: string;
  readonly port: number;
}

export interface Routes {
  /** Throttled mail: queued by Postfix, handed back to the bridge until its not-before time. */
  readonly holdPort: number;
  /** Normal mail when the normal pool names no IP: sent from the instance's own address. */
  readonly defaultPort: number;
  readonly sources: readonly SourceRoute[];
}

export function routesOf(policy: Policy, basePort: number): Routes {
  const seen = new Map<string, SourceRoute>();
  const tenants: TenantPolicy[] = [policy.defaults, ...Object.values(policy.tenants)];
  for (const tenant of tenants)
    for (const pool of POOLS as readonly PoolKey[])
      for (const source of tenant.routing.pools[pool].ips) {
        const helo = source.helo ?? tenant.routing.pools[pool].helo;
        const key = `${source.ip} ${helo}`;
        if (seen.has(key)) continue;
        const index = seen.size;
        seen.set(key, { ip: source.ip, helo, transport: `mailpools_ip${index}`, port: basePort + 2 + index });
      }
  return { holdPort: basePort, defaultPort: basePort + 1, sources: [...seen.values()] };
}

/** The listener of an assignment's source IP and HELO, if the configuration has one. */
export function routeFor(routes: Routes, ip: string, helo: string | null): SourceRoute | undefined {
  return routes.sources.find((s) => s.ip === ip && (helo === null || s.helo === helo));
}
