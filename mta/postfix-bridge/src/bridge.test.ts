import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compilePolicy } from '@mailpools/policy';
import { writePostfixInstance } from './postfix-config.ts';
import { routeFor, routesOf } from './routes.ts';
import { startSaslServer } from './sasl.ts';
import { bridgeSettings } from './settings.ts';

const policy = compilePolicy({
  version: 'r1',
  defaults: {
    routing: {
      pools: {
        NORMAL: {
          helo: 'out.example.net',
          ips: [{ ip: '192.0.2.1' }, { ip: '192.0.2.2', helo: 'o2.example.net' }],
        },
        HIGH_RISK: { ips: [{ ip: '192.0.2.9' }] },
      },
    },
  },
  tenants: {
    big: { routing: { pools: { NORMAL: { helo: 'out.big.example', ips: [{ ip: '192.0.2.1' }] } } } },
  },
});

test('one listener per distinct source IP and HELO of every pool of the defaults and every tenant', () => {
  const routes = routesOf(policy, 10_100);
  assert.equal(routes.holdPort, 10_100);
  assert.equal(routes.defaultPort, 10_101);
  assert.deepEqual(
    routes.sources.map((s) => [s.ip, s.helo, s.port]),
    [
      ['192.0.2.1', 'out.example.net', 10_102],
      ['192.0.2.2', 'o2.example.net', 10_103],
      ['192.0.2.9', 'outbound-hr.mailpools.invalid', 10_104],
      ['192.0.2.1', 'out.big.example', 10_105],
    ],
  );
  assert.equal(routeFor(routes, '192.0.2.1', 'out.big.example')?.port, 10_105);
  assert.equal(routeFor(routes, '198.51.100.1', null), undefined);
});

test('the Postfix instance: a proxied submission listener, a re-injection listener and bound transport per IP, nothing else leaves', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailpools-postfix-unit-'));
  const { configDir } = writePostfixInstance({
    dir,
    myhostname: 'mta.example.net',
    submissionHost: '127.0.0.1',
    submissionPort: 2587,
    trustedClients: ['192.0.2.50'],
    bridgeHost: '127.0.0.1',
    proxyPort: 10_025,
    requeuePort: 10_027,
    saslType: 'dovecot',
    saslPath: 'inet:127.0.0.1:10028',
    routes: routesOf(policy, 10_100),
    proxyTimeoutSeconds: 60,
    retrySeconds: 30,
  });
  const main = readFileSync(join(configDir, 'main.cf'), 'utf8');
  const master = readFileSync(join(configDir, 'master.cf'), 'utf8');
  assert.match(main, /^default_transport = mailpools_requeue:\[127\.0\.0\.1\]:10027$/m);
  assert.match(main, /^internal_mail_filter_classes = bounce$/m);
  assert.match(main, /^content_filter = mailpools_requeue:\[127\.0\.0\.1\]:10027$/m);
  assert.match(main, /^mynetworks = 127\.0\.0\.0\/8 192\.0\.2\.50$/m);
  assert.match(
    master,
    /^127\.0\.0\.1:2587 .* smtpd\n {2}-o smtpd_sasl_auth_enable=yes\n {2}-o smtpd_proxy_filter=127\.0\.0\.1:10025$/m,
  );
  assert.match(master, /^127\.0\.0\.1:10102 .* smtpd\n {2}-o content_filter=mailpools_ip0:$/m);
  assert.match(
    master,
    /^mailpools_ip1 +unix +- - n - - smtp\n {2}-o smtp_bind_address=192\.0\.2\.2\n {2}-o smtp_helo_name=o2\.example\.net$/m,
  );
  assert.match(
    master,
    /^127\.0\.0\.1:10100 .* smtpd\n {2}-o content_filter=mailpools_requeue:\[127\.0\.0\.1\]:10027$/m,
  );
});

test('settings: connectors and forwarders by IP; a wrong entry is named', () => {
  const settings = bridgeSettings({
    MAILPOOLS_BRIDGE_CONNECTORS: '192.0.2.10=contoso,onprem',
    MAILPOOLS_BRIDGE_FORWARDERS: '192.0.2.20, 192.0.2.21',
  });
  assert.deepEqual(settings.connectors.get('192.0.2.10'), { tenantId: 'contoso', name: 'onprem' });
  assert.deepEqual([...settings.forwarders], ['192.0.2.20', '192.0.2.21']);
  assert.throws(
    () => bridgeSettings({ MAILPOOLS_BRIDGE_FORWARDERS: 'mx.example' }),
    /MAILPOOLS_BRIDGE_FORWARDERS/,
  );
});

test("SMTP AUTH in Dovecot's protocol: PLAIN with an initial response, LOGIN step by step, a wrong password fails", async () => {
  const sasl = await startSaslServer({
    host: '127.0.0.1',
    port: 0,
    users: () => new Map([['alice@contoso.test', 's3cret']]),
  });
  try {
    const socket = connect(sasl.port, '127.0.0.1');
    socket.setEncoding('utf8');
    let received = '';
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    const waitFor = async (pattern: RegExp) => {
      for (let i = 0; i < 100 && !pattern.test(received); i++) await new Promise((r) => setTimeout(r, 10));
      assert.match(received, pattern);
    };
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    await waitFor(/DONE\n/);
    assert.match(received, /MECH\tPLAIN\t/);
    socket.write(
      `VERSION\t1\t2\nCPID\t1\nAUTH\t1\tPLAIN\tservice=smtp\tresp=${b64('\0Alice@Contoso.test\0s3cret')}\n`,
    );
    await waitFor(/OK\t1\tuser=alice@contoso\.test\n/);
    socket.write(`AUTH\t2\tPLAIN\tservice=smtp\tresp=${b64('\0alice@contoso.test\0wrong')}\n`);
    await waitFor(/FAIL\t2\t/);
    socket.write('AUTH\t3\tLOGIN\tservice=smtp\n');
    await waitFor(/CONT\t3\t/);
    socket.write(`CONT\t3\t${b64('alice@contoso.test')}\n`);
    await waitFor(/CONT\t3\t.+\n[\s\S]*$/);
    socket.write(`CONT\t3\t${b64('s3cret')}\n`);
    await waitFor(/OK\t3\tuser=alice@contoso\.test\n/);
    socket.destroy();
  } finally {
    await sasl.close();
  }
});
