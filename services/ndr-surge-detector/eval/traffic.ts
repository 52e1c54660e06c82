// A seeded generator of NDR traffic: tenants of different sizes, each with a daily rhythm
// (quiet nights, busy working hours) and Poisson noise, and surges of each cause injected at
// different strengths on top. Every NDR looks like what that situation produces: backscatter for
// spoofing, unknown users at one domain for a harvest, spam rejections of a few submitters'
// mail for a spam attack, bounces of mail from one connector for a rogue server.
import { seededRandom } from '@mailpools/core';
import type { SurgeCause } from '@mailpools/schemas';
import type { NdrFact } from '../src/detect.ts';

const MINUTE = 60_000;
const DAY = 86_400_000;

export interface InjectedSurge {
  readonly tenantId: string;
  readonly cause: Exclude<SurgeCause, 'UNKNOWN'>;
  readonly start: number;
  readonly end: number;
  /** Multiple of the tenant's baseline at that time. */
  readonly strength: number;
}

export interface TrafficOptions {
  readonly seed: number;
  readonly tenants: number;
  readonly days: number;
  /** Days at the start without surges, for the baselines to learn. */
  readonly warmUpDays: number;
  readonly surgesPerTenant: number;
  readonly strengths: readonly number[];
  readonly start: number;
}

function poisson(lambda: number, random: () => number): number {
  if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * gaussian(random)));
  const limit = Math.exp(-lambda);
  let k = 0;
  let p = random();
  while (p > limit) {
    k++;
    p *= random();
  }
  return k;
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
}

/** The daily rhythm: 0.25 at night, about 1.75 mid-afternoon UTC, mean 1. */
export function rhythm(atMs: number): number {
  const hour = (atMs % DAY) / 3_600_000;
  return 1 + 0.75 * Math.sin(((hour - 9) / 24) * 2 * Math.PI);
}

const CAUSES: InjectedSurge['cause'][] = ['SPOOFING', 'DIRECTORY_HARVEST', 'SPAM_ATTACK', 'ROGUE_SERVER'];
const STATUSES = ['5.1.1', '5.1.1', '5.2.2', '5.4.1', '4.4.7', '5.7.1', '5.2.1', '5.1.10'];

export interface Traffic {
  readonly tenants: { id: string; perMinute: number }[];
  readonly surges: InjectedSurge[];
  /** NDRs of one minute, in time order. */
  minute(index: number): NdrFact[];
  readonly minutes: number;
  /** The tenant's normal NDRs a minute at that moment (what a perfect baseline would know). */
  expectedPerMinute(tenantId: string, atMs: number): number;
  /** The NDRs a minute a surge adds on top at its start. */
  extraPerMinute(surge: InjectedSurge): number;
}

