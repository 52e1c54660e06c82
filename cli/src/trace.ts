// `mailpools trace`: which pool a message used and why, from the message trace in PostgreSQL.
import { parseArgs } from 'node:util';
import { loadRuntimeConfig, MailpoolsError } from '@mailpools/core';
import { openTraceStore, type TraceRow } from '@mailpools/trace-writer/trace';

export const TRACE_USAGE = `usage: mailpools trace [<message-id>] [--sender <a>] [--recipient <a>] [--tenant <id>] [--pool NORMAL|HIGH_RISK|RELAY|BLOCKED]
                      [--since <iso>] [--until <iso>] [--limit <n>] [--json]
  The pool each matching message used, its friendly name, the reasons and every rule's inputs
  (default: the last 10 days, newest first, 100 rows).`;

function time(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new MailpoolsError('MAILPOOLS_ERR_USAGE', `--${name} must be an ISO-8601 time, got "${value}".`, {
      hint: TRACE_USAGE,
    });
  return ms;
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
  const store = await openTraceStore(config.databaseUrl, config.namespace);
  try {
    const rows = await store.find({
      messageId: positionals[0],
      sender: values.sender,
      recipient: values.recipient,
      tenantId: values.tenant,
      pool: values.pool,
      since: time('since', values.since),
      until: time('until', values.until),
      limit: values.limit === undefined ? undefined : Number(values.limit),
    });
    if (values.json) for (const row of rows) log(JSON.stringify(row));
    else if (rows.length === 0) log('no matching assignments');
    else for (const row of rows) show(row, log);
    return 0;
  } finally {
    await store.close();
  }
}
