// npm run bench:auth — messages/s on one core through auth-verifier's own verify() (SPF, DKIM,
// DMARC, ARC in strict mode) with a warm DNS cache: 2 KB messages with one RSA-2048 DKIM
// signature, answered by a DNS server on loopback once and then by the resolver's LRU. Prints
// p50/p99 per message. Last line: one JSON object.
import { generateKeyPairSync } from 'node:crypto';
import { nodeStyleResolve } from '@mailpools/dns';
import { DEFAULT_POLICY } from '@mailpools/policy';
import type { OutboundMessage } from '@mailpools/schemas';
import { loopbackResolver, sampleEvent, startTestDnsServer } from '@mailpools/testkit';
import { dkimSign } from 'mailauth';
import { verify } from '../src/verify.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2_000);
const PASSES = 3;
const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
const dns = await startTestDnsServer({
  zones: {
    'sender.test': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.0/24 include:_spf.sender.test -all' }],
    '_spf.sender.test': [{ type: 'TXT', data: 'v=spf1 ip4:198.51.100.0/24 -all' }],
    '_dmarc.sender.test': [{ type: 'TXT', data: 'v=DMARC1; p=quarantine' }],
    's1._domainkey.sender.test': [
      {
        type: 'TXT',
        data: `v=DKIM1; k=rsa; p=${key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
      },
    ],
  },
});
const resolver = loopbackResolver(dns, { timeoutMs: 1_000, maxNegativeTtlSeconds: 3_600 });
const deps = {
  resolve: nodeStyleResolve(resolver),
  policy: () => DEFAULT_POLICY,
  maxBytes: 262_144,
  timeoutMs: 5_000,
  mta: 'mx.mailpools.test',
};
const body = 'The figures for the quarter are in the attached sheet; call me if anything looks off. '.repeat(
  20,
);
const privateKey = key.privateKey.export({ type: 'pkcs8', format: 'pem' });
const events: OutboundMessage[] = [];
for (let i = 0; i < MESSAGES; i++) {
  const raw = `From: Alice <alice@sender.test>\r\nTo: bob@fabrikam.test\r\nSubject: Figures ${i}\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\nMessage-ID: <${i}@sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`;
  const options = { signatureData: [{ signingDomain: 'sender.test', selector: 's1', privateKey }] };
  const { signatures } = await dkimSign(raw, options as unknown as Parameters<typeof dkimSign>[1]);
  const bytes = Buffer.from(signatures + raw);
  events.push({
    ...sampleEvent(`b${i}`),
    envelopeSender: 'alice@sender.test',
    fromHeader: 'alice@sender.test',
    clientIp: `198.51.100.${i % 250}`,
    origin: 'FORWARDED',
    raw: bytes,
    rawSize: bytes.length,
  });
}
const first = await verify(events[0] as OutboundMessage, deps); // warms the cache
if (!(first.spf === 'pass' && first.dkimPassForSender && first.dmarc === 'pass'))
  throw new Error(`the benchmark's messages should pass: ${JSON.stringify(first)}`);
for (const event of events.slice(0, 200)) await verify(event, deps); // and the JIT
const networkQueries = dns.queries.length;
const times: number[] = [];
const started = performance.now();
for (let pass = 0; pass < PASSES; pass++) {
  for (const event of events) {
    const t0 = performance.now();
    await verify(event, deps);
    times.push(performance.now() - t0);
  }
}
const seconds = (performance.now() - started) / 1000;
await dns.close();
times.sort((a, b) => a - b);
const pct = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0;
const mean = events.reduce((sum, e) => sum + e.raw.length, 0) / events.length;
const figures = {
  messages_per_s_per_core: Math.round(times.length / seconds),
  p50_ms: Number(pct(0.5).toFixed(3)),
  p99_ms: Number(pct(0.99).toFixed(3)),
  mean_message_bytes: Math.round(mean),
  dns_queries_during_run: dns.queries.length - networkQueries,
  messages: times.length,
};
console.log(
  `| messages/s per core | p50 ms | p99 ms | mean bytes | DNS queries during the run |\n|---:|---:|---:|---:|---:|\n| ${figures.messages_per_s_per_core} | ${figures.p50_ms} | ${figures.p99_ms} | ${figures.mean_message_bytes} | ${figures.dns_queries_during_run} |`,
);
console.log(JSON.stringify(figures));
