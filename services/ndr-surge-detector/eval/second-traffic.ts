// A second NDR traffic generator, written apart from traffic.ts so that the detector is not judged
// only on the shapes it was built on. Where the first has log-uniform tenant sizes, many senders,
// one shared daily rhythm and surges of at least 3 NDRs a minute, this one has:
// - small tenants (log-normal sizes, median 0.2 NDRs a minute) with about 20 senders each, a few
//   of whom send most of the mail;
// - each tenant in its own time zone: working hours, evenings, long quiet nights, quiet weekends;
// - surges of 3–20× the tenant's mean rate starting at any moment, with no floor: a small tenant's
//   surge may add less than one NDR a minute;
// - harvests spread over two to five domains, half of them run from a compromised account of the
//   tenant (the platform sent the probes); spoofing with DMARC rejections among its codes; spam
//   attacks from one to three senders; rogue servers on a connector the tenant rarely used.
import { seededRandom } from '@mailpools/core';
import type { NdrFact } from '../src/detect.ts';
import type { InjectedSurge, Traffic, TrafficOptions } from './traffic.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

interface Tenant {
  readonly id: string;
  /** Mean NDRs a minute over a week. */
  readonly perMinute: number;
  readonly utcOffsetHours: number;
  readonly domains: readonly string[];
  /** Cumulative weights of its senders (Zipf-like). */
  readonly senders: readonly { address: string; cumulative: number }[];
  readonly connectors: readonly string[];
}

/** Activity relative to the week's mean at a tenant's local time. */
function activity(tenant: Pick<Tenant, 'utcOffsetHours'>, atMs: number): number {
  const local = atMs + tenant.utcOffsetHours * HOUR;
  const weekday = Math.floor(local / DAY + 4) % 7; // 1970-01-01 was a Thursday: 0 = Sunday
  const hour = (local % DAY) / HOUR;
  const level = hour >= 8 && hour < 18 ? 2.2 : hour >= 18 && hour < 23 ? 0.7 : 0.12;
  const weekend = weekday === 0 || weekday === 6 ? 0.35 : 1;
  // Mean of level × weekend over a week, so that the rate averages perMinute.
  const weekMean = ((10 * 2.2 + 5 * 0.7 + 9 * 0.12) / 24) * ((5 + 2 * 0.35) / 7);
  return (level * weekend) / weekMean;
}

function poisson(lambda: number, random: () => number): number {
  if (lambda <= 0) return 0;
  if (lambda > 40) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal(random)));
  let k = 0;
  for (let p = random(), limit = Math.exp(-lambda); p > limit; p *= random()) k++;
  return k;
}

function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.sin(2 * Math.PI * random());
}

const NORMAL_STATUSES: readonly [string, number][] = [
  ['5.1.1', 0.32],
  ['5.2.2', 0.15],
  ['4.4.7', 0.1],
  ['5.7.1', 0.12],
  ['5.4.1', 0.05],
  ['5.2.1', 0.05],
  ['5.0.0', 0.06],
  ['4.2.2', 0.05],
  ['5.7.26', 0.04],
  ['5.4.4', 0.06],
];

