// The routing section: the pools, their friendly names and source IPs, the rules in order, SRS.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { oneOf, type Reader } from './reader.ts';

export const POOLS = ['NORMAL', 'HIGH_RISK', 'RELAY'] as const;
export type PoolKey = (typeof POOLS)[number];

export interface SourceIp {
  readonly ip: string;
  readonly weight: number;
  /** The name this IP greets with (EHLO), when not the pool's; its PTR record should say the same. */
  readonly helo?: string;
}

export interface PoolSettings {
  /** The friendly name a message trace shows, in the style of RegularRelayOutboundPool. */
  readonly name: string;
  /** The EHLO name of the pool's IPs that do not name their own. */
  readonly helo: string;
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
    NORMAL: { name: 'RegularRelayOutboundPool', helo: 'outbound.mailpools.invalid', ips: [] },
    HIGH_RISK: { name: 'HighRiskRelayOutboundPool', helo: 'outbound-hr.mailpools.invalid', ips: [] },
    RELAY: { name: 'ForwardedRelayOutboundPool', helo: 'relay.mailpools.invalid', ips: [] },
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
      const pool = here.object(value, ['name', 'helo', 'ips']);
      const basePool = base.pools[key as PoolKey];
      const helo = pool.helo === undefined ? basePool.helo : hostname(here.at('helo'), pool.helo);
      let ips = basePool.ips;
      if (pool.ips !== undefined) {
        if (!Array.isArray(pool.ips)) throw here.at('ips').error('must be a list of { ip, weight }');
        ips = pool.ips.map((item, i) => {
          const entry = here.at('ips').at(i).object(item, ['ip', 'weight', 'helo']);
          const ip = here.at('ips').at(i).at('ip').text(entry.ip);
          if (!isIP(ip))
            throw here.at('ips').at(i).at('ip').error(`must be an IPv4 or IPv6 address, got "${ip}"`);
          const weight =
            entry.weight === undefined
              ? 1
              : here.at('ips').at(i).at('weight').number(entry.weight, 1, 1_000_000, true);
          if (entry.helo === undefined) return { ip, weight };
          return { ip, weight, helo: hostname(here.at('ips').at(i).at('helo'), entry.helo) };
        });
      }
      merged[key as PoolKey] = {
        name: pool.name === undefined ? basePool.name : here.at('name').text(pool.name),
        helo,
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

/** A HELO name: a fully qualified host name (RFC 5321 4.1.1.1), as the IP's PTR record gives it. */
function hostname(at: Reader, raw: unknown): string {
  const name = at.text(raw).toLowerCase();
  const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  if (name.length > 253 || !name.includes('.') || !name.split('.').every((part) => label.test(part)))
    throw at.error(`must be a fully qualified host name such as mta1.example.net, got "${name}"`);
  return name;
}

/** One of the pool's IPs, by weight; the same message always gets the same one. */
export function chooseSourceIp(messageId: string, ips: readonly SourceIp[]): SourceIp | null {
  const total = ips.reduce((sum, entry) => sum + entry.weight, 0);
  if (total === 0) return null;
  let point = createHash('sha256').update(messageId).digest().readUInt32BE(0) % total;
  for (const entry of ips) {
    if (point < entry.weight) return entry;
    point -= entry.weight;
  }
  return ips[ips.length - 1] ?? null;
}
