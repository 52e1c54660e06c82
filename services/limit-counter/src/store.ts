// limit-counter's state in Redis: the batch counting script (count.lua), and the restricted
// senders that admins list and release. Every key starts with `mailpools:<namespace>limits:`, so
// replicas of one deployment share them and tests never see each other's.
import { readFileSync } from 'node:fs';
import { MailpoolsError } from '@mailpools/core';
import type { RestrictionAction } from '@mailpools/policy';
import type { LimitDecision } from '@mailpools/schemas';
import type { Redis } from 'ioredis';

const SCRIPT = readFileSync(new URL('./count.lua', import.meta.url), 'utf8');

/** The thresholds one message is held to, resolved from policy (shared by every event that has the same). */
export interface LimitSet {
  readonly recipientsPerMessage: number;
  readonly tenantExternal: number;
  readonly recipientRate: number;
  readonly recipientRateAction: RestrictionAction;
  readonly externalPerHour: number;
  readonly internalPerHour: number;
  readonly perDay: number;
  readonly policyAction: RestrictionAction;
  readonly messageRatePerMinute: number;
  readonly warnAt: number;
}

/** One event as the script counts it. */
export interface CountInput {
  readonly id: string;
  /** Tenant. */
  readonly tk: string;
  /** Submitter, lower case; '' when there is none (system mail). */
  readonly sub: string;
  /** Event time, epoch ms. */
  readonly t: number;
  /** Recipients: all, external, internal. */
  readonly n: number;
  readonly e: number;
  readonly i: number;
  /** 1 when the message counts toward the tenant's external recipient limit. */
  readonly tc: 0 | 1;
  /** Index of its LimitSet, 1-based (Lua). */
  readonly p: number;
}

/** What the script decided for one event; stored under its message id, so a replay gets the same. */
export interface CountResult {
  readonly duplicate: boolean;
  readonly d: LimitDecision;
  readonly l?: string;
  readonly c?: number;
  readonly th?: number;
  readonly a?: RestrictionAction;
  /** When the restriction ends (absent: until released). */
  readonly ru?: number;
  /** The limit that restricted the sender, when blocked for being restricted. */
  readonly rl?: string;
  /** 1 when this message restricted its submitter. */
  readonly new?: 1;
  readonly du?: number;
  /** Limits at or above the warning share: [limit, count, threshold]. */
  readonly u: readonly (readonly [string, number, number])[];
}

export interface RestrictionEntry {
  readonly tenantId: string;
  readonly sender: string;
  readonly action: RestrictionAction;
  readonly limit: string;
  readonly count: number;
  readonly threshold: number;
  /** Event time of the message that restricted the sender. */
  readonly at: number;
  /** Null: until released. */
  readonly until: number | null;
}

export interface StoreSettings {
  /** `mailpools:<namespace>limits:` */
  readonly prefix: string;
  /** How late an event may be and still count at its own time. */
  readonly graceMs: number;
  /** How long a message id is remembered, so that a replay counts nothing. */
  readonly dedupTtlSeconds: number;
  /** Furthest a throttled message is deferred. */
  readonly maxDeferMinutes: number;
}

/** A submitter's sliding sums at its latest event time (what the next event there would be added to). */
export interface SenderUsage {
  /** The submitter's latest event time; null when nothing was counted. */
  readonly at: number | null;
  readonly recipients24h: number;
  readonly external1h: number;
  readonly internal1h: number;
  /** The tenant's external recipients in the 24 hours to the tenant's own latest event time. */
  readonly tenantExternal24h: number;
  /** Messages counted in (or deferred to) each calendar minute still kept, by epoch minute. */
  readonly messagesPerMinute: Readonly<Record<number, number>>;
}

export interface LimitStore {
  count(limitSets: readonly LimitSet[], inputs: readonly CountInput[]): Promise<CountResult[]>;
  restrictions(): Promise<RestrictionEntry[]>;
  /** Lifts a restriction; undefined when the sender was not restricted. */
  release(tenantId: string, sender: string): Promise<RestrictionEntry | undefined>;
  usage(tenantId: string, sender: string): Promise<SenderUsage>;
  /** Redis calls the counting has made so far (a script call is one); listing and releasing are not counted. */
  readonly roundTrips: () => number;
}

type Scripted = Redis & { mailpoolsCount(prefix: string, ...args: string[]): Promise<[number, string][]> };

export function limitsPrefix(namespace: string): string {
  return `mailpools:${namespace}limits:`;
}

/** Redis being away is transient (retry, pause the partition); a failing script is a bug. */
function redisError(error: unknown): MailpoolsError {
  const message = error instanceof Error ? error.message : String(error);
  if (/^ERR .*(script|Lua)/i.test(message))
    return new MailpoolsError('MAILPOOLS_ERR_LIMITS_SCRIPT', `The counting script failed: ${message}`, {
      hint: 'This is a bug in limit-counter; the records are dead-lettered with this message.',
      cause: error,
    });
  return new MailpoolsError('MAILPOOLS_ERR_REDIS_UNAVAILABLE', `Redis did not answer: ${message}.`, {
    hint: 'Check REDIS_URL and that Redis is up; the partition pauses and retries meanwhile, nothing is dropped.',
    cause: error,
  });
}

