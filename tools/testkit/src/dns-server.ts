// A real authoritative DNS server on loopback, so resolver code under test goes through the
// operating system's sockets and dns-packet's wire format instead of a mocked resolver.

import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, isIPv6, type Socket as TcpSocket } from 'node:net';
import { Resolver, type ResolverOptions } from '@mailpools/dns';
import type { Answer, DecodedPacket, OptAnswer, Question } from 'dns-packet';
import dnsPacket from 'dns-packet';

export type TestRecord =
  | { type: 'A'; data: string; ttl?: number }
  | { type: 'AAAA'; data: string; ttl?: number }
  | { type: 'MX'; data: { preference: number; exchange: string }; ttl?: number }
  | { type: 'TXT'; data: string | string[]; ttl?: number }
  | { type: 'CNAME'; data: string; ttl?: number }
  | { type: 'PTR'; data: string; ttl?: number };

type CnameRecord = Extract<TestRecord, { type: 'CNAME' }>;

/** Owner name (lower-case, no trailing dot) → its records. */
export interface TestZones {
  [name: string]: TestRecord[];
}

export type TestDnsMode = 'normal' | 'silent' | 'servfail' | 'refused';

export interface TestDnsQuery {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
}

export interface TestDnsServerOptions {
  zones: TestZones;
  /** 0 (the default) picks a free port; UDP and TCP share it. */
  port?: number;
  host?: string;
  /** TTL and SOA `minimum` of NXDOMAIN/NODATA answers (RFC 2308). Default 60. */
  negativeTtl?: number;
}

export interface TestDnsServer {
  readonly host: string;
  readonly port: number;
  /** Every well-formed query received, in order, including the ones left unanswered. */
  readonly queries: readonly TestDnsQuery[];
  resetQueries(): void;
  /** Per owner name, or '*' for every name without its own mode; with a type, for that type of the name only. */
  setMode(name: string, mode: TestDnsMode, type?: string): void;
  setZones(zones: TestZones): void;
  /** Replaces one name's records; an empty list removes the name. */
  setRecords(name: string, records: TestRecord[]): void;
  close(): Promise<void>;
}

const DEFAULT_TTL = 300;
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
// RFC 1035 4.2.1: the UDP limit without EDNS0; RFC 6891 6.2.5: smaller advertised sizes mean 512.
const CLASSIC_UDP_LIMIT = 512;
const TCP_LIMIT = 0xffff;
// What we advertise back; 1232 avoids IP fragmentation (DNS flag day 2020).
const OUR_EDNS_PAYLOAD = 1232;

const normalize = (name: string): string => name.toLowerCase().replace(/\.$/, '');
const apexOf = (name: string): string => name.split('.').slice(-2).join('.');

