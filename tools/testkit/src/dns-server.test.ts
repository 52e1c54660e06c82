import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { after, before, test } from 'node:test';
import type { DecodedPacket, OptAnswer, Packet, RecordType } from 'dns-packet';
import dnsPacket from 'dns-packet';
import { startTestDnsServer, type TestDnsServer, type TestZones } from './dns-server.ts';

type Transport = 'udp' | 'tcp';
type Response = DecodedPacket & { rcode: string };

const NEGATIVE_TTL = 42;
const manyAddresses = Array.from({ length: 40 }, (_, i) => ({ type: 'A' as const, data: `10.0.0.${i + 1}` }));
const longText = 'v=spf1 '.padEnd(700, 'x');

const zones: TestZones = {
  'example.test': [
    { type: 'A', data: '192.0.2.1', ttl: 120 },
    { type: 'MX', data: { preference: 10, exchange: 'mx.example.test' } },
  ],
  'mx.example.test': [{ type: 'A', data: '192.0.2.25' }],
  'v6.example.test': [{ type: 'AAAA', data: '2001:db8::1' }],
  'leaf.ent.example.test': [{ type: 'A', data: '192.0.2.9' }],
  'nullmx.example.test': [{ type: 'MX', data: { preference: 0, exchange: '.' } }],
  'alias.example.test': [{ type: 'CNAME', data: 'mx.example.test' }],
  'many.example.test': manyAddresses,
  'txt.example.test': [{ type: 'TXT', data: longText }],
};

let server: TestDnsServer;
before(async () => {
  server = await startTestDnsServer({ zones, negativeTtl: NEGATIVE_TTL });
});
after(() => server.close());

function frame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(message.length);
  return Buffer.concat([prefix, message]);
}

/** Sends one raw message; resolves the raw reply, or undefined after timeoutMs. */
async function exchange(
  port: number,
  message: Buffer,
  transport: Transport,
  timeoutMs = 500,
): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    let finish: (reply: Buffer | undefined) => void;
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    if (transport === 'udp') {
      const socket = createSocket('udp4');
      finish = (reply) => {
        clearTimeout(timer);
        socket.close();
        resolve(reply);
      };
      socket.on('error', reject);
      socket.on('message', (reply) => finish(reply));
      socket.send(message, port, '127.0.0.1');
      return;
    }
    const socket = connect(port, '127.0.0.1');
    finish = (reply) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    let received = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0))
        finish(received.subarray(2));
    });
    socket.write(frame(message));
  });
}

let nextId = 1;
function encodeQuery(name: string, type: RecordType, extra: Partial<Packet> = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: nextId++,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    ...extra,
  });
}

async function query(
  port: number,
  name: string,
  type: RecordType,
  transport: Transport = 'udp',
  extra: Partial<Packet> = {},
): Promise<Response | undefined> {
  const reply = await exchange(port, encodeQuery(name, type, extra), transport);
  return reply && (dnsPacket.decode(reply) as Response);
}

async function answer(name: string, type: RecordType, transport: Transport = 'udp'): Promise<Response> {
  const response = await query(server.port, name, type, transport);
  assert.ok(response, `an answer to ${name} ${type} over ${transport}`);
  return response;
}

test('A: authoritative answer with the record TTL, id and question echoed', async () => {
  for (const transport of ['udp', 'tcp'] as const) {
    const id = nextId;
    const response = await answer('Example.TEST.', 'A', transport);
    assert.equal(response.id, id);
    assert.equal(response.type, 'response');
    assert.equal(response.rcode, 'NOERROR');
    assert.equal(response.flag_aa, true);
    assert.equal(response.flag_ra, false);
    assert.equal(response.flag_rd, true, 'RD is copied from the query');
    assert.equal(response.flag_tc, false);
    assert.deepEqual(response.questions, [{ name: 'Example.TEST', type: 'A', class: 'IN' }]);
    assert.deepEqual(
      response.answers?.map((a) => [
        a.name,
        a.type,
        'ttl' in a ? a.ttl : undefined,
        'data' in a ? a.data : undefined,
      ]),
      [['example.test', 'A', 120, '192.0.2.1']],
    );
  }
  const v6 = await answer('v6.example.test', 'AAAA');
  assert.deepEqual(
    v6.answers?.map((a) => ['ttl' in a ? a.ttl : undefined, 'data' in a ? a.data : undefined]),
    [[300, '2001:db8::1']],
    'default TTL 300',
  );
});

function assertNegative(response: Response, rcode: string, apex: string): void {
  assert.equal(response.rcode, rcode);
  assert.equal(response.flag_aa, true);
  assert.deepEqual(response.answers, []);
  const [soa, ...rest] = response.authorities ?? [];
  assert.deepEqual(rest, []);
  assert.ok(soa && soa.type === 'SOA', 'an SOA in AUTHORITY');
  assert.equal(soa.name, apex);
  assert.equal(soa.ttl, NEGATIVE_TTL);
  assert.equal(soa.data.minimum, NEGATIVE_TTL);
}