export function generateTraffic(options: TrafficOptions): Traffic {
  const random = seededRandom(options.seed);
  // Sizes spread over two orders of magnitude (log-uniform): 0.1 to 10 NDRs a minute on average.
  const tenants = Array.from({ length: options.tenants }, (_, i) => ({
    id: `tenant${i}`,
    perMinute: 0.1 * 100 ** random(),
  }));
  const minutes = options.days * 1_440;
  const surges: InjectedSurge[] = [];
  for (const tenant of tenants) {
    for (let s = 0; s < options.surgesPerTenant; s++) {
      const startMinute =
        options.warmUpDays * 1_440 +
        Math.floor(random() * ((options.days - options.warmUpDays) * 1_440 - 120));
      // Campaigns do not wait for a minute to begin.
      const start = options.start + startMinute * MINUTE + Math.floor(random() * MINUTE);
      const duration = (20 + Math.floor(random() * 40)) * MINUTE;
      surges.push({
        tenantId: tenant.id,
        cause: CAUSES[Math.floor(random() * CAUSES.length)] as InjectedSurge['cause'],
        start,
        end: start + duration,
        strength: options.strengths[Math.floor(random() * options.strengths.length)] as number,
      });
    }
  }
  let serial = 0;
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;

  function normalNdr(tenantId: string, at: number): NdrFact {
    return {
      id: `n${serial++}`,
      tenantId,
      at,
      status: pick(STATUSES),
      finalRecipient: `user${Math.floor(random() * 5_000)}@dest${Math.floor(random() * 300)}.example`,
      originalKnown: random() < 0.92,
      originalSender: `staff${Math.floor(random() * 200)}@${tenantId}.example`,
      originalSource:
        random() < 0.2 ? `connector-${Math.floor(random() * 3)}` : `198.51.100.${Math.floor(random() * 250)}`,
    };
  }

  function surgeNdr(surge: InjectedSurge, at: number): NdrFact {
    const base = normalNdr(surge.tenantId, at);
    switch (surge.cause) {
      case 'SPOOFING':
        return {
          ...base,
          originalKnown: false,
          originalSender: null,
          originalSource: null,
          status: pick(['5.1.1', '5.7.1', '5.4.1', '5.2.2']),
        };
      case 'DIRECTORY_HARVEST':
        return {
          ...base,
          status: pick(['5.1.1', '5.1.1', '5.1.10']),
          finalRecipient: `${Math.floor(random() * 1e9).toString(36)}@${surge.tenantId}.example`,
          originalKnown: false,
          originalSender: `probe${Math.floor(random() * 1e6)}@spam.example`,
        };
      case 'SPAM_ATTACK':
        return {
          ...base,
          status: pick(['5.7.1', '5.7.1', '5.7.509', '5.1.1']),
          originalKnown: true,
          originalSender: `compromised${Math.floor(random() * 2)}@${surge.tenantId}.example`,
        };
      case 'ROGUE_SERVER':
        return {
          ...base,
          originalKnown: true,
          originalSource: 'onprem-connector-7',
          status: pick(STATUSES),
          originalSender: `app${Math.floor(random() * 50)}@${surge.tenantId}.example`,
        };
    }
  }

  const surgesByTenant = new Map<string, InjectedSurge[]>();
  for (const surge of surges)
    surgesByTenant.set(surge.tenantId, [...(surgesByTenant.get(surge.tenantId) ?? []), surge]);

  const perMinuteOf = (tenantId: string) => tenants.find((t) => t.id === tenantId)?.perMinute ?? 0;
  return {
    tenants,
    surges,
    minutes,
    expectedPerMinute: (tenantId, atMs) => perMinuteOf(tenantId) * rhythm(atMs),
    // (strength - 1) × the tenant's rate then, at least 3: see minute() below.
    extraPerMinute: (surge) =>
      Math.max(3, (surge.strength - 1) * perMinuteOf(surge.tenantId) * rhythm(surge.start)),
    minute(index) {
      const minuteStart = options.start + index * MINUTE;
      const facts: NdrFact[] = [];
      for (const tenant of tenants) {
        const expected = tenant.perMinute * rhythm(minuteStart);
        for (let k = poisson(expected, random); k > 0; k--)
          facts.push(normalNdr(tenant.id, minuteStart + Math.floor(random() * MINUTE)));
        for (const surge of surgesByTenant.get(tenant.id) ?? []) {
          const from = Math.max(minuteStart, surge.start);
          const to = Math.min(minuteStart + MINUTE, surge.end);
          if (from >= to) continue;
          // On top of the normal traffic: (strength - 1) × the baseline, and at least 3 a minute:
          // a campaign that a human would call a surge.
          const extra = Math.max(3, (surge.strength - 1) * expected) * ((to - from) / MINUTE);
          for (let k = poisson(extra, random); k > 0; k--)
            facts.push(surgeNdr(surge, from + Math.floor(random() * (to - from))));
        }
      }
      return facts.sort((a, b) => a.at - b.at);
    },
  };
}