function parseEntry(field: string, raw: string): RestrictionEntry {
  const slash = field.indexOf('/');
  const stored = JSON.parse(raw) as {
    a: RestrictionAction;
    l: string;
    c: number;
    th: number;
    at: number;
    until?: number;
  };
  return {
    tenantId: field.slice(0, slash),
    sender: field.slice(slash + 1),
    action: stored.a,
    limit: stored.l,
    count: stored.c,
    threshold: stored.th,
    at: stored.at,
    until: stored.until ?? null,
  };
}

/** count.lua's state of one window owner (its JSON at <base>:s), or undefined when it has none. */
async function stateOf(redis: Redis, base: string): Promise<Record<string, number> | undefined> {
  const raw = await redis.get(`${base}:s`);
  return raw === null ? undefined : (JSON.parse(raw) as Record<string, number>);
}

/** The running totals of one window less the grace band behind it: the window ending at the watermark. */
async function windowSums(redis: Redis, base: string, window: 'd' | 'h', widthMs: number, graceMs: number) {
  const state = await stateOf(redis, base);
  const at = state?.wm ?? null;
  const sums = {
    at,
    n: state?.[`${window}n`] ?? 0,
    e: state?.[`${window}e`] ?? 0,
    i: state?.[`${window}i`] ?? 0,
  };
  if (at === null) return sums;
  for (const member of await redis.zrangebyscore(`${base}:z`, `(${at - widthMs - graceMs}`, at - widthMs)) {
    const [n, e, i] = (member.split('|')[0] as string).split(',').map(Number) as [number, number, number];
    sums.n -= n;
    sums.e -= e;
    sums.i -= i;
  }
  return sums;
}

export function createLimitStore(redis: Redis, settings: StoreSettings): LimitStore {
  const scripted = redis as Scripted;
  if (!('mailpoolsCount' in scripted))
    redis.defineCommand('mailpoolsCount', { numberOfKeys: 0, lua: SCRIPT });
  const restrictedKey = `${settings.prefix}restricted`;
  const scriptSettings = JSON.stringify({
    grace: settings.graceMs,
    dedupTtl: settings.dedupTtlSeconds,
    maxDeferMinutes: settings.maxDeferMinutes,
    // Windows outlive their day, the grace period and the furthest deferral.
    keyTtl: Math.ceil((2 * 86_400_000 + settings.graceMs + settings.maxDeferMinutes * 60_000) / 1000),
  });
  let roundTrips = 0;

  return {
    async count(limitSets, inputs) {
      if (inputs.length === 0) return [];
      roundTrips++;
      let replies: [number, string][];
      try {
        replies = await scripted.mailpoolsCount(
          settings.prefix,
          scriptSettings,
          JSON.stringify(limitSets),
          JSON.stringify(inputs),
        );
      } catch (error) {
        throw redisError(error);
      }
      return replies.map(([duplicate, json]) => {
        const result = JSON.parse(json) as Omit<CountResult, 'duplicate'>;
        // cjson writes an empty list as {}.
        return { ...result, u: Array.isArray(result.u) ? result.u : [], duplicate: duplicate === 1 };
      });
    },

    async restrictions() {
      const all = await redis.hgetall(restrictedKey).catch((error: unknown) => {
        throw redisError(error);
      });
      return Object.entries(all)
        .map(([field, raw]) => parseEntry(field, raw))
        .sort((a, b) => a.at - b.at);
    },

    async release(tenantId, sender) {
      const field = `${tenantId}/${sender.toLowerCase()}`;
      const [[, raw], [, removed]] = (await redis
        .multi()
        .hget(restrictedKey, field)
        .hdel(restrictedKey, field)
        .exec()
        .catch((error: unknown) => {
          throw redisError(error);
        })) as [[null, string | null], [null, number]];
      return raw && removed === 1 ? parseEntry(field, raw) : undefined;
    },

    async usage(tenantId, sender) {
      const subject = `${settings.prefix}s:${tenantId}/${sender.toLowerCase()}`;
      const [sender24h, sender1h, tenant24h] = await Promise.all([
        windowSums(redis, subject, 'd', 86_400_000, settings.graceMs),
        windowSums(redis, subject, 'h', 3_600_000, settings.graceMs),
        windowSums(redis, `${settings.prefix}t:${tenantId}`, 'd', 86_400_000, settings.graceMs),
      ]).catch((error: unknown) => {
        throw redisError(error);
      });
      const state = await stateOf(redis, subject).catch((error: unknown) => {
        throw redisError(error);
      });
      const messagesPerMinute: Record<number, number> = {};
      for (const [field, value] of Object.entries(state ?? {})) {
        const minute = /^m(-?\d+)$/.exec(field)?.[1];
        if (minute !== undefined) messagesPerMinute[Number(minute)] = value;
      }
      return {
        at: sender24h.at,
        messagesPerMinute,
        recipients24h: sender24h.n,
        external1h: sender1h.e,
        internal1h: sender1h.i,
        tenantExternal24h: tenant24h.e,
      };
    },

    roundTrips: () => roundTrips,
  };
}