test('NODATA: the name exists without that type (or is an empty non-terminal)', async () => {
  assertNegative(await answer('v6.example.test', 'A'), 'NOERROR', 'example.test');
  assertNegative(await answer('ent.example.test', 'A', 'tcp'), 'NOERROR', 'example.test');
});

test('NXDOMAIN: the name does not exist', async () => {
  assertNegative(await answer('nope.example.test', 'A'), 'NXDOMAIN', 'example.test');
  assertNegative(await answer('deep.nope.other.test', 'MX'), 'NXDOMAIN', 'other.test');
});

test('MX, including a null MX whose exchange is the root name', async () => {
  const mx = await answer('example.test', 'MX');
  assert.deepEqual(
    mx.answers?.map((a) => ('data' in a ? a.data : undefined)),
    [{ preference: 10, exchange: 'mx.example.test' }],
  );

  // dns-packet writes the root as a single zero byte and decodes it back as '.'.
  const raw = await exchange(server.port, encodeQuery('nullmx.example.test', 'MX'), 'udp');
  assert.ok(raw);
  assert.deepEqual([...raw.subarray(-5)], [0, 3, 0, 0, 0], 'RDLENGTH 3: preference 0, then the root label');
  const decoded = dnsPacket.decode(raw);
  assert.deepEqual(
    decoded.answers?.map((a) => ('data' in a ? a.data : undefined)),
    [{ preference: 0, exchange: '.' }],
  );
});

test('CNAME is followed by the target records; asking for the CNAME itself gives only it', async () => {
  const response = await answer('alias.example.test', 'A');
  assert.deepEqual(
    response.answers?.map((a) => [a.name, a.type, 'data' in a ? a.data : undefined]),
    [
      ['alias.example.test', 'CNAME', 'mx.example.test'],
      ['mx.example.test', 'A', '192.0.2.25'],
    ],
  );
  const cname = await answer('alias.example.test', 'CNAME');
  assert.deepEqual(
    cname.answers?.map((a) => a.type),
    ['CNAME'],
  );
});

test('too large for UDP: TC and no answers; over TCP or with EDNS0 in full', async () => {
  for (const [name, type] of [
    ['many.example.test', 'A'],
    ['txt.example.test', 'TXT'],
  ] as const) {
    const udp = await answer(name, type, 'udp');
    assert.equal(udp.flag_tc, true, `${type} over UDP is truncated`);
    assert.equal(udp.rcode, 'NOERROR');
    assert.deepEqual(udp.answers, []);
    assert.equal(udp.questions?.[0]?.name, name);

    const tcp = await answer(name, type, 'tcp');
    assert.equal(tcp.flag_tc, false);
    if (type === 'A') {
      assert.deepEqual(
        tcp.answers?.map((a) => ('data' in a ? a.data : undefined)),
        manyAddresses.map((r) => r.data),
      );
    } else {
      const [txt] = tcp.answers ?? [];
      assert.ok(txt && txt.type === 'TXT');
      const chunks = txt.data as Buffer[];
      assert.ok(chunks.every((chunk) => chunk.length <= 255));
      assert.equal(Buffer.concat(chunks).toString(), longText);
    }
  }

  const opt: OptAnswer = {
    type: 'OPT',
    name: '.',
    udpPayloadSize: 4096,
    extendedRcode: 0,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  };
  const edns = await query(server.port, 'many.example.test', 'A', 'udp', { additionals: [opt] });
  assert.ok(edns);
  assert.equal(edns.flag_tc, false, 'a 4096-byte EDNS0 buffer fits the answer');
  assert.equal(edns.answers?.length, manyAddresses.length);
  assert.equal(edns.additionals?.[0]?.type, 'OPT', 'EDNS0 is answered with EDNS0');
});

test('silent drops the query; servfail and refused answer with that rcode', async (t) => {
  t.after(() => {
    server.setMode('example.test', 'normal');
    server.setMode('*', 'normal');
  });
  server.resetQueries();
  server.setMode('EXAMPLE.test.', 'silent');
  for (const transport of ['udp', 'tcp'] as const) {
    assert.equal(
      await query(server.port, 'example.test', 'A', transport),
      undefined,
      `silent over ${transport}`,
    );
  }
  assert.deepEqual(server.queries, [
    { name: 'example.test', type: 'A', transport: 'udp' },
    { name: 'example.test', type: 'A', transport: 'tcp' },
  ]);
  assert.equal((await answer('mx.example.test', 'A')).rcode, 'NOERROR', 'other names still answer');

  server.setMode('example.test', 'servfail');
  const servfail = await answer('example.test', 'A');
  assert.equal(servfail.rcode, 'SERVFAIL');
  assert.deepEqual(servfail.answers, []);

  server.setMode('*', 'refused');
  assert.equal((await answer('mx.example.test', 'A', 'tcp')).rcode, 'REFUSED');
  assert.equal((await answer('example.test', 'A')).rcode, 'SERVFAIL', 'a name-specific mode beats *');

  server.setMode('*', 'normal');
  server.setMode('example.test', 'normal');
  assert.equal((await answer('example.test', 'A')).rcode, 'NOERROR');
});

