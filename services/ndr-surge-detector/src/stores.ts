// The two places the detector keeps its counts: memory (the evaluation's simulated weeks, tests)
// and Redis (the service: shared by every replica, so a tenant's NDRs may arrive at any of them).
// Both keep per-minute buckets for a day and hourly counts for the baseline's days.
import type { Redis } from 'ioredis';
import {
  emptyWindow,
  type NdrFact,
  type NdrStore,
  PLATFORM,
  type SurgeState,
  scopesOf,
  type WindowStats,
} from './detect.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;

export function isUnknownUser(status: string): boolean {
  // 5.4.1: "recipient address rejected: access denied", how Exchange Online's directory-based
  // edge blocking refuses an address it does not know.
  return /^5\.1\.(1|10)$/.test(status) || status === '5.4.1';
}

export function isPolicyReject(status: string): boolean {
  return status.startsWith('5.7.');
}

const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

interface MinuteBucket {
  total: number;
  unknownOriginal: number;
  unknownUser: number;
  policyReject: number;
  recipients: Set<string>;
  senders: Map<string, number>;
  sources: Map<string, number>;
  recipientDomains: Map<string, number>;
}

const bump = (map: Map<string, number>, key: string | null) => {
  if (key) map.set(key, (map.get(key) ?? 0) + 1);
};

export class MemoryNdrStore implements NdrStore {
  readonly #minutes = new Map<string, Map<number, MinuteBucket>>();
  readonly #hours = new Map<string, Map<number, number>>();
  readonly #first = new Map<string, number>();
  readonly #surges = new Map<string, SurgeState>();
  readonly #seen = new Set<string>();

