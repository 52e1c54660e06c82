// ndr-surge-detector as a stage: PoolAssignment from mail.outbound.routed → NDR counts per tenant
// and for the platform in Redis (shared by every replica) → NdrSurgeAlert to mail.ndr.surges,
// keyed by scope. Its logic is detect.ts (detectBatch), the counts stores.ts.
import { MailpoolsError, wireStage } from '@mailpools/core';
import { tenantMetricLabels } from '@mailpools/policy';
import type { PoolAssignment } from '@mailpools/schemas';
import { createStage, type ServiceContext, type Stage } from '@mailpools/stream';
import { Counter, Gauge } from 'prom-client';
import { detectBatch, PLATFORM } from './detect.ts';
import { RedisNdrStore } from './stores.ts';

export const SERVICE = 'ndr-surge-detector';

export function createNdrSurgeDetectorStage({ config, logger, policy, redis }: ServiceContext): Stage {
  const store = new RedisNdrStore(redis(), `mailpools:${config.namespace}ndr:`);
  const wired = wireStage(SERVICE, config.namespace, config.partitions);
  const surges = wired.outputs.ndrSurges as string;
  const stage = createStage<PoolAssignment>({
    service: SERVICE,
    config,
    logger,
    input: { topic: wired.input, schema: 'PoolAssignment' },
    topics: wired.topics,
    handle: async (records) => {
      const result = await detectBatch(
        records.map((r) => r.value),
        store,
        policy,
      ).catch((error: unknown) => {
        // Every failure here is Redis's: transient, so the partition pauses and retries.
        throw new MailpoolsError(
          'MAILPOOLS_ERR_REDIS_UNAVAILABLE',
          `NDR counts unavailable: ${(error as Error).message}.`,
          {
            hint: 'Check REDIS_URL; the partition pauses and retries meanwhile, nothing is dropped.',
          },
        );
      });
      for (const fact of result.counted) ndrs.inc(tenantMetricLabels(policy(), fact.tenantId));
      for (const alert of result.alerts) {
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
      activeSurges.set(result.active);
      // The alerts go out with the batch's last record, so they commit with the whole batch.
      return records.map((_, i) =>
        i === records.length - 1
          ? result.alerts.map((alert) => ({
              topic: surges,
              schema: 'NdrSurgeAlert' as const,
              key: alert.tenantId ?? PLATFORM,
              value: alert,
            }))
          : [],
      );
    },
  });
  const registers = [stage.metrics.registry];
  const ndrs = new Counter({
    name: 'mailpools_ndr_total',
    help: 'NDRs counted (each once, whatever the replays), by tenant (listed ones; other) and tenant class.',
    labelNames: ['tenant', 'tenant_class'],
    registers,
  });
  const alertsTotal = new Counter({
    name: 'mailpools_ndr_surge_alerts_total',
    help: 'NDR surge alerts by phase (STARTED, UPDATED, ENDED), likely cause and scope (TENANT, PLATFORM).',
    labelNames: ['phase', 'cause', 'scope'],
    registers,
  });
  const activeSurges = new Gauge({
    name: 'mailpools_ndr_active_surges',
    help: 'Surges under way (tenants and the platform), as of the last batch.',
    registers,
  });
  return stage;
}
