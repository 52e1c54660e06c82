// trace-writer: every PoolAssignment from mail.outbound.routed into PostgreSQL for the message
// trace (batched, idempotent), day partitions past the retention dropped, and a read-only HTTP
// API for the same queries as `mailpools trace`. Wiring only; the logic is in trace.ts.

import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  createLogger,
  integer,
  loadRuntimeConfig,
  MailpoolsError,
  setting,
  wireStage,
} from '@mailpools/core';
import type { PoolAssignment } from '@mailpools/schemas';
import { createStage, stopOnSignals } from '@mailpools/stream';
import { Counter } from 'prom-client';
import { checkQuery, openTraceStore, type TraceQuery, type TraceStore } from './trace.ts';

const SERVICE = 'trace-writer';
const config = loadRuntimeConfig();
const logger = createLogger(SERVICE, config.logLevel);
const retentionDays = integer(process.env, 'MAILPOOLS_TRACE_RETENTION_DAYS', 1, 3_650);
const apiPort = integer(process.env, 'MAILPOOLS_TRACE_API_PORT', 0, 65_535);
const apiToken = setting(process.env, 'MAILPOOLS_TRACE_API_TOKEN');
const store = await openTraceStoreRetrying();

/** PostgreSQL not up yet at start-up is waited for, with backoff, like any transient failure. */
async function openTraceStoreRetrying(): Promise<TraceStore> {
  for (let attempt = 1; ; attempt++) {
    let opened: TraceStore | undefined;
    try {
      opened = await openTraceStore(config.databaseUrl, config.namespace);
      const applied = await opened.migrate();
      logger.info({ schema: opened.schema, applied }, 'trace schema up to date');
      return opened;
    } catch (error) {
      await opened?.close().catch(() => undefined);
      if (!(error instanceof MailpoolsError) || !error.retriable) throw error;
      const waitMs = Math.min(30_000, 250 * 2 ** attempt);
      logger.warn({ code: error.code, attempt, waitMs }, error.message);
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

const wired = wireStage(SERVICE, config.namespace, config.partitions);
let latestEventTime = 0;
let batchesSinceExpiry = 0;
const stage = createStage<PoolAssignment>({
  service: SERVICE,
  config,
  logger,
  input: { topic: wired.input, schema: 'PoolAssignment' },
  topics: wired.topics,
  handle: async (records) => {
    const assignments = records.map((r) => r.value);
    written.inc(await store.write(assignments));
    latestEventTime = Math.max(latestEventTime, ...assignments.map((a) => a.eventTime));
    if (++batchesSinceExpiry >= 100) {
      batchesSinceExpiry = 0;
      const dropped = await store.expire(latestEventTime, retentionDays);
      if (dropped.length > 0) logger.info({ dropped }, 'trace days past retention dropped');
    }
    return records.map(() => []);
  },
});
const written = new Counter({
  name: 'mailpools_trace_rows_written_total',
  help: 'Assignments stored for the message trace (replays add none).',
  registers: [stage.metrics.registry],
});
const apiRequests = new Counter({
  name: 'mailpools_trace_api_requests_total',
  help: 'Trace API requests by HTTP status.',
  labelNames: ['status'],
  registers: [stage.metrics.registry],
});

function reply(res: ServerResponse, status: number, body: unknown): void {
  apiRequests.inc({ status: String(status) });
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function refuse(res: ServerResponse, status: number, error: MailpoolsError): void {
  reply(res, status, { error: { code: error.code, message: error.message, hint: error.hint } });
}

function authorised(req: IncomingMessage): boolean {
  const given = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '');
  const expected = Buffer.from(apiToken);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function queryOf(url: URL): TraceQuery {
  const known = ['messageId', 'sender', 'recipient', 'tenantId', 'pool', 'since', 'until', 'limit'];
  for (const key of url.searchParams.keys())
    if (!known.includes(key))
      throw new MailpoolsError('MAILPOOLS_ERR_TRACE_QUERY', `Unknown parameter "${key}".`, {
        hint: `Parameters: ${known.join(', ')}.`,
      });
  const text = (key: string) => url.searchParams.get(key) ?? undefined;
  const time = (key: string) => {
    const value = text(key);
    if (value === undefined) return undefined;
    const ms = Date.parse(value);
    if (Number.isNaN(ms))
      throw new MailpoolsError('MAILPOOLS_ERR_TRACE_QUERY', `${key} is not an ISO-8601 time: "${value}".`);
    return ms;
  };
  const limit = text('limit');
  return checkQuery({
    messageId: text('messageId'),
    sender: text('sender'),
    recipient: text('recipient'),
    tenantId: text('tenantId'),
    pool: text('pool'),
    since: time('since'),
    until: time('until'),
    limit: limit === undefined ? undefined : Number(limit),
  });
}

if (apiToken) {
  const api = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' || url.pathname !== '/v1/assignments')
      return refuse(
        res,
        404,
        new MailpoolsError('MAILPOOLS_ERR_NOT_FOUND', 'Only GET /v1/assignments is served.'),
      );
    if (!authorised(req))
      return refuse(
        res,
        401,
        new MailpoolsError('MAILPOOLS_ERR_UNAUTHORISED', 'A valid bearer token is required.', {
          hint: 'Send Authorization: Bearer <MAILPOOLS_TRACE_API_TOKEN>.',
        }),
      );
    try {
      reply(res, 200, { assignments: await store.find(queryOf(url)) });
    } catch (error) {
      const coded =
        error instanceof MailpoolsError
          ? error
          : new MailpoolsError('MAILPOOLS_ERR_INTERNAL', 'The trace query failed.');
      if (!(error instanceof MailpoolsError) || coded.retriable)
        logger.error({ code: coded.code }, coded.message);
      refuse(res, coded.code === 'MAILPOOLS_ERR_TRACE_QUERY' ? 400 : 503, coded);
    }
  });
  api.listen(apiPort, config.httpHost, () => {
    const address = api.address();
    logger.info(
      { port: typeof address === 'object' && address ? address.port : apiPort },
      'trace API listening',
    );
  });
} else logger.info('trace API off: MAILPOOLS_TRACE_API_TOKEN is not set');

stopOnSignals(stage, logger);
await stage.start();
