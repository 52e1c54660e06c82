import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  actionFor,
  parseArrival,
  secondsUntil,
  sourceProblem,
  splitReply,
  tenantOfDomain,
} from '@mailpools/client';
import type { LookupResult } from '@mailpools/dns';
import { compilePolicy } from '@mailpools/policy';
import type { PoolAssignment } from '@mailpools/schemas';
import { mailExchangers } from './delivery.ts';
import { readSettings } from './settings.ts';

const assignment = (overrides: Partial<PoolAssignment>): PoolAssignment =>
  ({
    pool: 'NORMAL',
    poolName: 'RegularRelayOutboundPool',
    sourceIp: '192.0.2.1',
    smtpReply: null,
    notBefore: null,
    ...overrides,
  }) as PoolAssignment;

test('blocked mail is refused with its own reply; the rest is delivered, throttled mail waits until its time', () => {
  assert.deepEqual(
    actionFor(assignment({ pool: 'BLOCKED', smtpReply: '550 5.1.8 Access denied, bad outbound sender' })),
    {
      kind: 'refuse',
      code: 550,
      reply: '5.1.8 Access denied, bad outbound sender',
    },
  );
  assert.equal(actionFor(assignment({})).kind, 'deliver');
  assert.deepEqual(splitReply('451 4.7.500 Server busy'), { code: 451, text: '4.7.500 Server busy' });
  assert.equal(secondsUntil(10_500, 10_000), 1);
  assert.equal(secondsUntil(null, 10_000), 0);
  assert.equal(secondsUntil(9_000, 10_000), 0);
});

test("a pool without a source IP is not sent from the MTA's own (normal) address", () => {
  assert.equal(
    sourceProblem(assignment({ sourceIp: null })),
    null,
    'the normal pool may use the default address',
  );
  assert.match(sourceProblem(assignment({ pool: 'HIGH_RISK', sourceIp: null })) ?? '', /has no source IP/);
});

const answers: Record<string, LookupResult> = {
  'MX example.com': {
    status: 'OK',
    records: ['20 mx2.example.com.', '10 mx1.example.com.'],
    ttl: 60,
    fromCache: false,
  },
  'A mx1.example.com': { status: 'OK', records: ['192.0.2.11'], ttl: 60, fromCache: false },
  'A mx2.example.com': { status: 'OK', records: ['192.0.2.12', '192.0.2.13'], ttl: 60, fromCache: false },
  'MX nullmx.example': { status: 'OK', records: ['0 .'], ttl: 60, fromCache: false },
  'MX aonly.example': { status: 'NODATA', records: [], ttl: 60, fromCache: false },
  'A aonly.example': { status: 'OK', records: ['192.0.2.30'], ttl: 60, fromCache: false },
  'MX gone.example': { status: 'NXDOMAIN', records: [], ttl: 60, fromCache: false },
};
const lookup = async (name: string, type: string) =>
  answers[`${type} ${name}`] ?? { status: 'NODATA' as const, records: [], ttl: 0, fromCache: false };

test('exchangers by MX preference, the domain itself without MX, none for a null MX or no such domain', async () => {
  assert.deepEqual(await mailExchangers('example.com', lookup, 4), [
    { exchange: '192.0.2.11', priority: 10 },
    { exchange: '192.0.2.12', priority: 20 },
    { exchange: '192.0.2.13', priority: 20 },
  ]);
  assert.deepEqual(await mailExchangers('aonly.example', lookup, 4), [
    { exchange: '192.0.2.30', priority: 0 },
  ]);
  assert.equal(await mailExchangers('nullmx.example', lookup, 4), null);
  assert.equal(await mailExchangers('gone.example', lookup, 4), null);
  assert.deepEqual(
    await mailExchangers('example.com', lookup, 6),
    [],
    'an IPv6 source reaches only IPv6 exchangers',
  );
});

test('mailpools.ini: connectors and forwarders by IP, wrong values named; tenants by accepted domain', () => {
  const settings = readSettings({
    main: { delivery_port: '2525', metrics_port: '9464' },
    connectors: { '192.0.2.10': 'contoso,contoso-onprem' },
    forwarders: { '192.0.2.20': 'true', '192.0.2.21': 'false' },
  });
  assert.equal(settings.deliveryPort, 2525);
  assert.deepEqual(settings.connectors.get('192.0.2.10'), { tenantId: 'contoso', name: 'contoso-onprem' });
  assert.deepEqual([...settings.forwarders], ['192.0.2.20']);
  assert.throws(
    () => readSettings({ main: { delivery_port: '0' } }),
    /\[main\] delivery_port must be an integer from 1/,
  );
  assert.throws(
    () => readSettings({ connectors: { 'not-an-ip': 'x' } }),
    /\[connectors\] not-an-ip must be an IP/,
  );
  const policy = compilePolicy({
    version: 'v',
    tenants: { contoso: { directory: { acceptedDomains: ['contoso.test'] } } },
  });
  assert.equal(tenantOfDomain(policy, 'Mail.Contoso.test'), 'contoso');
  assert.equal(tenantOfDomain(policy, 'notcontoso.test'), undefined);
});

test('the arrival header of a forwarding host: origin, the IP and HELO the message came from, the mailbox', () => {
  assert.deepEqual(
    parseArrival('origin=forwarded; client-ip=203.0.113.5; helo=mx.example.org; mailbox=Alice@Contoso.test'),
    {
      origin: 'FORWARDED',
      clientIp: '203.0.113.5',
      helo: 'mx.example.org',
      mailbox: 'alice@contoso.test',
    },
  );
  assert.equal(
    parseArrival('origin=client_submission'),
    null,
    'only forwarded or relayed mail is handed over',
  );
  assert.equal(parseArrival(''), null);
});
