// `mailpools route` (a dry run of the decision, enrichments computed locally against a loopback
// DNS server) and `mailpools srs reverse`, as an admin runs them.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { srsForward } from '@mailpools/pool-router/srs';
import { runMailpools, startTestDnsServer } from '@mailpools/testkit';

const SECRET = 'a command-line test secret';

test('mailpools route explains the pool of a message without producing or counting anything', {
  timeout: 60_000,
}, async () => {
  const dns = await startTestDnsServer({ zones: { 'partner.test': [{ type: 'A', data: '203.0.113.5' }] } });
  const dir = mkdtempSync(join(tmpdir(), 'mailpools-route-'));
  const eml = join(dir, 'forwarded.eml');
  writeFileSync(
    eml,
    'From: pat@partner.test\r\nTo: bob@contoso.test\r\nSubject: Invoice\r\nMessage-ID: <inv-1@partner.test>\r\n\r\nHi Bob,\r\n\r\nI had a look at the build failure from last night. The test in the parser module times out because the fixture file moved; I pushed a fix to the branch, can you review it when you have a minute?\r\n\r\nThanks,\r\nPat\r\n',
  );
  try {
    const env = { MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}`, MAILPOOLS_DNS_TIMEOUT_MS: '500' };
    const table = await runMailpools(
      ['route', eml, '--origin', 'FORWARDED', '--client-ip', '203.0.113.99'],
      env,
    );
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /pool +RELAY — ForwardedRelayOutboundPool/);
    assert.match(table.stdout, /MATCH +unvouched-relay +origin=FORWARDED acceptedDomain=false spf=none/);
    assert.match(table.stdout, /limits +not evaluated/);
    const json = await runMailpools(['route', eml, '--json'], env);
    assert.equal(json.status, 0, json.stderr);
    const assignment = JSON.parse(json.stdout.trim()) as {
      pool: string;
      messageId: string;
      trace: { rule: string }[];
    };
    assert.deepEqual(
      [assignment.pool, assignment.messageId, assignment.trace.length],
      ['NORMAL', 'inv-1@partner.test', 5],
    );
  } finally {
    await dns.close();
  }
});

test('mailpools srs reverse restores what the router rewrote and refuses forgeries and old addresses', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailpools-srs-'));
  const policyFile = join(dir, 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({ version: 't', defaults: { routing: { srs: { secret: SECRET } } } }),
  );
  const env = { MAILPOOLS_POLICY_FILE: policyFile };
  const sent = Date.UTC(2026, 10, 20);
  const address =
    srsForward('alice@fabrikam.test', 'fwd', 'contoso.test', sent, { secret: SECRET, maxAgeDays: 21 }) ?? '';
  const ok = await runMailpools(['srs', 'reverse', address, '--at', '2026-11-23T12:00:00Z'], env);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), 'alice@fabrikam.test');
  const forged = await runMailpools(
    ['srs', 'reverse', address.replace('=alice@', '=eve@'), '--at', '2026-11-23T12:00:00Z'],
    env,
  );
  assert.equal(forged.status, 1);
  assert.match(forged.stderr, /MAILPOOLS_ERR_SRS_FORGED/);
  const old = await runMailpools(['srs', 'reverse', address, '--at', '2026-12-31T12:00:00Z'], env);
  assert.equal(old.status, 1);
  assert.match(old.stderr, /MAILPOOLS_ERR_SRS_EXPIRED/);
  const unconfigured = await runMailpools(['srs', 'reverse', address], {});
  assert.match(unconfigured.stderr, /MAILPOOLS_ERR_SRS_NOT_CONFIGURED/);
});
