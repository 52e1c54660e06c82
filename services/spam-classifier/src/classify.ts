// spam-classifier's logic: score each message's content and envelope with the trained model,
// hold it against its submitter's profile (profile.ts), and label it under the tenant's
// thresholds. A batch shares one profile call; without a profile store, content alone decides.
import { fileURLToPath } from 'node:url';
import { type Policy, tenantPolicy } from '@mailpools/policy';
import type { OutboundMessage, SpamLabel, SpamVerdict } from '@mailpools/schemas';
import { type ExtractOptions, extractFeatures, type OutboundSignals } from './features.ts';
import { explain, loadModel, logOdds, type SpamModel, score, type Vector, vectorise } from './model.ts';
import { type ProfileEvidence, type ProfileStore, profileMoves } from './profile.ts';
import { SPAM_SETTINGS } from './settings.ts';

export const DEFAULT_MODEL_PATH = fileURLToPath(new URL('../model/spam-model.bin', import.meta.url));

export interface ClassifierDeps {
  readonly model: SpamModel;
  readonly policy: () => Policy;
  readonly extract: ExtractOptions;
  /** Submitters' profiles; without them, verdicts rest on the content alone. */
  readonly profiles?: ProfileStore;
}

type Env = Readonly<Record<string, string | undefined>>;

export function extractOptions(env: Env): ExtractOptions {
  return {
    maxBytes: SPAM_SETTINGS.integer(env, 'MAILPOOLS_SPAM_MAX_BYTES'),
    timeoutMs: SPAM_SETTINGS.integer(env, 'MAILPOOLS_SPAM_TIMEOUT_MS'),
  };
}

/** The configuration table's defaults: what training, evaluation and the service all use. */
export const DEFAULT_EXTRACT: ExtractOptions = extractOptions({});

/** The model and bounds from the environment; `profiles` when the submitter's pattern should count. */
export function classifierDepsFromEnv(
  env: Env,
  policy: () => Policy,
  profiles?: ProfileStore,
): ClassifierDeps {
  return {
    model: loadModel(SPAM_SETTINGS.text(env, 'MAILPOOLS_SPAM_MODEL') || DEFAULT_MODEL_PATH),
    policy,
    extract: extractOptions(env),
    ...(profiles ? { profiles } : {}),
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

/** Mail a person (or a tenant's system) submitted, whose sending has a pattern of its own. */
export function hasSubmitterPattern(event: OutboundMessage): boolean {
  return (
    event.messageClass === 'NORMAL' &&
    event.submitter.trim() !== '' &&
    (event.origin === 'CLIENT_SUBMISSION' || event.origin === 'ON_PREMISES_CONNECTOR')
  );
}

interface Content {
  readonly vector: Vector;
  readonly words: readonly string[];
  readonly score: number;
  readonly truncated: boolean;
}

async function judgeContent(event: OutboundMessage, deps: ClassifierDeps): Promise<Content> {
  const features = await extractFeatures(event.raw, signalsOfEvent(event), deps.extract, event.rawTruncated);
  const vector = vectorise(features.counts);
  return { vector, words: features.words, score: score(deps.model, vector), truncated: features.truncated };
}

function verdictOf(
  event: OutboundMessage,
  content: Content,
  evidence: ProfileEvidence | undefined,
  deps: ClassifierDeps,
): SpamVerdict {
  const tenant = tenantPolicy(deps.policy(), event.tenantId).spam;
  const moves = evidence ? profileMoves(evidence, content.score, tenant.profile) : [];
  const shift = moves.reduce((sum, move) => sum + move.weight, 0);
  const value = shift === 0 ? content.score : 1 / (1 + Math.exp(-(logOdds(content.score) + shift)));
  const top = [...moves, ...explain(deps.model, content.vector)]
    .sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight))
    .slice(0, 6);
  return {
    score: Number(value.toFixed(6)),
    label: labelOf(value, tenant),
    modelVersion: deps.model.version,
    truncated: content.truncated,
    topFeatures: top,
  };
}

/** Verdicts for a batch, in order: content first, then one profile call for the whole batch. */
export async function classifyBatch(
  events: readonly OutboundMessage[],
  deps: ClassifierDeps,
): Promise<SpamVerdict[]> {
  const contents: Content[] = [];
  for (const event of events) contents.push(await judgeContent(event, deps));
  const profiled = deps.profiles ? events.flatMap((event, i) => (hasSubmitterPattern(event) ? [i] : [])) : [];
  const evidence = new Map<number, ProfileEvidence>();
  if (deps.profiles && profiled.length > 0) {
    const observed = await deps.profiles.observe(
      profiled.map((i) => {
        const event = events[i] as OutboundMessage;
        const content = contents[i] as Content;
        const tenant = tenantPolicy(deps.policy(), event.tenantId).spam;
        return {
          messageId: event.messageId,
          tenantId: event.tenantId,
          submitter: event.submitter.trim().toLowerCase(),
          eventTime: event.eventTime,
          words: content.words,
          externalRecipients: event.recipients.filter((r) => r.scope === 'EXTERNAL').map((r) => r.address),
          contentScore: content.score,
          learn: content.score < tenant.suspiciousAt,
        };
      }),
    );
    profiled.forEach((index, k) => {
      const found = observed[k];
      if (found) evidence.set(index, found);
    });
  }
  return events.map((event, i) => verdictOf(event, contents[i] as Content, evidence.get(i), deps));
}

export async function classify(event: OutboundMessage, deps: ClassifierDeps): Promise<SpamVerdict> {
  return (await classifyBatch([event], deps))[0] as SpamVerdict;
}

export async function enrich(
  events: readonly OutboundMessage[],
  deps: ClassifierDeps,
): Promise<OutboundMessage[]> {
  const verdicts = await classifyBatch(events, deps);
  return events.map((event, i) => ({ ...event, spam: verdicts[i] ?? null }));
}
