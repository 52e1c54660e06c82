// Dashboards and alerts, checked the way operators meet them: the Grafana JSON is what the code
// generates; promtool accepts the rules and the Compose Prometheus configuration, and every
// alerting rule fires in its unit test; and a real Prometheus scraping the real pipeline answers
// every panel query of every dashboard with data, while the metrics keep to the naming rules.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { STAGES, TOPICS } from '@mailpools/core';
import type { OutboundMessage } from '@mailpools/schemas';
import { createEventProducer, readTopic } from '@mailpools/stream';
import {
  PROMETHEUS_DIR,
  requirePrometheus,
  type ServiceProcess,
  sampleEvent,
  startPrometheus,
  startService,
  startTestDnsServer,
  testConfig,
} from '@mailpools/testkit';
import { parse } from 'yaml';
import { DASHBOARDS, DATASOURCE_UID, dashboardFile, renderDashboard } from '../deploy/grafana/dashboards.ts';

interface PanelJson {
  id: number;
  title: string;
  description: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource: { uid: string };
  targets: { expr: string; datasource: { uid: string } }[];
}
interface DashboardJson {
  uid: string;
  title: string;
  panels: PanelJson[];
  templating: { list: { name: string; query: { query: string } }[] };
}

/** The dashboards as Grafana loads them: the provisioned files. */
const dashboards = DASHBOARDS.map(
  (spec) => JSON.parse(readFileSync(dashboardFile(spec), 'utf8')) as DashboardJson,
);
const SERVICES = STAGES.map((stage) => stage.service);
/** The only label names a mailpools metric may carry (bounded; never a sender or a message id). */
const ALLOWED_LABELS = new Set([
  '__name__',
  'job',
  'instance',
  'service',
  'stage',
  'delivery',
  'topic',
  'partition',
  'code',
  'le',
  'pool',
  'rule',
  'tenant',
  'tenant_class',
  'label',
  'decision',
  'limit',
  'action',
  'alert',
  'source',
  'status',
  'check',
  'result',
  'vouched',
  'phase',
  'cause',
  'scope',
  // prom-client's default process and Node.js metrics
  'version',
  'major',
  'minor',
  'patch',
  'kind',
  'type',
  'space',
]);

function promtool(...args: string[]): string {
  const run = spawnSync('promtool', args, { cwd: PROMETHEUS_DIR, encoding: 'utf8' });
  assert.equal(run.status, 0, `promtool ${args.join(' ')}:\n${run.stdout}${run.stderr}`);
  return run.stdout;
}

/** A panel query as Grafana sends it, with its variables filled in. */
function instantiate(expr: string, tenant: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h').replaceAll('$tenant', tenant);
}

test('the provisioned dashboard files are what deploy/grafana/dashboards.ts generates', () => {
  for (const spec of DASHBOARDS)
    assert.equal(
      readFileSync(dashboardFile(spec), 'utf8'),
      renderDashboard(spec),
      `${dashboardFile(spec).pathname} is stale: run npm run dashboards:generate`,
    );
});

