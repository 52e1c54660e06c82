// auth-verifier's checks on messages signed here with RSA and Ed25519 keys whose public halves a
// real DNS server on loopback publishes, read through the shared resolver.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, test } from 'node:test';
import { nodeStyleResolve } from '@mailpools/dns';
import { compilePolicy, DEFAULT_POLICY, type Policy } from '@mailpools/policy';
import type { AuthVerdict, OutboundMessage } from '@mailpools/schemas';
import { loopbackResolver, sampleEvent, startTestDnsServer, type TestDnsServer } from '@mailpools/testkit';
import { authenticate, dkimSign } from 'mailauth';
import { spfClientIp, type VerifyDeps, verify } from './verify.ts';

const SENDER_IP = '192.0.2.10';
const FORWARDER_IP = '198.51.100.20';
const THIRD_PARTY_IP = '203.0.113.30';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const der = (key: typeof rsa.publicKey) => key.export({ type: 'spki', format: 'der' });
const rsaTxt = `v=DKIM1; k=rsa; p=${der(rsa.publicKey).toString('base64')}`;
// RFC 8463: an Ed25519 key record holds the raw 32-byte key, not the SPKI structure.
const edTxt = `v=DKIM1; k=ed25519; p=${der(ed.publicKey).subarray(-32).toString('base64')}`;
const pem = (key: typeof rsa.privateKey) => key.export({ type: 'pkcs8', format: 'pem' }).toString();

let dns: TestDnsServer;
let deps: VerifyDeps;

before(async () => {
  dns = await startTestDnsServer({
    zones: {
      'contoso.test': [{ type: 'TXT', data: `v=spf1 ip4:${SENDER_IP} -all` }],
      '_dmarc.contoso.test': [{ type: 'TXT', data: 'v=DMARC1; p=reject' }],
      'rsa._domainkey.contoso.test': [{ type: 'TXT', data: rsaTxt }],
      'ed._domainkey.contoso.test': [{ type: 'TXT', data: edTxt }],
      'gone._domainkey.contoso.test': [{ type: 'TXT', data: 'v=DKIM1; k=rsa; p=' }],
      'mailer.test': [{ type: 'TXT', data: 'v=spf1 -all' }],
      'rsa._domainkey.mailer.test': [{ type: 'TXT', data: rsaTxt }],
      'forwarder.test': [{ type: 'TXT', data: `v=spf1 ip4:${FORWARDER_IP} -all` }],
      'arc._domainkey.forwarder.test': [{ type: 'TXT', data: rsaTxt }],
    },
  });
  deps = {
    resolve: nodeStyleResolve(loopbackResolver(dns)),
    policy: () => DEFAULT_POLICY,
    maxBytes: 65_536,
    timeoutMs: 5_000,
    mta: 'mx.mailpools.test',
  };
});
after(() => dns.close());

function message(from = 'alice@contoso.test', body = 'Quarterly figures attached.\r\n'): string {
  return [
    `From: Alice <${from}>`,
    'To: bob@fabrikam.test',
    'Subject: Figures',
    'Date: Mon, 23 Nov 2026 09:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@contoso.test>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    body,
  ].join('\r\n');
}

async function signed(
  raw: string,
  selector: string,
  privateKey: string,
  domain = 'contoso.test',
): Promise<string> {
  // mailauth signs what `signatureData` lists; its type declarations name the fields one level up.
  const options = { signatureData: [{ signingDomain: domain, selector, privateKey }] };
  const result = await dkimSign(raw, options as unknown as Parameters<typeof dkimSign>[1]);
  assert.deepEqual(result.errors, []);
  return result.signatures + raw;
}

function event(raw: string | Buffer, overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  const bytes = Buffer.from(raw);
  return {
    ...sampleEvent('m1'),
    tenantId: 'contoso',
    envelopeSender: 'alice@contoso.test',
    fromHeader: 'alice@contoso.test',
    clientIp: SENDER_IP,
    helo: 'mail.contoso.test',
    origin: 'FORWARDED',
    raw: bytes,
    rawSize: bytes.length,
    ...overrides,
  };
}

