// The message trace on the real stack and the machine's PostgreSQL: trace-writer as a process
// stores assignments within seconds; every query form finds the right rows; a replay of the
// routed topic adds nothing; days past the retention are dropped; the API refuses requests
// without the token and malformed ones, with a code; `mailpools trace` shows the reasons.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TOPICS } from '@mailpools/core';
import type { PoolAssignment } from '@mailpools/schemas';
import { createEventProducer } from '@mailpools/stream';
import { freePort, runMailpools, scrapeMetric, startService, testConfig } from '@mailpools/testkit';
import { openTraceStore } from '@mailpools/trace-writer/trace';
import pg from 'pg';

const TOKEN = 'test-token-of-the-trace-api';
const NOW = Date.UTC(2026, 10, 23, 12);
const DAY = 86_400_000;

function assignment(id: string, overrides: Partial<PoolAssignment>): PoolAssignment {
  return {
    messageId: id,
    tenantId: 'contoso',
    eventTime: NOW,
    pool: 'NORMAL',
    poolName: 'RegularRelayOutboundPool',
    sourceIp: '198.51.100.1',
    heloName: 'out.example.net',
    reasons: ['no rule matched: good mail from a well-behaved sender'],
    trace: [{ rule: 'spam', matched: false, inputs: { label: 'HAM', score: '0.0200' } }],
    policyVersion: 'p7',
    smtpReply: null,
    notBefore: null,
    rewrittenSender: null,
    isNdr: false,
    decidedAt: NOW,
    submitter: 'alice@contoso.test',
    sender: 'alice@contoso.test',
    fromHeader: 'alice@contoso.test',
    recipients: ['bob@fabrikam.test'],
    ndr: null,
    ...overrides,
  };
}

