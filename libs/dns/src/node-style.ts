// The shared resolver behind the signature of Node's `dns.promises.resolve`, which libraries such
// as mailauth accept: the same caches, coalescing and servers as every other lookup here.
// Node's error codes carry the meaning: ENOTFOUND (NXDOMAIN) and ENODATA are answers, anything
// else (ETIMEOUT, ESERVFAIL) is temporary — which is how SPF tells none from temperror.
import type { Resolver } from './resolver.ts';
import type { RecordType } from './transport.ts';

const SUPPORTED: ReadonlySet<string> = new Set(['A', 'AAAA', 'MX', 'TXT', 'PTR']);

function dnsError(code: string, name: string, type: string): Error & { code: string; hostname: string } {
  return Object.assign(new Error(`query${type} ${code} ${name}`), { code, hostname: name });
}

// The declared result is that of TXT/A lookups; MX gives {priority, exchange} objects, as Node's does.
export type NodeStyleResolve = (name: string, type?: string) => Promise<string[] | string[][]>;

export function nodeStyleResolve(resolver: Resolver): NodeStyleResolve {
  return async (name, type = 'A') => {
    const rrtype = type.toUpperCase();
    if (!SUPPORTED.has(rrtype)) throw dnsError('ENOTIMP', name, rrtype);
    let result: Awaited<ReturnType<Resolver['lookup']>>;
    try {
      result = await resolver.lookup(name.replace(/\.$/, ''), rrtype as RecordType);
    } catch (error) {
      if ((error as { retriable?: boolean }).retriable) throw dnsError('ETIMEOUT', name, rrtype);
      throw dnsError('ENOTFOUND', name, rrtype); // a name no server can have (a label over 63 bytes)
    }
    if (result.status === 'NXDOMAIN') throw dnsError('ENOTFOUND', name, rrtype);
    if (result.records.length === 0) throw dnsError('ENODATA', name, rrtype);
    switch (rrtype) {
      case 'TXT':
        return result.records.map((text) => [text]);
      case 'MX':
        return result.records.map((record) => {
          const space = record.indexOf(' ');
          return {
            priority: Number(record.slice(0, space)),
            exchange: record.slice(space + 1).replace(/^\.$/, ''),
          };
        }) as unknown as string[];
      default:
        return [...result.records];
    }
  };
}
