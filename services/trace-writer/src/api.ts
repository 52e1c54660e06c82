// trace-writer's read-only HTTP API: GET /v1/assignments with the same queries as
// `mailpools trace`, behind a bearer token compared in constant time.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type Logger, MailpoolsError } from '@mailpools/core';
import type { Counter } from 'prom-client';
import { checkQuery, type TraceQuery, type TraceStore } from './trace.ts';

export interface TraceApiOptions {
  readonly store: TraceStore;
  readonly token: string;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  /** Requests by HTTP status. */
  readonly requests: Counter<'status'>;
}

export function startTraceApi({ store, token, host, port, logger, requests }: TraceApiOptions): Server {
  function reply(res: ServerResponse, status: number, body: unknown): void {
    requests.inc({ status: String(status) });
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  function refuse(res: ServerResponse, status: number, error: MailpoolsError): void {
    reply(res, status, { error: { code: error.code, message: error.message, hint: error.hint } });
  }

  function authorised(req: IncomingMessage): boolean {
    const given = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '');
    const expected = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

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
  api.listen(port, host, () => {
    const address = api.address();
    logger.info(
      { port: typeof address === 'object' && address ? address.port : port },
      'trace API listening',
    );
  });
  return api;
}

/** The query of a request, validated; unknown parameters are refused. */
export function queryOf(url: URL): TraceQuery {
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