export function generateSecondTraffic(options: TrafficOptions): Traffic {
  const random = seededRandom(options.seed * 7919 + 13);
  const pickWeighted = (list: readonly [string, number][]) => {
    let r = random() * list.reduce((sum, [, w]) => sum + w, 0);
    for (const [value, weight] of list) {
      r -= weight;
      if (r <= 0) return value;
    }
    return (list[0] as [string, number])[0];
  };
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;

  const tenants: Tenant[] = Array.from({ length: options.tenants }, (_, i) => {
    const count = Math.max(3, Math.round(20 * Math.exp(0.5 * normal(random))));
    let total = 0;
    const weights = Array.from({ length: count }, (_, k) => 1 / (k + 1) ** 1.1);
    const sum = weights.reduce((a, b) => a + b, 0);
    const domains = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, k) => `org${i}-${k}.test`);
    return {
      id: `org${i}`,
      perMinute: 0.2 * Math.exp(1.1 * normal(random)),
      utcOffsetHours: Math.round(random() * 17) - 8,
      domains,
      senders: weights.map((w, k) => {
        total += w / sum;
        return { address: `person${k}@${domains[0]}`, cumulative: total };
      }),
      connectors: ['submission', 'submission', 'submission', `connector-${i}-a`],
    };
  });
  const senderOf = (tenant: Tenant) => {
    const r = random();
    return (tenant.senders.find((s) => s.cumulative >= r) ?? tenant.senders.at(-1))?.address ?? '';
  };

  const causes: InjectedSurge['cause'][] = ['SPOOFING', 'DIRECTORY_HARVEST', 'SPAM_ATTACK', 'ROGUE_SERVER'];
  interface Planned extends InjectedSurge {
    readonly fromAccount: string | null;
    /** The accounts a spam attack sends from. */
    readonly attackers: readonly string[];
    readonly domains: readonly string[];
    readonly source: string;
    readonly extraPerMinute: number;
  }
  const surges: Planned[] = [];
  for (const tenant of tenants) {
    for (let s = 0; s < options.surgesPerTenant; s++) {
      const earliest = options.start + options.warmUpDays * DAY;
      const start = earliest + Math.floor(random() * ((options.days - options.warmUpDays) * DAY - 2 * HOUR));
      const strength = 3 + random() * 17;
      const cause = pick(causes);
      const targetDomains = Array.from(
        { length: 2 + Math.floor(random() * 4) },
        (_, k) => `${k % 2 ? 'partner' : 'provider'}${Math.floor(random() * 400)}.example`,
      );
      surges.push({
        tenantId: tenant.id,
        cause,
        start,
        end: start + (10 + Math.floor(random() * 80)) * MINUTE,
        strength,
        fromAccount: cause === 'DIRECTORY_HARVEST' && random() < 0.5 ? senderOf(tenant) : null,
        attackers: Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(tenant.senders).address),
        domains: targetDomains,
        source: random() < 0.5 ? (tenant.connectors[3] as string) : `203.0.113.${Math.floor(random() * 250)}`,
        extraPerMinute: (strength - 1) * tenant.perMinute,
      });
    }
  }

  let serial = 0;
  function normalNdr(tenant: Tenant, at: number): NdrFact {
    const provider = random() < 0.3 ? `bigmail${Math.floor(random() * 3)}.example` : null;
    return {
      id: `o${serial++}`,
      tenantId: tenant.id,
      at,
      status: pickWeighted(NORMAL_STATUSES),
      finalRecipient: `r${Math.floor(random() * 20_000)}@${provider ?? `dest${Math.floor(random() * 2_000)}.example`}`,
      originalKnown: random() < 0.95,
      originalSender: senderOf(tenant),
      originalSource: pick(tenant.connectors),
    };
  }

  function surgeNdr(surge: Planned, tenant: Tenant, at: number): NdrFact {
    const base = normalNdr(tenant, at);
    const guessed = `${Math.floor(random() * 36 ** 6).toString(36)}`;
    switch (surge.cause) {
      case 'SPOOFING':
        return {
          ...base,
          originalKnown: false,
          originalSender: null,
          originalSource: null,
          status: pickWeighted([
            ['5.7.26', 0.3],
            ['5.7.1', 0.25],
            ['5.1.1', 0.25],
            ['5.2.2', 0.1],
            ['4.4.7', 0.1],
          ]),
        };
      case 'DIRECTORY_HARVEST':
        if (surge.fromAccount)
          // A compromised account probing other organisations' directories.
          return {
            ...base,
            originalKnown: true,
            originalSender: surge.fromAccount,
            status: pickWeighted([
              ['5.1.1', 0.7],
              ['5.1.10', 0.15],
              ['5.4.1', 0.1],
              ['5.2.1', 0.05],
            ]),
            finalRecipient: `${guessed}@${pick(surge.domains)}`,
          };
        // Guessed addresses across the tenant's own domains, answered by the platform.
        return {
          ...base,
          originalKnown: false,
          originalSender: null,
          originalSource: null,
          status: pickWeighted([
            ['5.1.1', 0.8],
            ['5.1.10', 0.1],
            ['5.4.1', 0.1],
          ]),
          finalRecipient: `${guessed}@${pick(tenant.domains.length > 1 ? tenant.domains : surge.domains)}`,
        };
      case 'SPAM_ATTACK':
        return {
          ...base,
          originalKnown: true,
          originalSender: pick(surge.attackers),
          status: pickWeighted([
            ['5.7.1', 0.45],
            ['5.7.509', 0.1],
            ['5.7.350', 0.1],
            ['5.7.708', 0.1],
            ['5.1.1', 0.15],
            ['5.2.2', 0.1],
          ]),
        };
      case 'ROGUE_SERVER':
        return {
          ...base,
          originalKnown: true,
          originalSource: surge.source,
          originalSender: `device${Math.floor(random() * 30)}@${pick(tenant.domains)}`,
          status: pickWeighted([...NORMAL_STATUSES, ['5.7.23', 0.2]]),
        };
    }
  }

  const byTenant = new Map<string, Planned[]>();
  for (const surge of surges) byTenant.set(surge.tenantId, [...(byTenant.get(surge.tenantId) ?? []), surge]);
  return {
    tenants: tenants.map((t) => ({ id: t.id, perMinute: t.perMinute })),
    surges,
    minutes: options.days * 1_440,
    expectedPerMinute: (tenantId, atMs) => {
      const tenant = tenants.find((t) => t.id === tenantId);
      return tenant ? tenant.perMinute * activity(tenant, atMs) : 0;
    },
    extraPerMinute: (surge) => (surge as Planned).extraPerMinute,
    minute(index) {
      const minuteStart = options.start + index * MINUTE;
      const facts: NdrFact[] = [];
      for (const tenant of tenants) {
        const expected = tenant.perMinute * activity(tenant, minuteStart);
        for (let k = poisson(expected, random); k > 0; k--)
          facts.push(normalNdr(tenant, minuteStart + Math.floor(random() * MINUTE)));
        for (const surge of byTenant.get(tenant.id) ?? []) {
          const from = Math.max(minuteStart, surge.start);
          const to = Math.min(minuteStart + MINUTE, surge.end);
          if (from >= to) continue;
          for (let k = poisson(surge.extraPerMinute * ((to - from) / MINUTE), random); k > 0; k--)
            facts.push(surgeNdr(surge, tenant, from + Math.floor(random() * (to - from))));
        }
      }
      return facts.sort((a, b) => a.at - b.at);
    },
  };
}