test('setRecords and setZones change the answers at runtime', async (t) => {
  t.after(() => server.setZones(zones));
  server.setRecords('example.test', [{ type: 'A', data: '198.51.100.7', ttl: 5 }]);
  const changed = await answer('example.test', 'A');
  assert.deepEqual(
    changed.answers?.map((a) => ('data' in a ? a.data : undefined)),
    ['198.51.100.7'],
  );
  assert.equal((await answer('example.test', 'MX')).rcode, 'NOERROR', 'MX gone: NODATA');

  server.setRecords('new.example.test', [{ type: 'TXT', data: ['a', 'b'] }]);
  const txt = await answer('new.example.test', 'TXT', 'tcp');
  assert.deepEqual(
    txt.answers?.map((a) => ('data' in a ? (a.data as Buffer[]).map(String) : undefined)),
    [['a', 'b']],
  );

  server.setRecords('new.example.test', []);
  assert.equal((await answer('new.example.test', 'TXT')).rcode, 'NXDOMAIN', 'an empty list removes the name');

  server.setRecords('dangling.example.test', [{ type: 'CNAME', data: 'gone.example.test' }]);
  const dangling = await answer('dangling.example.test', 'A');
  assert.equal(dangling.rcode, 'NXDOMAIN', 'the rcode describes the CNAME target (RFC 6604)');
  assert.deepEqual(
    dangling.answers?.map((a) => a.type),
    ['CNAME'],
  );

  server.setZones({ 'other.test': [{ type: 'A', data: '203.0.113.1' }] });
  assert.equal((await answer('example.test', 'A')).rcode, 'NXDOMAIN');
  assert.equal((await answer('other.test', 'A')).answers?.length, 1);
});

test("node's own resolver (c-ares) gets answers, NXDOMAIN, and falls back to TCP on TC", async () => {
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${server.port}`]);
  assert.deepEqual(await resolver.resolve4('example.test'), ['192.0.2.1']);
  const nullMx = await resolver.resolveMx('nullmx.example.test');
  assert.deepEqual(
    nullMx.map(({ priority, exchange }) => ({ priority, exchange })),
    [{ priority: 0, exchange: '' }],
  );
  await assert.rejects(resolver.resolve4('nope.example.test'), { code: 'ENOTFOUND' });
  server.resetQueries();
  assert.equal((await resolver.resolve4('many.example.test')).length, manyAddresses.length);
  assert.deepEqual(
    server.queries.map((q) => q.transport),
    ['udp', 'tcp'],
  );
});

test('malformed packets are ignored and the server keeps answering', async () => {
  const port = server.port;
  assert.equal(await exchange(port, Buffer.from([1, 2, 3]), 'udp', 200), undefined);
  assert.equal(await exchange(port, Buffer.alloc(40, 0xff), 'tcp', 200), undefined);
  const response = dnsPacket.encode({
    type: 'response',
    id: 9,
    questions: [{ name: 'example.test', type: 'A' }],
  });
  assert.equal(await exchange(port, response, 'udp', 200), undefined, 'responses are never answered');
  assert.equal((await answer('example.test', 'A')).rcode, 'NOERROR');
});

test('TCP carries several length-prefixed queries on one connection, split anyhow', async () => {
  const socket = connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  const bytes = Buffer.concat([
    frame(encodeQuery('example.test', 'A')),
    frame(encodeQuery('v6.example.test', 'AAAA')),
  ]);
  socket.write(bytes.subarray(0, 1));
  await new Promise((r) => setTimeout(r, 20));
  socket.write(bytes.subarray(1));
  const replies: Response[] = [];
  let received = Buffer.alloc(0);
  for await (const chunk of socket) {
    received = Buffer.concat([received, chunk as Buffer]);
    while (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
      replies.push(dnsPacket.decode(received.subarray(2, 2 + received.readUInt16BE(0))) as Response);
      received = received.subarray(2 + received.readUInt16BE(0));
    }
    if (replies.length === 2) break;
  }
  socket.destroy();
  assert.deepEqual(
    replies.map((r) => r.answers?.[0]?.type),
    ['A', 'AAAA'],
  );
});

test('close() drops open TCP connections and frees the UDP and TCP port', async () => {
  const own = await startTestDnsServer({ zones, host: '127.0.0.1' });
  assert.equal(own.host, '127.0.0.1');
  assert.ok(own.port > 0);
  assert.equal((await query(own.port, 'example.test', 'A', 'udp'))?.rcode, 'NOERROR');

  const idle = connect(own.port, '127.0.0.1');
  await once(idle, 'connect');
  const closed = once(idle, 'close');
  await own.close();
  await closed;
  await own.close(); // idempotent

  const tcp = createServer().listen(own.port, '127.0.0.1');
  await once(tcp, 'listening');
  await new Promise((r) => tcp.close(r));
  const udp = createSocket('udp4');
  udp.bind(own.port, '127.0.0.1');
  await once(udp, 'listening');
  await new Promise((r) => udp.close(() => r(undefined)));
});
