// ndr-surge-detector: PoolAssignment from mail.outbound.routed → NDR counts per tenant and for the
// platform in Redis (shared by every replica) → NdrSurgeAlert to mail.ndr.surges, keyed by scope.
// Wiring only; the logic is in detect.ts, the counts in stores.ts.
import {
  connectRedis,
  createLogger,
  createRedisClient,
  loadRuntimeConfig,
  MailpoolsError,
  wireStage,
} from '@mailpools/core';
import { tenantMetricLabels, tenantPolicy, watchPolicy } from '@mailpools/policy';
import type { NdrSurgeAlert, PoolAssignment } from '@mailpools/schemas';
import { createStage, type OutputRecord, stopOnSignals } from '@mailpools/stream';
import { Counter, Gauge } from 'prom-client';
import { evaluate, type NdrFact, PLATFORM } from './detect.ts';
import { RedisNdrStore } from './stores.ts';

const SERVICE = 'ndr-surge-detector';
const config = loadRuntimeConfig();
const logger = createLogger(SERVICE, config.logLevel);
// The surge thresholds (per tenant; `defaults` for the platform) and the tenant labels of the NDR
// metric; a changed file applies from the next batch.
const policy = watchPolicy(process.env, {
  changed: (next) => logger.info({ policy: next.version }, 'policy reloaded'),
  refused: (error) =>
    logger.error({ code: error.code }, `policy change refused, keeping the previous one: ${error.message}`),
});
const redis = createRedisClient(config.redisUrl, logger, 'partitions pause and retry');
const store = new RedisNdrStore(redis, `mailpools:${config.namespace}ndr:`);
const wired = wireStage(SERVICE, config.namespace, config.partitions);
const surges = wired.outputs.ndrSurges as string;

function factOf(assignment: PoolAssignment): NdrFact | undefined {
  const ndr = assignment.ndr;
  if (!ndr) return undefined;
  return {
    id: assignment.messageId,
    tenantId: assignment.tenantId,
    at: assignment.eventTime,
    status: ndr.status,
    finalRecipient: ndr.finalRecipient,
    originalKnown: ndr.originalKnown,
    originalSender: ndr.originalSender,
    originalSource: ndr.originalSource,
  };
}

const stage = createStage<PoolAssignment>({
  service: SERVICE,
  config,
  logger,
  input: { topic: wired.input, schema: 'PoolAssignment' },
  topics: wired.topics,
  handle: (records) =>
    handle(records.map((r) => r.value)).catch((error: unknown) => {
      // Every failure here is Redis's: transient, so the partition pauses and retries.
      throw new MailpoolsError(
        'MAILPOOLS_ERR_REDIS_UNAVAILABLE',
        `NDR counts unavailable: ${(error as Error).message}.`,
        {
          hint: 'Check REDIS_URL; the partition pauses and retries meanwhile, nothing is dropped.',
          retriable: true,
        },
      );
    }),
});

/** Counts the batch's NDRs, then looks at every scope they touch and every surge under way. */
async function handle(assignments: PoolAssignment[]): Promise<OutputRecord[][]> {
  const facts = assignments.map(factOf).filter((f): f is NdrFact => f !== undefined);
  for (const fact of await store.add(facts)) ndrs.inc(tenantMetricLabels(policy.current(), fact.tenantId));
  // Event time: the batch's latest assignment.
  const now = Math.max(...assignments.map((a) => a.eventTime));
  const active = new Set(await store.activeScopes());
  const scopes = new Set([PLATFORM, ...facts.map((f) => f.tenantId), ...active]);
  const alerts: NdrSurgeAlert[] = [];
  for (const scope of scopes) {
    const current = policy.current();
    const settings = scope === PLATFORM ? current.defaults.ndr : tenantPolicy(current, scope).ndr;
    const alert = await evaluate(store, scope, now, settings);
    if (!alert) continue;
    alerts.push(alert);
    if (alert.phase === 'STARTED') active.add(scope);
    if (alert.phase === 'ENDED') active.delete(scope);
    alertsTotal.inc({ phase: alert.phase, cause: alert.likelyCause, scope: alert.scope });
    logger.warn(
      {
        alertId: alert.alertId,
        phase: alert.phase,
        scope: alert.scope,
        tenantId: alert.tenantId,
        cause: alert.likelyCause,
        ndrs: alert.ndrCount,
        baseline: alert.baseline,
      },
      `NDR surge ${alert.phase.toLowerCase()}`,
    );
  }
  activeSurges.set(active.size);
  // The alerts go out with the batch's last record, so they commit with the whole batch.
  return assignments.map((_, i) =>
    i === assignments.length - 1
      ? alerts.map((alert) => ({
          topic: surges,
          schema: 'NdrSurgeAlert' as const,
          key: alert.tenantId ?? PLATFORM,
          value: alert,
        }))
      : [],
  );
}

const ndrs = new Counter({
  name: 'mailpools_ndr_total',
  help: 'NDRs counted (each once, whatever the replays), by tenant (listed ones; other) and tenant class.',
  labelNames: ['tenant', 'tenant_class'],
  registers: [stage.metrics.registry],
});
const alertsTotal = new Counter({
  name: 'mailpools_ndr_surge_alerts_total',
  help: 'NDR surge alerts by phase (STARTED, UPDATED, ENDED), likely cause and scope (TENANT, PLATFORM).',
  labelNames: ['phase', 'cause', 'scope'],
  registers: [stage.metrics.registry],
});
const activeSurges = new Gauge({
  name: 'mailpools_ndr_active_surges',
  help: 'Surges under way (tenants and the platform), as of the last batch.',
  registers: [stage.metrics.registry],
});

await connectRedis(redis, logger);
stopOnSignals(stage, logger);
await stage.start();