const brief = (v: AuthVerdict) => ({
  spf: v.spf,
  dkim: v.dkimSignatures.map((s) => `${s.domain}/${s.selector}/${s.result}`),
  dkimPassForSender: v.dkimPassForSender,
  dmarc: v.dmarc,
  vouched: v.vouched,
});

test('RSA signature, SPF from the listed IP: everything passes and the sender is vouched for', async () => {
  const verdict = await verify(event(await signed(message(), 'rsa', pem(rsa.privateKey))), deps);
  assert.deepEqual(brief(verdict), {
    spf: 'pass',
    dkim: ['contoso.test/rsa/pass'],
    dkimPassForSender: true,
    dmarc: 'pass',
    vouched: true,
  });
  assert.equal(verdict.dkimSignatures[0]?.algorithm, 'rsa-sha256');
  assert.deepEqual(
    [verdict.status, verdict.senderDomain, verdict.spfDomain, verdict.dmarcPolicy],
    ['VERIFIED', 'contoso.test', 'contoso.test', 'reject'],
  );
});

test('Ed25519 signature from an IP SPF does not list: DKIM alone vouches, DMARC passes aligned', async () => {
  const verdict = await verify(
    event(await signed(message(), 'ed', pem(ed.privateKey)), { clientIp: THIRD_PARTY_IP }),
    deps,
  );
  assert.deepEqual(brief(verdict), {
    spf: 'fail',
    dkim: ['contoso.test/ed/pass'],
    dkimPassForSender: true,
    dmarc: 'pass',
    vouched: true,
  });
  assert.equal(verdict.dkimSignatures[0]?.algorithm, 'ed25519-sha256');
});

test('a body modified after signing fails DKIM; with SPF failing too, DMARC fails and nothing vouches', async () => {
  const raw = (await signed(message(), 'rsa', pem(rsa.privateKey))).replace(
    'Quarterly figures',
    'Quarterly invoices',
  );
  assert.deepEqual(brief(await verify(event(raw, { clientIp: THIRD_PARTY_IP }), deps)), {
    spf: 'fail',
    dkim: ['contoso.test/rsa/fail'],
    dkimPassForSender: false,
    dmarc: 'fail',
    vouched: false,
  });
});

test('a selector with no key, and a revoked key (empty p=), never pass', async () => {
  const missing = await verify(
    event(await signed(message(), 'missing', pem(rsa.privateKey)), { clientIp: THIRD_PARTY_IP }),
    deps,
  );
  const revoked = await verify(
    event(await signed(message(), 'gone', pem(rsa.privateKey)), { clientIp: THIRD_PARTY_IP }),
    deps,
  );
  for (const verdict of [missing, revoked]) {
    assert.equal(verdict.dkimSignatures.length, 1);
    assert.notEqual(verdict.dkimSignatures[0]?.result, 'pass');
    assert.equal(verdict.vouched, false);
  }
  // mailauth reports both as neutral (the signature could not be verified), never as pass.
  assert.deepEqual(
    [missing.dkimSignatures[0]?.result, revoked.dkimSignatures[0]?.result],
    ['neutral', 'neutral'],
  );
});

test('a valid signature of another domain is not DKIM for the sender: unaligned, DMARC fails', async () => {
  const verdict = await verify(
    event(await signed(message(), 'rsa', pem(rsa.privateKey), 'mailer.test'), { clientIp: THIRD_PARTY_IP }),
    deps,
  );
  assert.deepEqual(brief(verdict), {
    spf: 'fail',
    dkim: ['mailer.test/rsa/pass'],
    dkimPassForSender: false,
    dmarc: 'fail',
    vouched: false,
  });
});

