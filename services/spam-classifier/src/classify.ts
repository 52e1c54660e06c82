// spam-classifier's logic: score a message's content and envelope with the trained model and
// label it under the tenant's thresholds. Pure apart from parsing; the wiring is in index.ts.
import { fileURLToPath } from 'node:url';
import { integer } from '@mailpools/core';
import { type Policy, tenantPolicy } from '@mailpools/policy';
import type { OutboundMessage, SpamLabel, SpamVerdict } from '@mailpools/schemas';
import { type ExtractOptions, extractFeatures, type OutboundSignals } from './features.ts';
import { explain, loadModel, type SpamModel, score, vectorise } from './model.ts';

export const DEFAULT_MODEL_PATH = fileURLToPath(new URL('../model/spam-model.bin', import.meta.url));

export interface ClassifierDeps {
  readonly model: SpamModel;
  readonly policy: () => Policy;
  readonly extract: ExtractOptions;
}

type Env = Readonly<Record<string, string | undefined>>;

export function extractOptions(env: Env): ExtractOptions {
  return {
    maxBytes: integer(env, 'MAILPOOLS_SPAM_MAX_BYTES', 1024, 16 * 1024 * 1024),
    timeoutMs: integer(env, 'MAILPOOLS_SPAM_TIMEOUT_MS', 1, 10_000),
  };
}

/** The configuration table's defaults: what training, evaluation and the service all use. */
export const DEFAULT_EXTRACT: ExtractOptions = extractOptions({});

export function classifierDepsFromEnv(env: Env, policy: () => Policy): ClassifierDeps {
  return {
    model: loadModel(env.MAILPOOLS_SPAM_MODEL || DEFAULT_MODEL_PATH),
    policy,
    extract: extractOptions(env),
  };
}

export function signalsOfEvent(event: OutboundMessage): OutboundSignals {
  return {
    recipients: event.recipients.length,
    externalRecipients: event.recipients.filter((r) => r.scope === 'EXTERNAL').length,
    recipientAddresses: event.recipients.map((r) => r.address),
  };
}

export function labelOf(scoreValue: number, thresholds: { suspiciousAt: number; spamAt: number }): SpamLabel {
  if (scoreValue >= thresholds.spamAt) return 'SPAM';
  if (scoreValue >= thresholds.suspiciousAt) return 'SUSPICIOUS';
  return 'HAM';
}

export async function classify(event: OutboundMessage, deps: ClassifierDeps): Promise<SpamVerdict> {
  const features = await extractFeatures(event.raw, signalsOfEvent(event), deps.extract, event.rawTruncated);
  const vector = vectorise(features.counts);
  const value = score(deps.model, vector);
  return {
    score: Number(value.toFixed(6)),
    label: labelOf(value, tenantPolicy(deps.policy(), event.tenantId).spam),
    modelVersion: deps.model.version,
    truncated: features.truncated,
    topFeatures: explain(deps.model, vector),
  };
}

export async function enrich(event: OutboundMessage, deps: ClassifierDeps): Promise<OutboundMessage> {
  return { ...event, spam: await classify(event, deps) };
}
