// Every rule, every precedence between them, missing enrichments, SRS: table-driven, no I/O.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseSourceIp, compilePolicy, type Policy } from '@mailpools/policy';
import type { DnsVerdict, LimitsVerdict, OutboundMessage, SpamVerdict } from '@mailpools/schemas';
import { sampleEvent } from '@mailpools/testkit';
import { route } from './route.ts';
import { srsReverse } from './srs.ts';

const SECRET = 'correct horse battery staple';
const policy: Policy = compilePolicy({
  version: 'p1',
  defaults: {
    routing: {
      pools: {
        NORMAL: {
          helo: 'out.example.net',
          ips: [
            { ip: '198.51.100.1', weight: 3 },
            { ip: '198.51.100.2', helo: 'out2.example.net' },
          ],
        },
        HIGH_RISK: { ips: [{ ip: '203.0.113.9' }] },
      },
      srs: { secret: SECRET },
    },
  },
  tenants: {
    contoso: { directory: { acceptedDomains: ['contoso.test', 'contoso-mail.test'] } },
    legacy: { routing: { overLimit: 'high-risk' } },
    strictdns: { routing: { onDnsTempError: 'high-risk', onMissingEnrichment: 'high-risk' } },
    reordered: { routing: { rules: ['spam', 'blocked', 'ndr', 'no-a-no-mx', 'unvouched-relay'] } },
  },
});

const spam = (label: SpamVerdict['label'], score = label === 'SPAM' ? 0.97 : 0.02): SpamVerdict => ({
  score,
  label,
  modelVersion: 'm1',
  truncated: false,
  topFeatures: [],
});
const limits = (decision: LimitsVerdict['decision'], extra: Partial<LimitsVerdict> = {}): LimitsVerdict => ({
  decision,
  limit: null,
  count: 0,
  threshold: 0,
  restricted: false,
  deferUntil: null,
  policy: 'Default',
  action: null,
  restrictedUntil: null,
  smtpReply: null,
  usage: [],
  ...extra,
});
const dns = (extra: Partial<DnsVerdict> = {}): DnsVerdict => ({
  domain: 'contoso.test',
  status: 'OK',
  hasA: true,
  hasAaaa: false,
  hasMx: true,
  nullMx: false,
  ttlSeconds: 300,
  fromCache: false,
  ...extra,
});
const auth = (vouched: boolean, acceptedDomain = false) => ({
  spf: vouched && !acceptedDomain ? 'pass' : 'fail',
  spfDomain: 'fabrikam.test',
  dkimPassForSender: false,
  dmarc: 'none',
  arc: 'none',
  acceptedDomain,
  vouched,
  status: 'VERIFIED' as const,
  statusReason: null,
  senderDomain: 'fabrikam.test',
  spfClientIp: '192.0.2.1',
  dkimSignatures: [],
  dmarcPolicy: null,
});

function event(overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    ...sampleEvent('m1'),
    tenantId: 'contoso',
    submitter: 'bob@contoso.test',
    envelopeSender: 'bob@contoso.test',
    spam: spam('HAM'),
    limits: limits('ALLOW'),
    dns: dns(),
    auth: auth(true, true),
    ...overrides,
  };
}

const NDR = { messageClass: 'NDR' as const, origin: 'SYSTEM_NDR' as const, envelopeSender: '' };
const OVER = limits('BLOCK', {
  limit: 'recipientRate',
  count: 10_001,
  threshold: 10_000,
  restricted: true,
  smtpReply: '550 5.1.8 Access denied, bad outbound sender',
});
const NO_RECORDS = dns({ domain: 'nowhere.test', status: 'NXDOMAIN', hasA: false, hasMx: false });
const FORWARDED = { origin: 'FORWARDED' as const, envelopeSender: 'alice@fabrikam.test' };

