// Typed, cached lookups. Positive answers live for their TTL, negative ones (NXDOMAIN, NODATA) for
// the SOA's negative TTL (RFC 2308), both capped. An in-process LRU answers first, then a cache in
// Redis shared by every replica, then the network; concurrent lookups of one name coalesce into
// one query. Temporary failures are never cached: the next lookup asks again.
import type { Answer } from 'dns-packet';
import type { Redis } from 'ioredis';
import { queryServers, type RecordType, type TransportOptions } from './transport.ts';

export type LookupStatus = 'OK' | 'NODATA' | 'NXDOMAIN';

export interface MxRecord {
  readonly preference: number;
  readonly exchange: string;
}

export interface LookupResult {
  readonly status: LookupStatus;
  /** A/AAAA: addresses; MX: "preference exchange"; TXT: the joined strings; PTR: the name. */
  readonly records: readonly string[];
  /** Seconds the answer stays valid (at the time it was looked up). */
  readonly ttl: number;
  readonly fromCache: boolean;
}

export interface ResolverOptions extends TransportOptions {
  /** Entries in the in-process LRU. */
  readonly cacheSize: number;
  readonly maxTtlSeconds: number;
  readonly maxNegativeTtlSeconds: number;
  /** The shared cache; without it only the in-process LRU caches. */
  readonly redis?: Redis | undefined;
  readonly redisPrefix?: string;
  /** The clock, injectable for tests. */
  readonly now?: () => number;
  /** Told where each lookup was answered from (for metrics). */
  readonly observe?: (source: keyof ResolverStats) => void;
}

interface CacheEntry {
  readonly status: LookupStatus;
  readonly records: readonly string[];
  /** Epoch ms when the answer expires. */
  readonly expiresAt: number;
}

export interface ResolverStats {
  lruHits: number;
  redisHits: number;
  misses: number;
  coalesced: number;
  temporaryFailures: number;
}

function recordText(answer: Answer): string | undefined {
  switch (answer.type) {
    case 'A':
    case 'AAAA':
    case 'PTR':
      return answer.data;
    case 'MX':
      return `${answer.data.preference} ${answer.data.exchange || '.'}`;
    case 'TXT': {
      const data = answer.data as Buffer | string | (Buffer | string)[];
      return (Array.isArray(data) ? data : [data]).map((d) => d.toString()).join('');
    }
    default:
      return undefined;
  }
}

export class Resolver {
  readonly stats: ResolverStats = { lruHits: 0, redisHits: 0, misses: 0, coalesced: 0, temporaryFailures: 0 };
  readonly #options: ResolverOptions;
  readonly #lru = new Map<string, CacheEntry>();
  readonly #inFlight = new Map<string, Promise<LookupResult>>();
  readonly #now: () => number;

  constructor(options: ResolverOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  #count(source: keyof ResolverStats): void {
    this.stats[source]++;
    this.#options.observe?.(source);
  }

  async lookup(name: string, type: RecordType): Promise<LookupResult> {
    const key = `${type}:${name.toLowerCase()}`;
    const cached = this.#fromLru(key);
    if (cached) {
      this.#count('lruHits');
      return cached;
    }
    const pending = this.#inFlight.get(key);
    if (pending) {
      this.#count('coalesced');
      return pending;
    }
    const lookup = this.#lookupShared(key, name, type).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, lookup);
    return lookup;
  }

  #fromLru(key: string): LookupResult | undefined {
    const entry = this.#lru.get(key);
    if (!entry) return undefined;
    const remaining = entry.expiresAt - this.#now();
    if (remaining <= 0) {
      this.#lru.delete(key);
      return undefined;
    }
    this.#lru.delete(key); // re-insert: most recently used last
    this.#lru.set(key, entry);
    return {
      status: entry.status,
      records: entry.records,
      ttl: Math.ceil(remaining / 1000),
      fromCache: true,
    };
  }

  #remember(key: string, entry: CacheEntry): void {
    this.#lru.set(key, entry);
    if (this.#lru.size > this.#options.cacheSize) {
      const oldest = this.#lru.keys().next().value;
      if (oldest !== undefined) this.#lru.delete(oldest);
    }
  }

  async #lookupShared(key: string, name: string, type: RecordType): Promise<LookupResult> {
    const redis = this.#options.redis;
    const redisKey = `${this.#options.redisPrefix ?? 'mailpools:dns:'}${key}`;
    if (redis) {
      const raw = await redis.get(redisKey).catch(() => null); // a Redis outage only costs a query
      if (raw) {
        const entry = JSON.parse(raw) as CacheEntry;
        const remaining = entry.expiresAt - this.#now();
        if (remaining > 0) {
          this.#count('redisHits');
          this.#remember(key, entry);
          return {
            status: entry.status,
            records: entry.records,
            ttl: Math.ceil(remaining / 1000),
            fromCache: true,
          };
        }
      }
    }
    this.#count('misses');
    let wire: Awaited<ReturnType<typeof queryServers>>;
    try {
      wire = await queryServers(name, type, this.#options);
    } catch (error) {
      this.#count('temporaryFailures');
      throw error;
    }
    const records = wire.answers.filter((a) => a.type === type).flatMap((a) => recordText(a) ?? []);
    let status: LookupStatus;
    let ttl: number;
    if (wire.rcode === 'NXDOMAIN' || records.length === 0) {
      status = wire.rcode === 'NXDOMAIN' ? 'NXDOMAIN' : 'NODATA';
      const soa = wire.authorities.find((a) => a.type === 'SOA');
      const soaTtl = soa && soa.type === 'SOA' ? Math.min(soa.ttl ?? 0, soa.data.minimum ?? 0) : 0; // RFC 2308 §5
      ttl = Math.min(soaTtl, this.#options.maxNegativeTtlSeconds);
    } else {
      status = 'OK';
      const ttls = wire.answers.filter((a) => a.type === type).map((a) => ('ttl' in a ? (a.ttl ?? 0) : 0));
      ttl = Math.min(Math.min(...ttls), this.#options.maxTtlSeconds);
    }
    const entry: CacheEntry = { status, records, expiresAt: this.#now() + ttl * 1000 };
    if (ttl > 0) {
      this.#remember(key, entry);
      await redis?.set(redisKey, JSON.stringify(entry), 'PX', ttl * 1000).catch(() => undefined);
    }
    return { status, records, ttl, fromCache: false };
  }
}
