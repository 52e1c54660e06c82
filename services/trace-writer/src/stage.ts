// trace-writer as a stage: every PoolAssignment from mail.outbound.routed into PostgreSQL for the
// message trace (batched, idempotent), day partitions past the retention dropped, and the
// read-only HTTP API (api.ts) when a token is set. Its logic is trace.ts.
import { MailpoolsError, wireStage } from '@mailpools/core';
import type { PoolAssignment } from '@mailpools/schemas';
import { createStage, type ServiceContext, type ServiceParts } from '@mailpools/stream';
import { Counter } from 'prom-client';
import { startTraceApi } from './api.ts';
import { TRACE_SETTINGS } from './settings.ts';
import { openTraceStore, type TraceStore } from './trace.ts';

export const SERVICE = 'trace-writer';

/** PostgreSQL not up yet at start-up is waited for, with backoff, like any transient failure. */
async function openTraceStoreRetrying({ config, logger }: ServiceContext): Promise<TraceStore> {
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

export async function createTraceWriterStage(context: ServiceContext): Promise<ServiceParts> {
  const { config, logger, env } = context;
  const retentionDays = TRACE_SETTINGS.integer(env, 'MAILPOOLS_TRACE_RETENTION_DAYS');
  const apiPort = TRACE_SETTINGS.integer(env, 'MAILPOOLS_TRACE_API_PORT');
  const apiToken = TRACE_SETTINGS.text(env, 'MAILPOOLS_TRACE_API_TOKEN');
  const store = await openTraceStoreRetrying(context);
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
  const requests = new Counter({
    name: 'mailpools_trace_api_requests_total',
    help: 'Trace API requests by HTTP status.',
    labelNames: ['status'],
    registers: [stage.metrics.registry],
  });
  const api = apiToken
    ? startTraceApi({ store, token: apiToken, host: config.httpHost, port: apiPort, logger, requests })
    : undefined;
  if (!api) logger.info('trace API off: MAILPOOLS_TRACE_API_TOKEN is not set');
  return {
    stage,
    async close() {
      await new Promise((resolve) => (api ? api.close(resolve) : resolve(undefined)));
      await store.close();
    },
  };
}