for (const [name, overrides, pool, rule] of [
  ['good mail', {}, 'NORMAL', null],
  ['a restricted sender', { limits: OVER }, 'BLOCKED', 'blocked'],
  [
    'a message with too many recipients',
    { limits: limits('REJECT', { limit: 'recipientsPerMessage', count: 600, threshold: 500 }) },
    'BLOCKED',
    'blocked',
  ],
  ['an NDR', NDR, 'HIGH_RISK', 'ndr'],
  [
    'a failed DSN',
    {
      messageClass: 'DSN' as const,
      dsn: {
        action: 'failed',
        status: '5.1.1',
        diagnosticCode: null,
        finalRecipient: 'x@y.test',
        remoteMta: null,
        originalMessageId: null,
        originalEnvelopeSender: null,
        originalConnector: null,
        originalClientIp: null,
      },
    },
    'HIGH_RISK',
    'ndr',
  ],
  ['a sender domain without A or MX', { dns: NO_RECORDS }, 'HIGH_RISK', 'no-a-no-mx'],
  [
    'a sender domain with only a null MX',
    { dns: dns({ hasA: false, hasMx: false, nullMx: true }) },
    'HIGH_RISK',
    'no-a-no-mx',
  ],
  [
    'an invalid sender domain',
    { dns: dns({ status: 'INVALID_DOMAIN', hasA: false, hasMx: false }) },
    'HIGH_RISK',
    'no-a-no-mx',
  ],
  [
    'a DNS outage (not penalised by default)',
    { dns: dns({ status: 'TEMPERROR', hasA: false, hasMx: false }) },
    'NORMAL',
    null,
  ],
  ['spam', { spam: spam('SPAM') }, 'HIGH_RISK', 'spam'],
  ['suspicious but not spam', { spam: spam('SUSPICIOUS', 0.3) }, 'NORMAL', null],
  ['forwarded, not vouched for', { ...FORWARDED, auth: auth(false) }, 'RELAY', 'unvouched-relay'],
  [
    'relayed from on-premises, not vouched for',
    { origin: 'ON_PREMISES_CONNECTOR' as const, auth: auth(false) },
    'RELAY',
    'unvouched-relay',
  ],
  ['forwarded and vouched for', { ...FORWARDED, auth: auth(true) }, 'NORMAL', null],
  ['a client submission that SPF fails (not relayed: no relay rule)', { auth: auth(false) }, 'NORMAL', null],
  // precedence: the first rule that matches decides
  [
    'a restricted sender of spam from a domain without records',
    { limits: OVER, spam: spam('SPAM'), dns: NO_RECORDS },
    'BLOCKED',
    'blocked',
  ],
  ['an NDR judged spam from nowhere', { ...NDR, spam: spam('SPAM'), dns: NO_RECORDS }, 'HIGH_RISK', 'ndr'],
  [
    'ham from a domain without records (whatever else is true)',
    { dns: NO_RECORDS, ...FORWARDED, auth: auth(false) },
    'HIGH_RISK',
    'no-a-no-mx',
  ],
  [
    'forwarded spam nobody vouches for',
    { spam: spam('SPAM'), ...FORWARDED, auth: auth(false) },
    'HIGH_RISK',
    'spam',
  ],
] as const) {
  test(`${name} → ${pool}`, () => {
    const { assignment } = route(event(overrides as Partial<OutboundMessage>), policy, 1);
    assert.equal(assignment.pool, pool);
    const decider = assignment.trace.find((t) => t.matched);
    assert.equal(decider?.rule ?? null, rule);
    // Every rule up to the decider was tried, in order, none after it.
    const order = ['blocked', 'ndr', 'no-a-no-mx', 'spam', 'unvouched-relay'];
    assert.deepEqual(
      assignment.trace.map((t) => t.rule),
      order.slice(0, rule ? order.indexOf(rule) + 1 : order.length),
    );
    assert.equal(assignment.policyVersion, 'p1');
  });
}

test('friendly pool names, source IPs by weight (stable per message) with their HELO names, SMTP replies for blocked mail', () => {
  assert.equal(route(event(), policy, 1).assignment.poolName, 'RegularRelayOutboundPool');
  const blocked = route(event({ limits: OVER }), policy, 1).assignment;
  assert.deepEqual(
    [blocked.poolName, blocked.sourceIp, blocked.heloName, blocked.smtpReply],
    ['BlockedOutboundPool', null, null, '550 5.1.8 Access denied, bad outbound sender'],
  );
  const spammy = route(event({ spam: spam('SPAM') }), policy, 1).assignment;
  assert.deepEqual([spammy.sourceIp, spammy.heloName], ['203.0.113.9', 'outbound-hr.mailpools.invalid']);
  const helos = new Map<string, string>();
  for (let i = 0; i < 50; i++) {
    const normal = route(event({ messageId: `h${i}` }), policy, 1).assignment;
    helos.set(normal.sourceIp ?? '', normal.heloName ?? '');
  }
  assert.deepEqual(
    Object.fromEntries(helos),
    { '198.51.100.1': 'out.example.net', '198.51.100.2': 'out2.example.net' },
    "an IP's own HELO name wins over its pool's",
  );
  const ips = [
    { ip: 'a', weight: 3 },
    { ip: 'b', weight: 1 },
  ];
  const picks = Array.from({ length: 4_000 }, (_, i) => chooseSourceIp(`m${i}`, ips)?.ip);
  const share = picks.filter((p) => p === 'a').length / picks.length;
  assert.ok(share > 0.7 && share < 0.8, `weight 3 of 4 gets about 75 %, got ${share}`);
  assert.equal(chooseSourceIp('m7', ips), chooseSourceIp('m7', ips));
  assert.equal(chooseSourceIp('m7', []), null);
});

