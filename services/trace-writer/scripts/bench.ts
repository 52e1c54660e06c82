// npm run bench:trace — against PostgreSQL (DATABASE_URL): (a) rows/s of the writer's own batched,
// idempotent insert; (b) ten days of assignments at 1,000,000 a day generated in the database,
// then the p50/p99 of lookups by message id and by sender over them, the CLI's and the API's
// queries. Last line: one JSON object.
import { randomUUID } from 'node:crypto';
import { loadRuntimeConfig, progressBar, seededRandom } from '@mailpools/core';
import type { PoolAssignment } from '@mailpools/schemas';
import pg from 'pg';
import { openTraceStore } from '../src/trace.ts';

const DATABASE_URL = loadRuntimeConfig().databaseUrl;
const PER_DAY = Number(process.env.BENCH_ROWS_PER_DAY ?? 1_000_000);
const DAYS = 10;
const WRITE_ROWS = 50_000;
const LOOKUPS = 1_000;
const SENDERS = 100_000;
const END = Date.UTC(2026, 10, 23);
const DAY = 86_400_000;

const namespace = `bench_${randomUUID().slice(0, 6)}`;
const store = await openTraceStore(DATABASE_URL, namespace);
await store.migrate();
const admin = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path="${store.schema}"` });
await admin.connect();

try {
  // (a) The writer: batches of 500, as the stage hands them over.
  const assignment = (i: number): PoolAssignment => ({
    messageId: `w${i}`,
    tenantId: `tenant${i % 500}`,
    eventTime: END - DAY + (i % 86_400) * 1000,
    pool: 'NORMAL',
    poolName: 'RegularRelayOutboundPool',
    sourceIp: '198.51.100.1',
    heloName: 'out.example.net',
    reasons: ['no rule matched: good mail from a well-behaved sender'],
    trace: ['blocked', 'ndr', 'no-a-no-mx', 'spam', 'unvouched-relay'].map((rule) => ({
      rule,
      matched: false,
      inputs: { a: '1', b: 'x' },
    })),
    policyVersion: 'bench',
    smtpReply: null,
    notBefore: null,
    rewrittenSender: null,
    isNdr: false,
    decidedAt: END,
    submitter: `user${i % SENDERS}@tenant${i % 500}.example`,
    sender: `user${i % SENDERS}@tenant${i % 500}.example`,
    fromHeader: `user${i % SENDERS}@tenant${i % 500}.example`,
    recipients: [`r${i % 7}@dest.example`],
    ndr: null,
  });
  const writing = progressBar('writer', WRITE_ROWS);
  let started = performance.now();
  for (let i = 0; i < WRITE_ROWS; i += 500) {
    await store.write(Array.from({ length: 500 }, (_, k) => assignment(i + k)));
    writing.update(i + 500);
  }
  writing.finish(WRITE_ROWS);
  const writeRowsPerS = WRITE_ROWS / ((performance.now() - started) / 1000);

  // (b) Ten days at PER_DAY a day, generated in the database (one INSERT per day).
  const generating = progressBar('generating 10 days', DAYS);
  started = performance.now();
  for (let day = 0; day < DAYS; day++) {
    const dayStart = END - (DAYS - day) * DAY;
    const name = `assignments_${new Date(dayStart).toISOString().slice(0, 10).replace(/-/g, '')}`;
    await admin.query(
      `CREATE TABLE IF NOT EXISTS "${name}" PARTITION OF assignments FOR VALUES FROM ('${new Date(dayStart).toISOString()}') TO ('${new Date(dayStart + DAY).toISOString()}')`,
    );
    await admin.query(
      `INSERT INTO assignments (message_id, tenant_id, event_time, decided_at, pool, pool_name, source_ip, submitter, sender,
         from_header, recipients, reasons, trace, policy_version)
       SELECT 'd' || $1 || '-' || g, 'tenant' || (g % 500), to_timestamp(($2 + (g::float8 * 86400000 / $3)) / 1000.0), now(),
         (ARRAY['NORMAL','NORMAL','NORMAL','HIGH_RISK','RELAY','BLOCKED'])[1 + g % 6], 'RegularRelayOutboundPool', '198.51.100.1',
         'user' || (g % ${SENDERS}) || '@tenant' || (g % 500) || '.example', 'user' || (g % ${SENDERS}) || '@tenant' || (g % 500) || '.example',
         'user' || (g % ${SENDERS}) || '@tenant' || (g % 500) || '.example', ARRAY['r' || (g % 977) || '@dest' || (g % 97) || '.example'],
         ARRAY['no rule matched'], '[{"rule":"spam","matched":false,"inputs":{"label":"HAM"}}]'::jsonb, 'bench'
       FROM generate_series(0, $3 - 1) AS g`,
      [day, dayStart, PER_DAY],
    );
    generating.update(day + 1);
  }
  await admin.query('ANALYZE assignments');
  generating.finish(DAYS);
  const generateSeconds = (performance.now() - started) / 1000;

  const random = seededRandom(11);
  const timed = async (label: string, query: () => Promise<unknown[]>) => {
    const times: number[] = [];
    let found = 0;
    for (let i = 0; i < LOOKUPS; i++) {
      const t0 = performance.now();
      found += (await query()).length;
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const pct = (p: number) =>
      Number((times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0).toFixed(2));
    console.error(`${label}: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, ${found} rows found`);
    return { p50: pct(0.5), p99: pct(0.99), found };
  };
  const window = { since: END - DAYS * DAY, until: END };
  const byId = await timed('by message id', () =>
    store.find({ ...window, messageId: `d${Math.floor(random() * DAYS)}-${Math.floor(random() * PER_DAY)}` }),
  );
  const bySender = await timed('by sender (10 days, newest 100)', () => {
    const g = Math.floor(random() * SENDERS);
    return store.find({ ...window, sender: `user${g}@tenant${g % 500}.example` });
  });

  const figures = {
    writer_rows_per_s: Math.round(writeRowsPerS),
    rows: PER_DAY * DAYS,
    generate_s: Math.round(generateSeconds),
    lookup_by_id_p50_ms: byId.p50,
    lookup_by_id_p99_ms: byId.p99,
    lookup_by_sender_p50_ms: bySender.p50,
    lookup_by_sender_p99_ms: bySender.p99,
    rows_found_by_id: byId.found,
  };
  console.log(
    [
      '| writer rows/s | rows over 10 days | by message id p50 / p99 ms | by sender p50 / p99 ms |',
      '|---:|---:|---:|---:|',
      `| ${figures.writer_rows_per_s} | ${figures.rows} | ${byId.p50} / ${byId.p99} | ${bySender.p50} / ${bySender.p99} |`,
    ].join('\n'),
  );
  console.log(JSON.stringify(figures));
} finally {
  await admin.query(`DROP SCHEMA "${store.schema}" CASCADE`);
  await admin.end();
  await store.close();
}
