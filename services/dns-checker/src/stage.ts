// dns-checker as a stage: OutboundMessage from mail.outbound.counted → with `dns` filled in →
// mail.outbound.dns-checked. Its logic is check.ts; answers are cached in-process and in Redis.
import { resolverFromEnv } from '@mailpools/dns';
import { createEnrichmentStage, eachEvent, type ServiceContext, type Stage } from '@mailpools/stream';
import { Counter } from 'prom-client';
import { enrich } from './check.ts';

export const SERVICE = 'dns-checker';

export function createDnsCheckerStage({ config, logger, env, redis }: ServiceContext): Stage {
  const stage = createEnrichmentStage({
    service: SERVICE,
    config,
    logger,
    enrich: eachEvent(async (event) => {
      const enriched = await enrich(event, resolver);
      verdicts.inc({ status: enriched.dns?.status ?? 'none' });
      return enriched;
    }),
  });
  const verdicts = new Counter({
    name: 'mailpools_dns_verdicts_total',
    help: 'dns enrichments by status.',
    labelNames: ['status'],
    registers: [stage.metrics.registry],
  });
  const resolver = resolverFromEnv(env, config.namespace, redis(), stage.metrics.registry);
  return stage;
}
