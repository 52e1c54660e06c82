// spam-classifier: OutboundMessage from mail.outbound.submitted → with `spam` filled in →
// mail.outbound.classified. Wiring only; the logic is in classify.ts.
import { createLogger, loadRuntimeConfig } from '@mailpools/core';
import { loadPolicy } from '@mailpools/policy';
import { createEnrichmentStage, stopOnSignals } from '@mailpools/stream';
import { Counter, Histogram } from 'prom-client';
import { classifierDepsFromEnv, enrich } from './classify.ts';

const SERVICE = 'spam-classifier';
const config = loadRuntimeConfig();
const logger = createLogger(SERVICE, config.logLevel);
const policy = loadPolicy();
const deps = classifierDepsFromEnv(process.env, () => policy);

const stage = createEnrichmentStage({
  service: SERVICE,
  config,
  logger,
  enrich: async (event) => {
    const enriched = await enrich(event, deps);
    const verdict = enriched.spam;
    if (verdict) {
      verdicts.inc({ label: verdict.label });
      scores.observe(verdict.score);
      if (verdict.truncated) truncated.inc();
    }
    return enriched;
  },
});
const verdicts = new Counter({
  name: 'mailpools_spam_verdicts_total',
  help: 'Spam verdicts by label.',
  labelNames: ['label'],
  registers: [stage.metrics.registry],
});
const scores = new Histogram({
  name: 'mailpools_spam_score_ratio',
  help: 'Spam scores given (0 to 1).',
  buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99],
  registers: [stage.metrics.registry],
});
const truncated = new Counter({
  name: 'mailpools_spam_truncated_total',
  help: 'Messages judged on a part only (size or time bound).',
  registers: [stage.metrics.registry],
});

logger.info({ model: deps.model.version, policy: policy.version }, 'model loaded');
stopOnSignals(stage, logger);
await stage.start();