test('a forwarded message keeps its ARC seal: arc=pass at the platform', async () => {
  // The message arrives at forwarder.test from the sender's IP; the forwarder seals what it saw and
  // passes it on from its own IP, where SPF for contoso.test no longer passes.
  const original = await signed(message(), 'rsa', pem(rsa.privateKey));
  const atForwarder = await authenticate(original, {
    ip: SENDER_IP,
    helo: 'mail.contoso.test',
    sender: 'alice@contoso.test',
    mta: 'mx.forwarder.test',
    resolver: deps.resolve,
    seal: { signingDomain: 'forwarder.test', selector: 'arc', privateKey: pem(rsa.privateKey) },
  });
  const forwarded = atForwarder.headers + original;
  const verdict = await verify(event(forwarded, { clientIp: FORWARDER_IP, helo: 'mx.forwarder.test' }), deps);
  assert.equal(verdict.arc, 'pass');
  assert.equal(verdict.spf, 'fail');
  assert.equal(verdict.vouched, true, 'the unmodified DKIM signature still vouches');
  const unsealed = await verify(event(original, { clientIp: FORWARDER_IP }), deps);
  assert.equal(unsealed.arc, 'none');
});

test('an accepted domain vouches by itself; enhanced filtering evaluates SPF against the IP before the third party', async () => {
  const policy: Policy = compilePolicy({
    version: 't',
    tenants: { contoso: { directory: { acceptedDomains: ['contoso.test'] } } },
  });
  const accepted = await verify(event(message(), { clientIp: THIRD_PARTY_IP }), {
    ...deps,
    policy: () => policy,
  });
  assert.deepEqual([accepted.spf, accepted.acceptedDomain, accepted.vouched], ['fail', true, true]);

  const connector = { name: 'third-party-mx', enhancedFiltering: true, originalClientIp: SENDER_IP };
  const viaConnector = event(message(), {
    clientIp: THIRD_PARTY_IP,
    connector,
    origin: 'ON_PREMISES_CONNECTOR',
  });
  assert.equal(spfClientIp(viaConnector), SENDER_IP);
  const enhanced = await verify(viaConnector, deps);
  assert.deepEqual([enhanced.spf, enhanced.spfClientIp, enhanced.vouched], ['pass', SENDER_IP, true]);
  const plain = await verify(
    { ...viaConnector, connector: { ...connector, enhancedFiltering: false } },
    deps,
  );
  assert.deepEqual([plain.spf, plain.spfClientIp, plain.vouched], ['fail', THIRD_PARTY_IP, false]);
});

test('a truncated or oversized message gets SPF only, said so; a tenant may verify forwarded mail only', async () => {
  const raw = await signed(message(), 'rsa', pem(rsa.privateKey));
  const truncated = await verify(event(raw, { rawTruncated: true }), deps);
  assert.deepEqual(
    [truncated.status, truncated.spf, truncated.dkimSignatures.length],
    ['PARTIAL', 'pass', 0],
  );
  assert.match(truncated.statusReason ?? '', /truncated/);
  const large = await verify(event(raw), { ...deps, maxBytes: 256 });
  assert.equal(large.status, 'PARTIAL');
  assert.match(large.statusReason ?? '', /over 256 bytes/);

  const policy = compilePolicy({ version: 't', tenants: { contoso: { auth: { verifyAll: false } } } });
  const submitted = await verify(event(raw, { origin: 'CLIENT_SUBMISSION' }), {
    ...deps,
    policy: () => policy,
  });
  assert.deepEqual([submitted.status, submitted.spf, submitted.vouched], ['SKIPPED', 'none', false]);
  const forwarded = await verify(event(raw, { origin: 'FORWARDED' }), { ...deps, policy: () => policy });
  assert.equal(forwarded.status, 'VERIFIED');
});

test('malformed input gives a verdict, never a crash or a hang', async () => {
  for (const raw of [
    '',
    'not a message at all',
    `From: ${'x'.repeat(20_000)}\r\n\r\nbody`,
    'DKIM-Signature: v=1; a=rsa-sha256; d=;\r\n\r\n',
  ]) {
    const verdict = await verify(event(raw, { envelopeSender: '', fromHeader: '' }), deps);
    assert.equal(verdict.vouched, false, JSON.stringify(raw.slice(0, 30)));
  }
});