test('the message trace: stored, found every way, never twice, expired by day, behind a token', {
  timeout: 120_000,
}, async () => {
  const config = testConfig({ MAILPOOLS_PARTITIONS: '2' });
  const apiPort = await freePort();
  const env = {
    MAILPOOLS_NAMESPACE: config.namespace,
    MAILPOOLS_PARTITIONS: '2',
    DATABASE_URL: config.databaseUrl,
    MAILPOOLS_TRACE_API_PORT: String(apiPort),
    MAILPOOLS_TRACE_API_TOKEN: TOKEN,
  };
  const rows = [
    assignment('a1', {}),
    assignment('a2', {
      recipients: ['victim@else.test'],
      sender: 'mallory@contoso.test',
      submitter: 'mallory@contoso.test',
      pool: 'BLOCKED',
      poolName: 'BlockedOutboundPool',
      sourceIp: null,
      smtpReply: '550 5.1.8 Access denied, bad outbound sender',
      reasons: ['the submitter is restricted'],
    }),
    assignment('a3', {
      tenantId: 'fabrikam',
      sender: 'x@fabrikam.test',
      recipients: ['eve@else.test', 'bob@fabrikam.test'],
      pool: 'RELAY',
      poolName: 'ForwardedRelayOutboundPool',
      eventTime: NOW - 2 * DAY,
    }),
    assignment('old', { eventTime: NOW - 20 * DAY }),
  ];
  const producer = await createEventProducer(config);
  const service = await startService('trace-writer', env);
  const store = await openTraceStore(config.databaseUrl, config.namespace);
  try {
    const topic = `${config.namespace}${TOPICS.routed}`;
    await producer.send(
      topic,
      'PoolAssignment',
      rows.map((value) => ({ key: value.messageId, value })),
    );
    const deadline = Date.now() + 20_000;
    while ((await scrapeMetric(service.port, 'mailpools_stage_records_processed_total')) < rows.length) {
      if (Date.now() > deadline) throw new Error('trace-writer did not store the assignments');
      await new Promise((r) => setTimeout(r, 50));
    }
    const ids = async (query: Parameters<typeof store.find>[0]) =>
      (await store.find({ until: NOW + DAY, ...query })).map((r) => r.messageId).sort();
    assert.deepEqual(await ids({ messageId: 'a2' }), ['a2']);
    assert.deepEqual(await ids({ sender: 'Mallory@Contoso.test' }), ['a2']);
    assert.deepEqual(await ids({ recipient: 'bob@fabrikam.test' }), ['a1', 'a3']);
    assert.deepEqual(await ids({ tenantId: 'fabrikam' }), ['a3']);
    assert.deepEqual(await ids({ pool: 'BLOCKED' }), ['a2']);
    assert.deepEqual(await ids({ tenantId: 'contoso', since: NOW - DAY }), ['a1', 'a2']);
    assert.deepEqual(await ids({ messageId: 'old', since: NOW - 30 * DAY }), ['old']);
    const [blocked] = await store.find({ messageId: 'a2', until: NOW + DAY });
    assert.equal(blocked?.smtpReply, '550 5.1.8 Access denied, bad outbound sender');

    // A replay of the whole topic stores nothing twice.
    await producer.send(
      topic,
      'PoolAssignment',
      rows.map((value) => ({ key: value.messageId, value })),
    );
    while ((await scrapeMetric(service.port, 'mailpools_stage_records_processed_total')) < 2 * rows.length)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(await scrapeMetric(service.port, 'mailpools_trace_rows_written_total'), rows.length);
    assert.deepEqual(await ids({ tenantId: 'contoso', since: NOW - 30 * DAY }), ['a1', 'a2', 'old']);

    // Retention: whole days older than 10 days before the latest event time go.
    const dropped = await store.expire(NOW, 10);
    assert.deepEqual(dropped, [
      `assignments_${new Date(NOW - 20 * DAY).toISOString().slice(0, 10).replace(/-/g, '')}`,
    ]);
    assert.deepEqual(await ids({ messageId: 'old', since: NOW - 30 * DAY }), []);

    // The API.
    const api = (path: string, token?: string) =>
      fetch(
        `http://127.0.0.1:${apiPort}${path}`,
        token ? { headers: { authorization: `Bearer ${token}` } } : {},
      );
    const until = encodeURIComponent(new Date(NOW + DAY).toISOString());
    const ok = await api(`/v1/assignments?sender=mallory%40contoso.test&until=${until}`, TOKEN);
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as {
      assignments: { messageId: string; poolName: string; trace: unknown[] }[];
    };
    assert.deepEqual(
      body.assignments.map((a) => [a.messageId, a.poolName]),
      [['a2', 'BlockedOutboundPool']],
    );
    assert.equal((await api('/v1/assignments?messageId=a1')).status, 401);
    assert.equal((await api('/v1/assignments?messageId=a1', 'wrong-token-wrong-token-wrong')).status, 401);
    const malformed = await api(
      "/v1/assignments?pool=PURPLE&sender=x'%3B%20DROP%20TABLE%20assignments",
      TOKEN,
    );
    assert.equal(malformed.status, 400);
    assert.equal(
      ((await malformed.json()) as { error: { code: string } }).error.code,
      'MAILPOOLS_ERR_TRACE_QUERY',
    );
    const latest = await api(`/v1/assignments?until=${until}`, TOKEN);
    assert.equal(latest.status, 200, 'no filter: the latest assignments');
    const times = ((await latest.json()) as { assignments: { eventTime: string }[] }).assignments.map(
      (a) => a.eventTime,
    );
    assert.ok(
      times.length > 0 && times.every((t, i) => i === 0 || t <= (times[i - 1] as string)),
      'newest first',
    );
    assert.equal((await api('/v1/assignments?since=yesterday&tenantId=contoso', TOKEN)).status, 400);
    const injection = await api(
      `/v1/assignments?sender=${encodeURIComponent("x' OR '1'='1")}&until=${until}`,
      TOKEN,
    );
    assert.deepEqual(
      ((await injection.json()) as { assignments: unknown[] }).assignments,
      [],
      'parameterised: nothing matches',
    );

    // The CLI.
    const shown = await runMailpools(['trace', 'a2', '--until', new Date(NOW + DAY).toISOString()], {
      MAILPOOLS_NAMESPACE: config.namespace,
      DATABASE_URL: config.databaseUrl,
    });
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /pool +BLOCKED — BlockedOutboundPool/);
    assert.match(shown.stdout, /reply +550 5\.1\.8/);
    assert.match(shown.stdout, /no +spam +label=HAM score=0\.0200/);
    const bad = await runMailpools(['trace', '--pool', 'PURPLE'], {
      MAILPOOLS_NAMESPACE: config.namespace,
      DATABASE_URL: config.databaseUrl,
    });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /MAILPOOLS_ERR_TRACE_QUERY/);
  } finally {
    assert.equal(await service.stop(), 0);
    await producer.close();
    await store.close();
  }
});

test('replicas starting at once on a database that does not exist yet all open it and migrate it once', {
  timeout: 60_000,
}, async () => {
  const config = testConfig({});
  const url = new URL(config.databaseUrl);
  url.pathname = `/mailpools_race_${config.namespace.replace(/[^a-z0-9]/gi, '').toLowerCase()}`;
  const stores = await Promise.all(
    Array.from({ length: 4 }, () => openTraceStore(url.toString(), config.namespace)),
  );
  try {
    const applied = await Promise.all(stores.map((store) => store.migrate()));
    assert.equal(applied.flat().length, new Set(applied.flat()).size, 'each migration applied once');
    assert.ok(applied.flat().length > 0);
  } finally {
    await Promise.all(stores.map((store) => store.close()));
    const admin = new URL(url);
    admin.pathname = '/postgres';
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${url.pathname.slice(1)}"`);
    await client.end();
  }
});