  async add(facts: readonly NdrFact[]): Promise<NdrFact[]> {
    const added: NdrFact[] = [];
    for (const fact of facts) {
      if (this.#seen.has(fact.id)) continue;
      this.#seen.add(fact.id);
      added.push(fact);
      for (const scope of scopesOf(fact)) {
        const minutes = this.#minutes.get(scope) ?? new Map<number, MinuteBucket>();
        this.#minutes.set(scope, minutes);
        const minute = Math.floor(fact.at / MINUTE);
        let bucket = minutes.get(minute);
        if (!bucket) {
          bucket = {
            total: 0,
            unknownOriginal: 0,
            unknownUser: 0,
            policyReject: 0,
            recipients: new Set(),
            senders: new Map(),
            sources: new Map(),
            recipientDomains: new Map(),
          };
          minutes.set(minute, bucket);
          minutes.delete(minute - 1_500); // a day and a bit is all a window needs
        }
        bucket.total++;
        if (!fact.originalKnown) bucket.unknownOriginal++;
        if (isUnknownUser(fact.status)) bucket.unknownUser++;
        if (isPolicyReject(fact.status)) bucket.policyReject++;
        bucket.recipients.add(fact.finalRecipient);
        bump(bucket.senders, fact.originalSender);
        bump(bucket.sources, fact.originalSource);
        bump(bucket.recipientDomains, domainOf(fact.finalRecipient));
        const hours = this.#hours.get(scope) ?? new Map<number, number>();
        this.#hours.set(scope, hours);
        const hour = Math.floor(fact.at / HOUR);
        hours.set(hour, (hours.get(hour) ?? 0) + 1);
        if (!this.#first.has(scope) || fact.at < (this.#first.get(scope) as number))
          this.#first.set(scope, fact.at);
      }
    }
    return added;
  }

  async window(scope: string, fromMinute: number, toMinute: number): Promise<WindowStats> {
    const stats = emptyWindow();
    const minutes = this.#minutes.get(scope);
    if (!minutes) return stats;
    const recipients = new Set<string>();
    for (let minute = Math.max(fromMinute, toMinute - 1_440); minute <= toMinute; minute++) {
      const bucket = minutes.get(minute);
      if (!bucket) continue;
      stats.total += bucket.total;
      stats.unknownOriginal += bucket.unknownOriginal;
      stats.unknownUser += bucket.unknownUser;
      stats.policyReject += bucket.policyReject;
      for (const r of bucket.recipients) recipients.add(r);
      for (const [key, n] of bucket.senders) stats.senders.set(key, (stats.senders.get(key) ?? 0) + n);
      for (const [key, n] of bucket.sources) stats.sources.set(key, (stats.sources.get(key) ?? 0) + n);
      for (const [key, n] of bucket.recipientDomains)
        stats.recipientDomains.set(key, (stats.recipientDomains.get(key) ?? 0) + n);
    }
    stats.distinctRecipients = recipients.size;
    return stats;
  }

  async hourCounts(scope: string, hours: readonly number[]) {
    const counts = this.#hours.get(scope);
    return { first: this.#first.get(scope), counts: hours.map((hour) => counts?.get(hour) ?? 0) };
  }

  async surge(scope: string): Promise<SurgeState | undefined> {
    return this.#surges.get(scope);
  }

  async transition(
    scope: string,
    expected: SurgeState | undefined,
    next: SurgeState | undefined,
  ): Promise<boolean> {
    if (this.#surges.get(scope) !== expected) return false;
    if (next) this.#surges.set(scope, next);
    else this.#surges.delete(scope);
    return true;
  }

  async activeScopes(): Promise<string[]> {
    return [...this.#surges.keys()];
  }
}

// Redis: per scope and minute a hash of counts, a HyperLogLog of recipients and three sorted sets
// (senders, sources, recipient domains); per scope a hash of hourly counts; the surge state as a
// JSON string changed by compare-and-set. One script call adds a batch, skipping ids seen before.
const ADD_SCRIPT = `
local prefix = ARGV[1]
local facts = cjson.decode(ARGV[2])
local added = {}
for i, f in ipairs(facts) do
  if redis.call('SET', prefix .. 'seen:' .. f.id, '1', 'NX', 'EX', 172800) then
    added[#added + 1] = i - 1
    for _, scope in ipairs(f.scopes) do
      local m = prefix .. 'm:' .. scope .. ':' .. f.minute
      redis.call('HINCRBY', m, 'total', 1)
      if f.unknownOriginal == 1 then redis.call('HINCRBY', m, 'unknownOriginal', 1) end
      if f.unknownUser == 1 then redis.call('HINCRBY', m, 'unknownUser', 1) end
      if f.policyReject == 1 then redis.call('HINCRBY', m, 'policyReject', 1) end
      redis.call('PFADD', m .. ':r', f.recipient)
      if f.sender ~= '' then redis.call('ZINCRBY', m .. ':s', 1, f.sender) end
      if f.source ~= '' then redis.call('ZINCRBY', m .. ':c', 1, f.source) end
      redis.call('ZINCRBY', m .. ':d', 1, f.domain)
      for _, key in ipairs({ m, m .. ':r', m .. ':s', m .. ':c', m .. ':d' }) do redis.call('EXPIRE', key, 93600) end
      local h = prefix .. 'h:' .. scope
      redis.call('HINCRBY', h, f.hour, 1)
      redis.call('HSETNX', h, 'first', f.at)
      if tonumber(redis.call('HGET', h, 'first')) > f.at then redis.call('HSET', h, 'first', f.at) end
      redis.call('EXPIRE', h, 691200 * 2)
    end
  end
end
return added
`;

const TRANSITION_SCRIPT = `
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[3])
end
return 1
`;

type Scripted = Redis & {
  ndrAdd(prefix: string, facts: string): Promise<number[]>;
  ndrTransition(
    surgeKey: string,
    activeKey: string,
    expected: string,
    next: string,
    scope: string,
  ): Promise<number>;
};

export class RedisNdrStore implements NdrStore {
  readonly #redis: Scripted;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    if (!('ndrAdd' in redis)) {
      redis.defineCommand('ndrAdd', { numberOfKeys: 0, lua: ADD_SCRIPT });
      redis.defineCommand('ndrTransition', { numberOfKeys: 2, lua: TRANSITION_SCRIPT });
    }
    this.#redis = redis as Scripted;
    this.#prefix = prefix;
  }

  async add(facts: readonly NdrFact[]): Promise<NdrFact[]> {
    if (facts.length === 0) return [];
    const rows = facts.map((f) => ({
      id: `${f.tenantId}/${f.id}`,
      scopes: scopesOf(f),
      minute: Math.floor(f.at / MINUTE),
      hour: String(Math.floor(f.at / HOUR)),
      at: f.at,
      unknownOriginal: f.originalKnown ? 0 : 1,
      unknownUser: isUnknownUser(f.status) ? 1 : 0,
      policyReject: isPolicyReject(f.status) ? 1 : 0,
      recipient: f.finalRecipient,
      sender: f.originalSender ?? '',
      source: f.originalSource ?? '',
      domain: domainOf(f.finalRecipient),
    }));
    const added = await this.#redis.ndrAdd(this.#prefix, JSON.stringify(rows));
    return added.map((i) => facts[i] as NdrFact);
  }

  async window(scope: string, fromMinute: number, toMinute: number): Promise<WindowStats> {
    const minutes = Array.from(
      { length: Math.max(0, toMinute - fromMinute + 1) },
      (_, i) => `${this.#prefix}m:${scope}:${fromMinute + i}`,
    );
    const stats = emptyWindow();
    if (minutes.length === 0) return stats;
    const pipeline = this.#redis.pipeline();
    for (const m of minutes) pipeline.hgetall(m);
    pipeline.pfcount(...minutes.map((m) => `${m}:r`));
    for (const suffix of [':s', ':c', ':d'])
      pipeline.zunion(minutes.length, ...minutes.map((m) => `${m}${suffix}`), 'WITHSCORES');
    const replies = (await pipeline.exec()) ?? [];
    for (let i = 0; i < minutes.length; i++) {
      const bucket = (replies[i]?.[1] ?? {}) as Record<string, string>;
      stats.total += Number(bucket.total ?? 0);
      stats.unknownOriginal += Number(bucket.unknownOriginal ?? 0);
      stats.unknownUser += Number(bucket.unknownUser ?? 0);
      stats.policyReject += Number(bucket.policyReject ?? 0);
    }
    stats.distinctRecipients = Number(replies[minutes.length]?.[1] ?? 0);
    const maps = [stats.senders, stats.sources, stats.recipientDomains];
    maps.forEach((map, k) => {
      const list = (replies[minutes.length + 1 + k]?.[1] ?? []) as string[];
      for (let i = 0; i + 1 < list.length; i += 2) map.set(list[i] as string, Number(list[i + 1]));
    });
    return stats;
  }

  async hourCounts(scope: string, hours: readonly number[]) {
    const [first, ...counts] = await this.#redis.hmget(
      `${this.#prefix}h:${scope}`,
      'first',
      ...hours.map(String),
    );
    return {
      first: first === null || first === undefined ? undefined : Number(first),
      counts: counts.map((n) => Number(n ?? 0)),
    };
  }

  async surge(scope: string): Promise<SurgeState | undefined> {
    const raw = await this.#redis.get(`${this.#prefix}surge:${scope}`);
    return raw === null ? undefined : (JSON.parse(raw) as SurgeState);
  }

  async transition(
    scope: string,
    expected: SurgeState | undefined,
    next: SurgeState | undefined,
  ): Promise<boolean> {
    const done = await this.#redis.ndrTransition(
      `${this.#prefix}surge:${scope}`,
      `${this.#prefix}active`,
      expected ? JSON.stringify(expected) : '',
      next ? JSON.stringify(next) : '',
      scope,
    );
    return done === 1;
  }

  async activeScopes(): Promise<string[]> {
    return this.#redis.smembers(`${this.#prefix}active`);
  }
}

export { PLATFORM };
