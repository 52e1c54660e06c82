// spam-classifier as a stage: OutboundMessage from mail.outbound.submitted → with `spam` filled
// in → mail.outbound.classified. Its logic is classify.ts; its Redis is the submitters' profiles.
import { createEnrichmentStage, type ServiceContext, type Stage } from '@mailpools/stream';
import { Counter, Histogram } from 'prom-client';
import { classifierDepsFromEnv, enrich } from './classify.ts';
import { createProfileStore, spamPrefix } from './profile.ts';
import { SPAM_SETTINGS } from './settings.ts';

export const SERVICE = 'spam-classifier';

export function createSpamClassifierStage({ config, logger, policy, redis, env }: ServiceContext): Stage {
  const profiles = createProfileStore(redis(), {
    prefix: spamPrefix(config.namespace),
    dedupTtlSeconds: SPAM_SETTINGS.integer(env, 'MAILPOOLS_SPAM_PROFILE_DEDUP_TTL_S'),
    keyTtlSeconds: SPAM_SETTINGS.integer(env, 'MAILPOOLS_SPAM_PROFILE_TTL_S'),
  });
  const deps = classifierDepsFromEnv(env, policy, profiles);
  const stage = createEnrichmentStage({
    service: SERVICE,
    config,
    logger,
    enrich: async (events) => {
      const enriched = await enrich(events, deps);
      for (const { spam } of enriched) {
        if (!spam) continue;
        verdicts.inc({ label: spam.label });
        scores.observe(spam.score);
        if (spam.truncated) truncated.inc();
        for (const { feature } of spam.topFeatures)
          if (feature.startsWith('profile:')) profileMoves.inc({ move: feature.slice('profile:'.length) });
      }
      return enriched;
    },
  });
  const registers = [stage.metrics.registry];
  const verdicts = new Counter({
    name: 'mailpools_spam_verdicts_total',
    help: 'Spam verdicts by label.',
    labelNames: ['label'],
    registers,
  });
  const scores = new Histogram({
    name: 'mailpools_spam_score_ratio',
    help: 'Spam scores given (0 to 1).',
    buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99],
    registers,
  });
  const truncated = new Counter({
    name: 'mailpools_spam_truncated_total',
    help: 'Messages judged on a part only (size or time bound).',
    registers,
  });
  const profileMoves = new Counter({
    name: 'mailpools_spam_profile_moves_total',
    help: "Verdicts the submitter's profile moved, by move (content-unlike-history, first-time-recipients, sending-burst, like-its-history).",
    labelNames: ['move'],
    registers,
  });
  logger.info({ model: deps.model.version }, 'model loaded');
  return stage;
}
