// One DNS question over the wire: UDP first, TCP when the answer is truncated (RFC 1035 4.2,
// RFC 7766). Servers are tried in turn; timeouts, SERVFAIL and REFUSED are retried a bounded
// number of times, then reported as a temporary error: a DNS outage is never an answer.
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { MailpoolsError } from '@mailpools/core';
import * as packet from 'dns-packet';

export interface DnsServerAddress {
  readonly host: string;
  readonly port: number;
}

export interface TransportOptions {
  readonly servers: readonly DnsServerAddress[];
  /** Per try. */
  readonly timeoutMs: number;
  /** Tries in all, over the servers in turn. */
  readonly attempts: number;
}

export type RecordType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'PTR';

export interface WireAnswer {
  readonly rcode: string;
  readonly answers: packet.Answer[];
  readonly authorities: packet.Answer[];
  readonly transport: 'udp' | 'tcp';
}

export function temporaryError(name: string, type: string, why: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_DNS_TEMPORARY', `DNS ${type} lookup of ${name} failed: ${why}.`, {
    hint: 'Check MAILPOOLS_DNS_SERVERS and that the servers answer; the lookup is retried later.',
  });
}

function encodeQuery(id: number, name: string, type: RecordType): Buffer {
  return packet.encode({
    type: 'query',
    id,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as unknown as packet.Answer], // EDNS0, RFC 6891
  });
}

/** Accepts only the answer to our question: same id, same name and type (basic anti-spoofing). */
function matches(response: packet.Packet, id: number, name: string, type: RecordType): boolean {
  const question = response.questions?.[0];
  return response.id === id && question?.type === type && question.name.toLowerCase() === name.toLowerCase();
}

function overUdp(
  server: DnsServerAddress,
  query: Buffer,
  id: number,
  name: string,
  type: RecordType,
  timeoutMs: number,
): Promise<packet.Packet | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket(server.host.includes(':') ? 'udp6' : 'udp4');
    const done = (response: packet.Packet | undefined) => {
      clearTimeout(timer);
      socket.close();
      resolve(response);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', () => done(undefined));
    socket.on('message', (message) => {
      try {
        const response = packet.decode(message);
        if (matches(response, id, name, type)) done(response);
      } catch {
        // not a DNS answer: keep waiting for the real one
      }
    });
    socket.send(query, server.port, server.host);
  });
}

function overTcp(
  server: DnsServerAddress,
  query: Buffer,
  id: number,
  name: string,
  type: RecordType,
  timeoutMs: number,
): Promise<packet.Packet | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: server.host, port: server.port });
    let received = Buffer.alloc(0);
    const done = (response: packet.Packet | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(response);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', () => done(undefined));
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(query.length);
      socket.write(Buffer.concat([length, query]));
    });
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      try {
        const response = packet.decode(received.subarray(2, 2 + received.readUInt16BE(0)));
        done(matches(response, id, name, type) ? response : undefined);
      } catch {
        done(undefined);
      }
    });
  });
}

export async function queryServers(
  name: string,
  type: RecordType,
  options: TransportOptions,
): Promise<WireAnswer> {
  if (options.servers.length === 0) throw temporaryError(name, type, 'no DNS server is configured');
  let lastProblem = 'no answer';
  for (let attempt = 0; attempt < options.attempts; attempt++) {
    const server = options.servers[attempt % options.servers.length] as DnsServerAddress;
    const id = randomInt(0, 65_536);
    const query = encodeQuery(id, name, type);
    let transport: 'udp' | 'tcp' = 'udp';
    let response = await overUdp(server, query, id, name, type, options.timeoutMs);
    if (response && ((response.flags ?? 0) & packet.TRUNCATED_RESPONSE) !== 0) {
      transport = 'tcp';
      response = await overTcp(server, query, id, name, type, options.timeoutMs);
    }
    if (!response) {
      lastProblem = `no answer from ${server.host}:${server.port} within ${options.timeoutMs} ms`;
      continue;
    }
    const rcode = (response as { rcode?: string }).rcode ?? 'NOERROR';
    if (rcode === 'NOERROR' || rcode === 'NXDOMAIN') {
      return { rcode, answers: response.answers ?? [], authorities: response.authorities ?? [], transport };
    }
    lastProblem = `${server.host}:${server.port} answered ${rcode}`;
  }
  throw temporaryError(name, type, `${lastProblem} (after ${options.attempts} tries)`);
}
