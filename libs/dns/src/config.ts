// The resolver's settings from the environment (see docs/configuration.md).
import { readFileSync } from 'node:fs';
import { defineSettings, MailpoolsError } from '@mailpools/core';
import type { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import { Resolver } from './resolver.ts';
import type { DnsServerAddress, TransportOptions } from './transport.ts';

type Env = Readonly<Record<string, string | undefined>>;

export const DNS_SETTINGS = defineSettings('DNS (dns-checker, auth-verifier, mailpools route)', {
  MAILPOOLS_DNS_SERVERS: {
    default: '',
    doc: 'DNS resolvers, `host[:port]` comma-separated (IPv6 as `[addr]:port`); unset: the nameservers of `/etc/resolv.conf`.',
  },
  MAILPOOLS_DNS_TIMEOUT_MS: {
    default: '1000',
    doc: 'How long to wait for one answer.',
    min: 10,
    max: 30_000,
  },
  MAILPOOLS_DNS_ATTEMPTS: {
    default: '3',
    doc: 'Tries per question, over the servers in turn; then the verdict is `TEMPERROR`.',
    min: 1,
    max: 10,
  },
  MAILPOOLS_DNS_CACHE_SIZE: {
    default: '100000',
    doc: 'Answers kept in each process (LRU) in front of the Redis cache shared by all replicas.',
    min: 0,
    max: 10_000_000,
  },
  MAILPOOLS_DNS_MAX_TTL_S: {
    default: '3600',
    doc: 'Longest time a positive answer is cached (its TTL otherwise).',
    min: 0,
    max: 7 * 86_400,
  },
  MAILPOOLS_DNS_MAX_NEGATIVE_TTL_S: {
    default: '900',
    doc: "Longest time NXDOMAIN/NODATA is cached (the SOA's negative TTL otherwise, RFC 2308).",
    min: 0,
    max: 86_400,
  },
});

function serversError(problem: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_CONFIG_INVALID', `MAILPOOLS_DNS_SERVERS ${problem}.`, {
    hint: 'Give resolvers as host or host:port, comma-separated (IPv6 as [addr]:port), or leave it unset to use /etc/resolv.conf.',
  });
}

export function parseServers(text: string): DnsServerAddress[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
      const plain = /^([^:]+)(?::(\d+))?$/.exec(entry);
      const host = bracketed?.[1] ?? plain?.[1] ?? (entry.includes(':') ? entry : undefined);
      const port = Number(bracketed?.[2] ?? plain?.[2] ?? 53);
      if (!host || !Number.isInteger(port) || port < 1 || port > 65_535)
        throw serversError(`has "${entry}", not a host[:port]`);
      return { host, port };
    });
}

function systemServers(): DnsServerAddress[] {
  try {
    const lines = readFileSync('/etc/resolv.conf', 'utf8').split('\n');
    return lines.flatMap((line) => {
      const match = /^\s*nameserver\s+(\S+)/.exec(line);
      return match?.[1] ? [{ host: match[1], port: 53 }] : [];
    });
  } catch {
    return [];
  }
}

export function transportFromEnv(env: Env): TransportOptions {
  const configured = DNS_SETTINGS.text(env, 'MAILPOOLS_DNS_SERVERS');
  const servers = configured ? parseServers(configured) : systemServers();
  if (servers.length === 0) throw serversError('is unset and /etc/resolv.conf names no nameserver');
  return {
    servers,
    timeoutMs: DNS_SETTINGS.integer(env, 'MAILPOOLS_DNS_TIMEOUT_MS'),
    attempts: DNS_SETTINGS.integer(env, 'MAILPOOLS_DNS_ATTEMPTS'),
  };
}

export function cacheLimitsFromEnv(env: Env): {
  cacheSize: number;
  maxTtlSeconds: number;
  maxNegativeTtlSeconds: number;
} {
  return {
    cacheSize: DNS_SETTINGS.integer(env, 'MAILPOOLS_DNS_CACHE_SIZE'),
    maxTtlSeconds: DNS_SETTINGS.integer(env, 'MAILPOOLS_DNS_MAX_TTL_S'),
    maxNegativeTtlSeconds: DNS_SETTINGS.integer(env, 'MAILPOOLS_DNS_MAX_NEGATIVE_TTL_S'),
  };
}

/**
 * The resolver a service uses: servers and cache limits from the environment, the Redis cache
 * shared by all replicas of the deployment (`mailpools:<namespace>dns:`), and
 * `mailpools_dns_lookups_total{source}` in the service's registry.
 */
export function resolverFromEnv(env: Env, namespace: string, redis: Redis, registry: Registry): Resolver {
  const lookups = new Counter({
    name: 'mailpools_dns_lookups_total',
    help: 'DNS lookups by where they were answered: LRU, Redis, network (misses), coalesced, or failed for now.',
    labelNames: ['source'],
    registers: [registry],
  });
  return new Resolver({
    ...transportFromEnv(env),
    ...cacheLimitsFromEnv(env),
    redis,
    redisPrefix: `mailpools:${namespace}dns:`,
    observe: (source) => lookups.inc({ source }),
  });
}