// dns-packet writes a label length into one byte, so long TXT strings must be split into
// 255-byte character-strings (RFC 7208 3.3). Fresh Buffers also matter: dns-packet's TXT encoder
// replaces strings in the array it is given, which would otherwise mutate the zone data.
function txtChunks(data: string | string[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (const part of Array.isArray(data) ? data : [data]) {
    const bytes = Buffer.from(part);
    if (bytes.length === 0) chunks.push(bytes);
    for (let i = 0; i < bytes.length; i += 255) chunks.push(bytes.subarray(i, i + 255));
  }
  return chunks;
}

function toAnswer(name: string, record: TestRecord): Answer {
  const ttl = record.ttl ?? DEFAULT_TTL;
  switch (record.type) {
    case 'MX':
      // '' and '.' both mean the root (null MX, RFC 7505); dns-packet sizes '' wrongly, so send '.'.
      return {
        type: 'MX',
        name,
        ttl,
        data: {
          preference: record.data.preference,
          exchange: record.data.exchange.replace(/\.$/, '') || '.',
        },
      };
    case 'TXT':
      return { type: 'TXT', name, ttl, data: txtChunks(record.data) };
    default:
      return { type: record.type, name, ttl, data: record.data };
  }
}

export async function startTestDnsServer(options: TestDnsServerOptions): Promise<TestDnsServer> {
  const host = options.host ?? '127.0.0.1';
  const negativeTtl = options.negativeTtl ?? 60;
  let zones = new Map<string, TestRecord[]>();
  const modes = new Map<string, TestDnsMode>();
  const queries: TestDnsQuery[] = [];

  // Names that exist (owners, and empty non-terminals above them: RFC 8020) and the apexes we serve,
  // indexed on every change so that negative answers stay cheap in benchmarks with large zones.
  let existing = new Set<string>();
  let apexes = new Set<string>();
  const reindex = (): void => {
    existing = new Set();
    apexes = new Set();
    for (const owner of zones.keys()) {
      const labels = owner.split('.');
      for (let i = 0; i < labels.length; i++) existing.add(labels.slice(i).join('.'));
      apexes.add(apexOf(owner));
    }
  };
  const setZones = (next: TestZones): void => {
    zones = new Map(Object.entries(next).map(([name, records]) => [normalize(name), [...records]]));
    reindex();
  };
  setZones(options.zones);

  const soa = (name: string): Answer => {
    const apex = apexOf(name);
    return {
      type: 'SOA',
      name: apex,
      ttl: negativeTtl,
      data: {
        mname: `ns.${apex}`,
        rname: `hostmaster.${apex}`,
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: negativeTtl,
      },
    };
  };
  const recordsOf = (name: string, type: string): Answer[] =>
    (zones.get(name) ?? []).filter((r) => r.type === type).map((r) => toAnswer(name, r));

  /** Answer, authority and rcode for one question, following a CNAME one step. */
  function resolve(name: string, type: string): { rcode: number; answers: Answer[]; authorities: Answer[] } {
    const direct = recordsOf(name, type);
    if (direct.length > 0) return { rcode: RCODE.NOERROR, answers: direct, authorities: [] };
    const alias =
      type === 'CNAME' ? undefined : zones.get(name)?.find((r): r is CnameRecord => r.type === 'CNAME');
    if (alias === undefined) {
      const rcode = existing.has(name) ? RCODE.NOERROR : RCODE.NXDOMAIN;
      return { rcode, answers: [], authorities: [soa(name)] };
    }
    const cname = [toAnswer(name, alias)];
    const target = normalize(alias.data);
    const chased = recordsOf(target, type);
    if (chased.length > 0) return { rcode: RCODE.NOERROR, answers: [...cname, ...chased], authorities: [] };
    // RFC 6604: the rcode describes the end of the chain, but only where we are authoritative for it;
    // a target outside our data is left for the client to chase.
    if (existing.has(target)) return { rcode: RCODE.NOERROR, answers: cname, authorities: [soa(target)] };
    if (apexes.has(apexOf(target)))
      return { rcode: RCODE.NXDOMAIN, answers: cname, authorities: [soa(target)] };
    return { rcode: RCODE.NOERROR, answers: cname, authorities: [] };
  }

  /** The encoded response, or undefined to stay silent. */
  function respond(message: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return undefined; // malformed: nothing trustworthy to answer to
    }
    if (query.type !== 'query') return undefined; // never answer responses, avoiding reflection loops
    const questions: Question[] = query.questions ?? [];
    const opt = query.additionals?.find((a): a is OptAnswer => a.type === 'OPT');
    const flagsIn = query.flags ?? 0;
    const base = {
      type: 'response' as const,
      id: query.id ?? 0,
      questions,
      additionals: opt
        ? [
            {
              type: 'OPT' as const,
              name: '.',
              udpPayloadSize: OUR_EDNS_PAYLOAD,
              extendedRcode: 0,
              ednsVersion: 0,
              flags: 0,
              flag_do: false,
              options: [],
            },
          ]
        : [],
    };
    // RD is copied from the query (RFC 1035 4.1.1); RA stays clear: we do not recurse.
    const header = (rcode: number, authoritative: boolean): number =>
      (flagsIn & dnsPacket.RECURSION_DESIRED) | (authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | rcode;

    const opcode = (flagsIn >> 11) & 0xf;
    const question = questions[0];
    if (opcode !== 0) return dnsPacket.encode({ ...base, flags: header(RCODE.NOTIMP, false) });
    if (questions.length !== 1 || !question)
      return dnsPacket.encode({ ...base, flags: header(RCODE.FORMERR, false) });

    const name = normalize(question.name);
    queries.push({ name, type: question.type, transport });
    const mode = modes.get(`${name}/${question.type}`) ?? modes.get(name) ?? modes.get('*') ?? 'normal';
    if (mode === 'silent') return undefined;
    if (mode === 'servfail') return dnsPacket.encode({ ...base, flags: header(RCODE.SERVFAIL, false) });
    if (mode === 'refused') return dnsPacket.encode({ ...base, flags: header(RCODE.REFUSED, false) });

    let full: Buffer;
    let rcode: number;
    try {
      const resolved = resolve(name, question.type);
      rcode = resolved.rcode;
      full = dnsPacket.encode({
        ...base,
        flags: header(rcode, true),
        answers: resolved.answers,
        authorities: resolved.authorities,
      });
    } catch {
      // Bad test data (say, an A record that is not an IPv4 address) must not kill the server.
      return dnsPacket.encode({ ...base, flags: header(RCODE.SERVFAIL, false) });
    }
    const limit =
      transport === 'tcp' ? TCP_LIMIT : Math.max(CLASSIC_UDP_LIMIT, opt?.udpPayloadSize ?? CLASSIC_UDP_LIMIT);
    if (full.length <= limit) return full;
    // RFC 2181 9: a truncated answer carries no partial RRsets; the client retries over TCP.
    return dnsPacket.encode({
      ...base,
      flags: header(rcode, true) | dnsPacket.TRUNCATED_RESPONSE,
    });
  }

  const onUdpMessage = (udp: UdpSocket) => (message: Buffer, from: RemoteInfo) => {
    const reply = respond(message, 'udp');
    if (reply) udp.send(reply, from.port, from.address, () => {}); // a vanished client is not our problem
  };

  // TCP: each message is preceded by its 2-byte length (RFC 1035 4.2.2); a connection may carry many.
  const connections = new Set<TcpSocket>();
  const tcp = createServer((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const message = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        const reply = respond(message, 'tcp');
        if (!reply || socket.destroyed) continue;
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(reply.length);
        socket.write(Buffer.concat([prefix, reply]));
      }
    });
  });
  tcp.on('error', () => {}); // listen errors reach bind() through once(); later ones must not crash tests

  const closeTcp = async (): Promise<void> => {
    for (const socket of connections) socket.destroy();
    if (tcp.listening) await new Promise<void>((resolveClose) => tcp.close(() => resolveClose()));
  };
  const closeUdp = (udp: UdpSocket): Promise<void> =>
    new Promise<void>((resolveClose) => {
      try {
        udp.close(() => resolveClose());
      } catch {
        resolveClose(); // already closed
      }
    });

  // UDP and TCP must share one port. With port 0 the kernel's free TCP port may be taken for UDP,
  // so take TCP first and retry the pair a few times.
  async function bind(): Promise<UdpSocket> {
    for (let attempt = 0; ; attempt++) {
      tcp.listen(options.port ?? 0, host);
      await once(tcp, 'listening'); // rejects on 'error'
      const port = (tcp.address() as { port: number }).port;
      const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
      try {
        udp.bind(port, host);
        await once(udp, 'listening');
        udp.on('error', () => {}); // e.g. ICMP port unreachable surfacing late; keep serving
        udp.on('message', onUdpMessage(udp));
        return udp;
      } catch (error) {
        await closeUdp(udp);
        await closeTcp();
        if ((options.port ?? 0) !== 0 || attempt >= 10) throw error;
      }
    }
  }
  const udp = await bind();
  const port = (tcp.address() as { port: number }).port;

  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    queries,
    resetQueries: () => {
      queries.length = 0;
    },
    setMode: (name, mode, type) => {
      const owner = name === '*' ? '*' : normalize(name);
      modes.set(type ? `${owner}/${type.toUpperCase()}` : owner, mode);
    },
    setZones,
    setRecords: (name, records) => {
      if (records.length === 0) zones.delete(normalize(name));
      else zones.set(normalize(name), [...records]);
      reindex();
    },
    close: () => {
      closing ??= Promise.all([closeUdp(udp), closeTcp()]).then(() => {});
      return closing;
    },
  };
}

/** A resolver that asks only this server: short timeouts, an in-process cache; override what a test needs. */
export function loopbackResolver(server: TestDnsServer, overrides: Partial<ResolverOptions> = {}): Resolver {
  return new Resolver({
    servers: [{ host: server.host, port: server.port }],
    timeoutMs: 500,
    attempts: 2,
    cacheSize: 10_000,
    maxTtlSeconds: 3_600,
    maxNegativeTtlSeconds: 900,
    ...overrides,
  });
}
