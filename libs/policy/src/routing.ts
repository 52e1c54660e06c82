// The routing section: the pools, their friendly names and source IPs, the rules in order, SRS.
import { isIP } from 'node:net';
import { oneOf, type Reader } from './reader.ts';

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

export const ROUTING_DEFAULTS: RoutingPolicy = {
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
};

export function routingSection(raw: unknown, base: RoutingPolicy, at: Reader): RoutingPolicy {
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
