// `mailpools trace`: which pool a message used and why, from the message trace in PostgreSQL.
import { parseArgs } from 'node:util';
import { loadRuntimeConfig, MailpoolsError } from '@mailpools/core';
import { openTraceStore, type TraceRow } from '@mailpools/trace-writer/trace';

export const TRACE_USAGE = `usage: mailpools trace [<message-id>] [--sender <a>] [--recipient <a>] [--tenant <id>] [--pool NORMAL|HIGH_RISK|RELAY|BLOCKED]
                      [--since <iso>] [--until <iso>] [--limit <n>] [--json]
  The pool each matching message used, its friendly name, the reasons and every rule's inputs,
  newest first. Without a filter: the latest assignments. The window is event time, the last
  10 days unless --since/--until say otherwise (what the trace keeps: MAILPOOLS_TRACE_RETENTION_DAYS);
  --limit rows (default 20 without a filter, 100 with one; at most 1000).`;

function time(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new MailpoolsError('MAILPOOLS_ERR_USAGE', `--${name} must be an ISO-8601 time, got "${value}".`, {
      hint: TRACE_USAGE,
    });
  return ms;
}

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** What a search that found nothing looked at, and how to look wider. */
function noMatch(filters: Record<string, string | undefined>, since: number, until: number): string[] {
  const given = Object.entries(filters)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k === 'tenantId' ? 'tenant' : k}=${v}`);
  return [
    `no matching assignments: event time ${iso(since)} to ${iso(until)}${given.length ? `, ${given.join(', ')}` : ', no filter'}.`,
    "An event's time is the platform's (for a fed .eml, its Date header unless `mailpools feed --now` or --time was given).",
    `Widen it with --since (the trace keeps what its retention allows, MAILPOOLS_TRACE_RETENTION_DAYS)${given.length ? ', or drop a filter' : ''}.`,
  ];
}

function show(row: TraceRow, log: (line: string) => void): void {
  log(`${row.messageId}  ${row.eventTime}  tenant ${row.tenantId}  policy ${row.policyVersion}`);
  log(`  pool      ${row.pool} — ${row.poolName}${row.sourceIp ? ` via ${row.sourceIp}` : ''}`);
  log(`  sender    ${row.sender || '<>'} (submitter ${row.submitter || '-'}, From ${row.fromHeader})`);
  log(`  to        ${row.recipients.join(', ')}`);
  for (const reason of row.reasons) log(`  reason    ${reason}`);
  if (row.smtpReply) log(`  reply     ${row.smtpReply}`);
  if (row.rewrittenSender) log(`  srs       ${row.rewrittenSender}`);
  for (const step of row.trace) {
    const inputs = Object.entries(step.inputs)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    log(`  ${step.matched ? 'MATCH' : 'no   '}     ${step.rule.padEnd(16)} ${inputs}`);
  }
}

export async function runTrace(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      sender: { type: 'string' },
      recipient: { type: 'string' },
      tenant: { type: 'string' },
      pool: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const config = loadRuntimeConfig();
  const filters = {
    messageId: positionals[0],
    sender: values.sender,
    recipient: values.recipient,
    tenantId: values.tenant,
    pool: values.pool,
  };
  const filtered = Object.values(filters).some((v) => v !== undefined && v !== '');
  const until = time('until', values.until) ?? Date.now();
  const since = time('since', values.since) ?? until - 10 * DAY;
  const limit = values.limit === undefined ? (filtered ? 100 : 20) : Number(values.limit);
  const store = await openTraceStore(config.databaseUrl, config.namespace);
  try {
    const rows = await store.find({ ...filters, since, until, limit });
    if (values.json) for (const row of rows) log(JSON.stringify(row));
    else if (rows.length === 0) for (const line of noMatch(filters, since, until)) log(line);
    else {
      if (!filtered)
        log(
          `the latest ${rows.length} assignments, newest first (event time ${iso(since)} to ${iso(until)})`,
        );
      for (const row of rows) show(row, log);
      if (rows.length === limit)
        log(
          `(${limit} shown; --limit shows more, --until ${rows[rows.length - 1]?.eventTime} the ones before)`,
        );
    }
    return 0;
  } finally {
    await store.close();
  }
}
