// auth-verifier as a stage: OutboundMessage from mail.outbound.dns-checked → with `auth` filled
// in → mail.outbound.verified. Its logic is verify.ts; DNS goes through the shared resolver.
import { nodeStyleResolve, resolverFromEnv } from '@mailpools/dns';
import { createEnrichmentStage, eachEvent, type ServiceContext, type Stage } from '@mailpools/stream';
import { Counter } from 'prom-client';
import { AUTH_SETTINGS } from './settings.ts';
import { enrich } from './verify.ts';

export const SERVICE = 'auth-verifier';

export function createAuthVerifierStage({ config, logger, env, policy, redis }: ServiceContext): Stage {
  const stage = createEnrichmentStage({
    service: SERVICE,
    config,
    logger,
    enrich: eachEvent(async (event) => {
      const enriched = await enrich(event, deps);
      const auth = enriched.auth;
      if (auth) {
        results.inc({ check: 'spf', result: auth.spf });
        results.inc({ check: 'dmarc', result: auth.dmarc });
        results.inc({ check: 'arc', result: auth.arc });
        results.inc({ check: 'dkim_sender', result: auth.dkimPassForSender ? 'pass' : 'none' });
        verdicts.inc({ status: auth.status, vouched: String(auth.vouched) });
      }
      return enriched;
    }),
  });
  const results = new Counter({
    name: 'mailpools_auth_results_total',
    help: 'Authentication results by check (spf, dmarc, arc, dkim_sender) and result.',
    labelNames: ['check', 'result'],
    registers: [stage.metrics.registry],
  });
  const verdicts = new Counter({
    name: 'mailpools_auth_verdicts_total',
    help: 'auth enrichments by status (VERIFIED, PARTIAL, SKIPPED) and whether the sender was vouched for.',
    labelNames: ['status', 'vouched'],
    registers: [stage.metrics.registry],
  });
  const deps = {
    resolve: nodeStyleResolve(resolverFromEnv(env, config.namespace, redis(), stage.metrics.registry)),
    policy,
    maxBytes: AUTH_SETTINGS.integer(env, 'MAILPOOLS_AUTH_MAX_BYTES'),
    timeoutMs: AUTH_SETTINGS.integer(env, 'MAILPOOLS_AUTH_TIMEOUT_MS'),
    mta: AUTH_SETTINGS.text(env, 'MAILPOOLS_AUTH_MTA'),
  };
  return stage;
}