test('the trace shows the inputs each rule saw', () => {
  const { assignment } = route(event({ dns: NO_RECORDS }), policy, 1);
  const dnsRule = assignment.trace.find((t) => t.rule === 'no-a-no-mx');
  assert.deepEqual(dnsRule?.inputs, {
    domain: 'nowhere.test',
    status: 'NXDOMAIN',
    hasA: 'false',
    hasAaaa: 'false',
    hasMx: 'false',
    nullMx: 'false',
    onDnsTempError: 'ignore',
  });
  assert.match(assignment.reasons[0] ?? '', /neither an A nor an MX record \(NXDOMAIN\)/);
});

test('tenant policy: over-limit mail high-risk (the older behaviour), DNS outages and missing enrichments penalised, rule order', () => {
  const overLimit = limits('BLOCK', { limit: 'externalPerHour', count: 11, threshold: 10 });
  assert.equal(
    route(event({ tenantId: 'legacy', limits: overLimit }), policy, 1).assignment.pool,
    'HIGH_RISK',
  );
  assert.equal(
    route(event({ tenantId: 'legacy', limits: OVER }), policy, 1).assignment.pool,
    'BLOCKED',
    'a restricted sender is never sent',
  );
  assert.equal(
    route(event({ tenantId: 'strictdns', dns: dns({ status: 'TEMPERROR' }) }), policy, 1).assignment.pool,
    'HIGH_RISK',
  );
  assert.equal(route(event({ tenantId: 'strictdns', spam: null }), policy, 1).assignment.pool, 'HIGH_RISK');
  assert.equal(
    route(event({ spam: null, dns: null, limits: null }), policy, 1).assignment.pool,
    'NORMAL',
    'missing enrichments are ignored by default',
  );
  assert.equal(
    route(event({ tenantId: 'reordered', limits: OVER, spam: spam('SPAM') }), policy, 1).assignment.pool,
    'HIGH_RISK',
  );
});

test('throttled mail carries its not-before time; warnings are reasons', () => {
  const throttled = route(
    event({
      limits: limits('THROTTLE', {
        limit: 'messageRate',
        count: 31,
        threshold: 30,
        deferUntil: 1_700_000_060_000,
      }),
    }),
    policy,
    1,
  ).assignment;
  assert.deepEqual([throttled.pool, throttled.notBefore], ['NORMAL', 1_700_000_060_000]);
  assert.match(throttled.reasons.join('\n'), /throttled/);
});

test('SRS: a vouched-for forwarded message is rewritten in the forwarding domain; the address reverses', async () => {
  const { assignment, srsRecord } = route(event({ ...FORWARDED, auth: auth(true) }), policy, 1);
  const rewritten = assignment.rewrittenSender ?? assert.fail('rewritten');
  assert.match(rewritten, /^bob\+SRS=[a-z2-7]{8}=[a-z2-7]{2}=fabrikam\.test=alice@contoso\.test$/);
  assert.equal(srsRecord, undefined);
  const keys = { secret: SECRET, maxAgeDays: 21 };
  const back = await srsReverse(rewritten, assignment.eventTime + 86_400_000, keys, async () => undefined);
  assert.deepEqual(back, { ok: true, original: 'alice@fabrikam.test' });
  // Not rewritten: relay-pool mail, mail from the tenant's own domains, and client submissions.
  assert.equal(route(event({ ...FORWARDED, auth: auth(false) }), policy, 1).assignment.rewrittenSender, null);
  assert.equal(
    route(event({ origin: 'FORWARDED', auth: auth(true, true) }), policy, 1).assignment.rewrittenSender,
    null,
  );
  assert.equal(
    route(event({ envelopeSender: 'alice@fabrikam.test', auth: auth(true) }), policy, 1).assignment
      .rewrittenSender,
    null,
  );
});