test('dashboards: an overview, pipeline health and a per-tenant view, every panel explained, placed and on the provisioned data source', () => {
  assert.deepEqual(
    dashboards.map((d) => d.uid),
    ['mailpools-overview', 'mailpools-pipeline', 'mailpools-tenant'],
  );
  const readme = readFileSync(new URL('../docs/metrics-and-dashboards.md', import.meta.url), 'utf8');
  const provisioned = parse(
    readFileSync(
      new URL('../deploy/grafana/provisioning/datasources/prometheus.yml', import.meta.url),
      'utf8',
    ),
  ) as { datasources: { uid: string }[] };
  assert.equal(provisioned.datasources[0]?.uid, DATASOURCE_UID);
  for (const dashboard of dashboards) {
    assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, dashboard.uid);
    for (const panel of dashboard.panels) {
      const where = `${dashboard.uid} / ${panel.title}`;
      assert.ok(panel.description.length > 20, `${where} says what it means`);
      assert.ok(
        readme.includes(`| ${panel.title} |`),
        `${where} is in the panel table of docs/metrics-and-dashboards.md`,
      );
      assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${where} fits the grid`);
      assert.ok(panel.targets.length > 0, `${where} has a query`);
      for (const target of [panel, ...panel.targets])
        assert.equal(target.datasource.uid, DATASOURCE_UID, `${where} uses the provisioned Prometheus`);
    }
  }
  const tenantView = dashboards.find((d) => d.uid === 'mailpools-tenant');
  assert.equal(tenantView?.templating.list[0]?.name, 'tenant');
  for (const panel of tenantView?.panels ?? [])
    for (const target of panel.targets) assert.match(target.expr, /tenant="\$tenant"/, panel.title);
});

test('promtool accepts the rules and the Compose configuration, and every alerting rule fires in its unit test', () => {
  requirePrometheus();
  assert.match(promtool('check', 'rules', 'alerts.yml'), /SUCCESS/);
  assert.match(promtool('check', 'config', 'prometheus.yml'), /SUCCESS/);
  assert.match(promtool('test', 'rules', 'alerts.test.yml'), /SUCCESS/);
  const rules = parse(readFileSync(join(PROMETHEUS_DIR, 'alerts.yml'), 'utf8')) as {
    groups: { rules: { alert: string }[] }[];
  };
  const tests = parse(readFileSync(join(PROMETHEUS_DIR, 'alerts.test.yml'), 'utf8')) as {
    tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
  };
  const fired = new Set(
    tests.tests.flatMap((t) =>
      t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
    ),
  );
  const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
  for (const name of [
    'StageDown',
    'ConsumerLagGrowing',
    'DeadLettersGrowing',
    'HighRiskShareJump',
    'NdrSurge',
  ])
    assert.ok(alerts.includes(`Mailpools${name}`), `an alert for ${name}`);
  for (const alert of alerts) assert.ok(fired.has(alert), `${alert} is made to fire in alerts.test.yml`);
});

test('a real Prometheus scraping the real pipeline answers every panel query with data', {
  timeout: 300_000,
}, async () => {
  requirePrometheus();
  const config = testConfig({ MAILPOOLS_PARTITIONS: '2' });
  const dns = await startTestDnsServer({
    zones: {
      'contoso.test': [
        { type: 'A', data: '192.0.2.1' },
        { type: 'MX', data: { preference: 10, exchange: 'mx.contoso.test' } },
        { type: 'TXT', data: 'v=spf1 ip4:192.0.2.10 -all' },
      ],
      'fabrikam.test': [
        { type: 'A', data: '198.51.100.1' },
        { type: 'MX', data: { preference: 10, exchange: 'mx.fabrikam.test' } },
      ],
      'partner.test': [{ type: 'MX', data: { preference: 5, exchange: 'mx.partner.test' } }],
    },
  });
  const policyFile = join(mkdtempSync(join(tmpdir(), 'mailpools-dashboards-')), 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({
      version: 'dashboards-1',
      tenants: {
        contoso: {
          directory: { licenses: 12_000, acceptedDomains: ['contoso.test'] },
          limits: { defaultPolicy: { externalPerHour: 5 } },
        },
      },
    }),
  );
  const env = {
    MAILPOOLS_NAMESPACE: config.namespace,
    MAILPOOLS_PARTITIONS: '2',
    MAILPOOLS_POLICY_FILE: policyFile,
    MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}`,
    MAILPOOLS_DNS_TIMEOUT_MS: '300',
  };
  const producer = await createEventProducer(config);
  const services = new Map<string, ServiceProcess>();
  let prometheus: Awaited<ReturnType<typeof startPrometheus>> | undefined;
  try {
    for (const name of SERVICES) services.set(name, await startService(name, env));
    prometheus = await startPrometheus(
      Object.fromEntries([...services].map(([name, service]) => [name, [service.port]])),
    );
    const now = Date.now();
    const event = (id: string, overrides: Partial<OutboundMessage>): OutboundMessage => ({
      ...sampleEvent(id, 800, now),
      tenantId: 'contoso',
      submitter: 'alice@contoso.test',
      envelopeSender: 'alice@contoso.test',
      fromHeader: 'alice@contoso.test',
      clientIp: '192.0.2.10',
      ...overrides,
    });
    const user = (i: number) => `user${i % 20}@contoso.test`;
    const events: OutboundMessage[] = [
      // Good mail from many senders of a listed tenant, and from a tenant the policy does not list.
      ...Array.from({ length: 40 }, (_, i) =>
        event(`good-${i}`, { submitter: user(i), envelopeSender: user(i), fromHeader: user(i) }),
      ),
      ...Array.from({ length: 10 }, (_, i) =>
        event(`other-${i}`, {
          tenantId: 'fabrikam',
          submitter: 'bob@fabrikam.test',
          envelopeSender: 'bob@fabrikam.test',
          fromHeader: 'bob@fabrikam.test',
          clientIp: '198.51.100.7',
        }),
      ),
      // NDRs → high-risk; a domain that does not exist → high-risk; relayed mail nobody vouches for → relay.
      ...Array.from({ length: 6 }, (_, i) =>
        event(`ndr-${i}`, {
          submitter: '',
          envelopeSender: '',
          fromHeader: 'postmaster@contoso.test',
          origin: 'SYSTEM_NDR',
          messageClass: 'NDR',
          dsn: {
            action: 'failed',
            status: '5.1.1',
            diagnosticCode: null,
            finalRecipient: `gone${i}@elsewhere.test`,
            remoteMta: null,
            originalMessageId: `orig-${i}`,
            originalEnvelopeSender: null,
            originalConnector: null,
            originalClientIp: null,
          },
        }),
      ),
      ...Array.from({ length: 4 }, (_, i) =>
        event(`nxdomain-${i}`, { envelopeSender: 'carol@nowhere.test', fromHeader: 'carol@nowhere.test' }),
      ),
      ...Array.from({ length: 4 }, (_, i) =>
        event(`relayed-${i}`, {
          origin: 'RELAYED',
          submitter: 'relay@contoso.test',
          envelopeSender: 'frank@partner.test',
          fromHeader: 'frank@partner.test',
          clientIp: '203.0.113.99',
        }),
      ),
      // One sender over its hourly limit of 5 external recipients → restricted, blocked.
      ...Array.from({ length: 8 }, (_, i) =>
        event(`blast-${i}`, {
          submitter: 'mallory@contoso.test',
          envelopeSender: 'mallory@contoso.test',
          fromHeader: 'mallory@contoso.test',
          eventTime: now + i,
        }),
      ),
    ];
    const submitted = `${config.namespace}${TOPICS.submitted}`;
    await producer.send(
      submitted,
      'OutboundMessage',
      events.map((e) => ({ key: e.messageId, value: e })),
    );
    await producer.sendRaw(submitted, [{ key: 'poison', value: Buffer.from('this is not avro at all') }]);
    const routed = await readTopic(config, {
      topic: `${config.namespace}${TOPICS.routed}`,
      count: events.length,
      timeoutMs: 120_000,
    });
    assert.equal(routed.length, events.length);

    // Until Prometheus has scraped the final counts a few times (rates need two samples).
    const prom = prometheus;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [processed] = await prom.query(
        'sum(mailpools_stage_records_processed_total{stage="pool-router"})',
      );
      if (Number(processed?.value[1]) >= events.length) break;
      if (Date.now() > deadline) assert.fail('Prometheus did not see the routed events');
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 3_000));

    const tenants = await prom.api<string[]>(
      `label/tenant/values?match[]=${encodeURIComponent('mailpools_router_assignments_total')}`,
    );
    assert.deepEqual(
      tenants.sort(),
      ['contoso', 'other'],
      'the tenant variable offers the listed tenant and other',
    );
    const empty: string[] = [];
    for (const dashboard of dashboards)
      for (const panel of dashboard.panels)
        for (const target of panel.targets) {
          const result = await prom.query(instantiate(target.expr, 'contoso'));
          if (result.length === 0) empty.push(`${dashboard.title} / ${panel.title}: ${target.expr}`);
        }
    assert.deepEqual(empty, [], 'panel queries without data');

    // What the panels show is what was sent.
    const pools = await prom.query('sum by (pool) (mailpools_router_assignments_total)');
    const byPool = Object.fromEntries(pools.map((r) => [r.metric.pool, Number(r.value[1])]));
    // 40 + 10 good, 5 of mallory's 8 before the limit; 6 NDRs and 4 unknown domains; 4 relayed.
    assert.deepEqual(byPool, { NORMAL: 55, HIGH_RISK: 10, RELAY: 4, BLOCKED: 3 });
    const [ndrs] = await prom.query('sum by (tenant_class) (mailpools_ndr_total)');
    assert.deepEqual([ndrs?.metric.tenant_class, Number(ndrs?.value[1])], ['large', 6]);

    // Naming: units in names, counters end in _total, bounded labels, no addresses in values.
    const metadata = await prom.api<Record<string, { type: string }[]>>('metadata');
    const ours = Object.entries(metadata).filter(([name]) => name.startsWith('mailpools_'));
    assert.ok(ours.length > 20);
    for (const [name, [meta]] of ours) {
      if (meta?.type === 'counter') assert.match(name, /_total$/, `${name} is a counter`);
      if (meta?.type === 'histogram')
        assert.match(name, /_(seconds|records|ratio|bytes)$/, `${name} names its unit`);
    }
    const series = await prom.api<Record<string, string>[]>(
      `series?match[]=${encodeURIComponent('{__name__=~"mailpools_.+"}')}`,
    );
    for (const labels of series)
      for (const [label, value] of Object.entries(labels)) {
        assert.ok(ALLOWED_LABELS.has(label), `${labels.__name__} has the label ${label}`);
        assert.doesNotMatch(value, /@/, `${labels.__name__}{${label}} carries an address`);
      }

    // Alerts on the live data: the poison record fires the dead-letter alert; a stopped stage
    // is caught at once (pending, then firing after its `for`, which alerts.test.yml covers).
    type Alerts = { alerts: { labels: Record<string, string>; state: string }[] };
    const dlq = (await prom.api<Alerts>('alerts')).alerts.find(
      (a) => a.labels.alertname === 'MailpoolsDeadLettersGrowing',
    );
    assert.deepEqual([dlq?.labels.stage, dlq?.state], ['spam-classifier', 'firing']);
    assert.equal(await services.get('ndr-surge-detector')?.stop(), 0);
    const downBy = Date.now() + 15_000;
    for (;;) {
      const down = (await prom.api<Alerts>('alerts')).alerts.find(
        (a) => a.labels.alertname === 'MailpoolsStageDown',
      );
      if (down) {
        assert.deepEqual([down.labels.service, down.state], ['ndr-surge-detector', 'pending']);
        break;
      }
      if (Date.now() > downBy) assert.fail('MailpoolsStageDown did not become pending');
      await new Promise((r) => setTimeout(r, 500));
    }
    const rules = await prom.api<{ groups: { rules: { health: string; name: string }[] }[] }>('rules');
    for (const rule of rules.groups.flatMap((g) => g.rules)) assert.equal(rule.health, 'ok', rule.name);
  } finally {
    await prometheus?.stop();
    for (const service of services.values()) assert.equal(await service.stop(), 0);
    await producer.close();
    await dns.close();
  }
});