test('SRS: a local part over 64 characters, or an on-premises relay, uses the bounces form kept for reversal', async () => {
  const long = `${'a'.repeat(50)}@fabrikam.test`;
  const { assignment, srsRecord } = route(
    event({ origin: 'FORWARDED', envelopeSender: long, auth: auth(true) }),
    policy,
    1,
  );
  assert.match(assignment.rewrittenSender ?? '', /^bounces\+SRS=[a-z2-7]{8}=[a-z2-7]{2}@contoso\.test$/);
  assert.equal(srsRecord?.original, long);
  const keys = { secret: SECRET, maxAgeDays: 21 };
  const kept = new Map([[srsRecord?.key ?? '', long]]);
  const back = await srsReverse(assignment.rewrittenSender ?? '', assignment.eventTime, keys, async (k) =>
    kept.get(k),
  );
  assert.deepEqual(back, { ok: true, original: long });
  const onPrem = route(
    event({ origin: 'ON_PREMISES_CONNECTOR', envelopeSender: 'x@partner.test', auth: auth(true) }),
    policy,
    1,
  ).assignment;
  assert.match(onPrem.rewrittenSender ?? '', /^bounces\+SRS=/);
});

test('SRS: forged, tampered and expired addresses are refused with a code', async () => {
  const keys = { secret: SECRET, maxAgeDays: 21 };
  const t = Date.UTC(2026, 10, 23);
  const { assignment } = route(event({ ...FORWARDED, eventTime: t, auth: auth(true) }), policy, 1);
  const good = assignment.rewrittenSender ?? '';
  const none = async () => undefined;
  assert.equal((await srsReverse(good.replace('=alice@', '=mallory@'), t, keys, none)).ok, false);
  assert.equal((await srsReverse(good, t, { ...keys, secret: 'another secret entirely' }, none)).ok, false);
  const expired = await srsReverse(good, t + 22 * 86_400_000, keys, none);
  assert.deepEqual([expired.ok, !expired.ok && expired.code], [false, 'MAILPOOLS_ERR_SRS_EXPIRED']);
  const forged = await srsReverse('bob+SRS=aaaaaaaa=ab=fabrikam.test=alice@contoso.test', t, keys, none);
  assert.equal(!forged.ok && forged.code, 'MAILPOOLS_ERR_SRS_FORGED');
  const unknown = await srsReverse('bounces+SRS=aaaaaaaa=ab@contoso.test', t, keys, none);
  assert.equal(!unknown.ok && unknown.code, 'MAILPOOLS_ERR_SRS_UNKNOWN');
  const plain = await srsReverse('alice@fabrikam.test', t, keys, none);
  assert.equal(!plain.ok && plain.code, 'MAILPOOLS_ERR_SRS_NOT_SRS');
  assert.equal(
    (await srsReverse(good.toUpperCase(), t, keys, none)).ok,
    true,
    'case-insensitive, as mail systems may fold case',
  );
});

test('NDR facts for the surge detector: status, the failed recipient domain, and whether the bounced message was ours', () => {
  const dsn = {
    action: 'failed',
    status: '5.1.1',
    diagnosticCode: null,
    finalRecipient: 'rfc822; Nobody@Fabrikam.test',
    remoteMta: 'mx.fabrikam.test',
    originalMessageId: null,
    originalEnvelopeSender: null,
    originalConnector: null,
    originalClientIp: null,
  };
  const { assignment } = route(event({ ...NDR, dsn }), policy, 1);
  assert.deepEqual(assignment.ndr, {
    status: '5.1.1',
    finalRecipientDomain: 'fabrikam.test',
    remoteMta: 'mx.fabrikam.test',
    originalKnown: false,
    finalRecipient: 'nobody@fabrikam.test',
    originalSender: null,
    originalSource: null,
  });
  assert.equal(assignment.isNdr, true);
});

test('a policy file change is picked up without a restart; an invalid one is refused and the old one kept', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { watchPolicy } = await import('@mailpools/policy');
  const file = join(mkdtempSync(join(tmpdir(), 'mailpools-policy-')), 'policy.json');
  writeFileSync(file, JSON.stringify({ version: 'v1' }));
  const seen: string[] = [];
  const watcher = watchPolicy(
    { MAILPOOLS_POLICY_FILE: file },
    { changed: (p) => seen.push(p.version), refused: (e) => seen.push(e.code) },
    50,
  );
  try {
    assert.equal(watcher.current().version, 'v1');
    writeFileSync(file, JSON.stringify({ version: 'v2', defaults: { routing: { overLimit: 'high-risk' } } }));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(watcher.current().version, 'v2');
    assert.equal(
      route(event({ limits: limits('BLOCK', { limit: 'x', count: 2, threshold: 1 }) }), watcher.current(), 1)
        .assignment.policyVersion,
      'v2',
    );
    writeFileSync(file, JSON.stringify({ version: 'v3', defaults: { routing: { overLimit: 'sometimes' } } }));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(watcher.current().version, 'v2');
    assert.deepEqual(seen, ['v2', 'MAILPOOLS_ERR_POLICY_INVALID']);
  } finally {
    watcher.stop();
  }
});
