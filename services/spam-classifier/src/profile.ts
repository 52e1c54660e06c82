// The submitter's own pattern: the strongest sign of a compromised account on an outbound
// platform is a change in how that account sends. Each submitter has a bounded profile in Redis
// (profile.lua): the words it wrote and the external recipients it wrote to (Bloom filters), its
// messages per event-time hour and its usual content score. A message is held against the profile
// as it stood before it; the evidence moves the content model's log-odds, and every move is named
// in the verdict's top features (`profile:…`).
//
// The moves, and why each is bounded:
// - escalations (content unlike the submitter's history, mostly first-time external recipients,
//   a burst far above its usual hourly count) need two of the three together, and apply only to
//   content the model already finds at least a little suspicious: a good sender writing about
//   something new to someone new is not spam, and the high-risk pool is the worst place for it;
// - the discount (an established, clean submitter writing as it always does, to people it knows)
//   helps the repetitive transactional mail that most resembles phishing.
import { readFileSync } from 'node:fs';
import { MailpoolsError } from '@mailpools/core';
import type { Redis } from 'ioredis';
import { hashFeature } from './model.ts';

const SCRIPT = readFileSync(new URL('./profile.lua', import.meta.url), 'utf8');

/** Bloom filter sizes (bits) and hash counts; profile.lua knows the counts too. */
const WORD_BITS = 16_384;
const K_WORDS = 2;
const RECIPIENT_BITS = 4_096;
const K_RECIPIENTS = 3;
/** Words of a message held against the profile: a sample, always the same for the same words. */
const SAMPLED_WORDS = 32;
const MAX_RECIPIENTS = 50;

export interface ProfileSettings {
  /** `mailpools:<namespace>spam:` */
  readonly prefix: string;
  /** How long a message id's evidence is kept, so that a replay gets the same verdict. */
  readonly dedupTtlSeconds: number;
  /** A profile not written to for this long is forgotten. */
  readonly keyTtlSeconds: number;
}

/** What the profile said about one message, as it stood before that message. */
export interface ProfileEvidence {
  /** Messages the submitter sent before. */
  readonly n: number;
  /** Distinct words of this message, and how many the submitter never wrote before. */
  readonly tw: number;
  readonly nw: number;
  /** External recipients of this message, and how many the submitter never wrote to. */
  readonly tr: number;
  readonly nr: number;
  /** Its messages in this event-time hour (this one included), and its usual count per hour it sends. */
  readonly hc: number;
  readonly hm: number;
  /** Its usual content score (moving average). */
  readonly ms: number;
  /** Its usual share of new words in a message (moving average; 0 before it has one). */
  readonly mn: number;
}

export interface ProfileInput {
  readonly messageId: string;
  readonly tenantId: string;
  /** The submitter (lower case): whose pattern it is. */
  readonly submitter: string;
  readonly eventTime: number;
  readonly words: readonly string[];
  readonly externalRecipients: readonly string[];
  /** The content score before the profile. */
  readonly contentScore: number;
  /** Whether the content was judged clean enough to teach the profile. */
  readonly learn: boolean;
}

export interface ProfileStore {
  /** One script call for the whole batch; evidence per input, in order. */
  observe(inputs: readonly ProfileInput[]): Promise<ProfileEvidence[]>;
  readonly roundTrips: () => number;
}

export function spamPrefix(namespace: string): string {
  return `mailpools:${namespace}spam:`;
}

function offsets(items: Iterable<string>, bits: number, k: number, max: number): number[] {
  const result: number[] = [];
  let count = 0;
  for (const item of items) {
    if (count++ >= max) break;
    // Double hashing: the k positions of an item from two independent hashes.
    const a = hashFeature(item);
    const b = hashFeature(`#${item}`) | 1;
    for (let i = 0; i < k; i++) result.push((a + i * b) % bits);
  }
  return result;
}

/** The words that describe what a message is about: distinct, three letters or more. */
export function profileWords(words: readonly string[]): Set<string> {
  const distinct = new Set<string>();
  for (const word of words)
    if (word.length >= 3 || /[^\p{Script=Latin}\p{N}]/u.test(word)) distinct.add(word);
  return distinct;
}

type Scripted = Redis & { mailpoolsProfile(prefix: string, ...args: string[]): Promise<[number, string][]> };

export function createProfileStore(redis: Redis, settings: ProfileSettings): ProfileStore {
  const scripted = redis as Scripted;
  if (!('mailpoolsProfile' in scripted))
    redis.defineCommand('mailpoolsProfile', { numberOfKeys: 0, lua: SCRIPT });
  const scriptSettings = JSON.stringify({
    dedupTtl: settings.dedupTtlSeconds,
    keyTtl: settings.keyTtlSeconds,
    // A filter generation retires after this many new items: false positives stay near 1 %.
    vocabRotate: 800,
    recipientRotate: 250,
    wordBits: WORD_BITS,
    recipientBits: RECIPIENT_BITS,
    hourlyAlpha: 0.2,
    scoreAlpha: 0.1,
  });
  let roundTrips = 0;
  return {
    async observe(inputs) {
      if (inputs.length === 0) return [];
      const events = inputs.map((input) => ({
        id: input.messageId,
        key: `${input.tenantId}/${input.submitter}`,
        t: input.eventTime,
        v: offsets(profileWords(input.words), WORD_BITS, K_WORDS, SAMPLED_WORDS),
        r: offsets(
          new Set(input.externalRecipients.map((a) => a.toLowerCase())),
          RECIPIENT_BITS,
          K_RECIPIENTS,
          MAX_RECIPIENTS,
        ),
        learn: input.learn ? 1 : 0,
        s: Number(input.contentScore.toFixed(4)),
      }));
      roundTrips++;
      let replies: [number, string][];
      try {
        replies = await scripted.mailpoolsProfile(settings.prefix, scriptSettings, JSON.stringify(events));
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (/^ERR .*(script|Lua)/i.test(message))
          throw new MailpoolsError(
            'MAILPOOLS_ERR_SPAM_PROFILE_SCRIPT',
            `The profile script failed: ${message}`,
            {
              hint: 'This is a bug in spam-classifier; the records are dead-lettered with this message.',
              cause: error,
            },
          );
        throw new MailpoolsError('MAILPOOLS_ERR_REDIS_UNAVAILABLE', `Redis did not answer: ${message}.`, {
          hint: 'Check REDIS_URL and that Redis is up; the partition pauses and retries meanwhile, nothing is dropped.',
          cause: error,
        });
      }
      return replies.map(([, json]) => JSON.parse(json) as ProfileEvidence);
    },
    roundTrips: () => roundTrips,
  };
}

/** The profile's share of a tenant's spam policy. */
export interface ProfilePolicy {
  readonly enabled: boolean;
  /** Messages a submitter must have sent before its profile says anything. */
  readonly minHistory: number;
}

export interface ProfileMove {
  readonly feature: string;
  /** Added to the content model's log-odds. */
  readonly weight: number;
}

const ramp = (value: number, from: number, to: number) =>
  Math.max(0, Math.min(1, (value - from) / (to - from)));

/**
 * How the evidence moves the log-odds of a message whose content scored `contentScore`; each
 * move named. Pure, so that it is tested and explained without Redis.
 */
export function profileMoves(
  evidence: ProfileEvidence,
  contentScore: number,
  policy: ProfilePolicy,
): ProfileMove[] {
  if (!policy.enabled || evidence.n < policy.minHistory) return [];
  const moves: ProfileMove[] = [];
  const newWords = evidence.tw >= 10 ? evidence.nw / evidence.tw : 0;
  const newRecipients = evidence.tr > 0 ? evidence.nr / evidence.tr : 0;
  const burst = evidence.hc / Math.max(evidence.hm, 1);
  // Escalations scale with how suspicious the content already is: none below 0.05, all from 0.2.
  const gate = ramp(contentScore, 0.05, 0.2);
  if (gate > 0) {
    // New words count against what is usual for this submitter: a person's mail is varied.
    const usual = Math.max(0.4, evidence.mn);
    const unlike = 1.5 * ramp(newWords, usual + 0.15, usual + 0.45) * gate;
    if (unlike > 0) moves.push({ feature: 'profile:content-unlike-history', weight: unlike });
    const strangers = 1.2 * ramp(newRecipients, 0.5, 1) * (evidence.tr >= 2 ? 1 : 0.5) * gate;
    if (strangers > 0) moves.push({ feature: 'profile:first-time-recipients', weight: strangers });
    const bursting = evidence.hc >= 5 ? 1.2 * ramp(burst, 3, 10) * gate : 0;
    if (bursting > 0) moves.push({ feature: 'profile:sending-burst', weight: bursting });
    // One change alone (a salesperson writing to a new prospect, a person on a new topic) is no
    // sign of a takeover: it takes two of the three, or a message to five or more addresses the
    // submitter never wrote to, none of them known.
    const blast = evidence.nr >= 5 && evidence.nr === evidence.tr;
    if (moves.length === 1 && !blast) moves.length = 0;
  }
  if (
    evidence.n >= 2 * policy.minHistory &&
    evidence.ms < 0.1 &&
    newWords <= Math.max(0.35, evidence.mn + 0.05) &&
    newRecipients <= 0.5 &&
    burst < 3
  )
    moves.push({ feature: 'profile:like-its-history', weight: -1 });
  return moves.map((m) => ({ feature: m.feature, weight: Number(m.weight.toFixed(4)) }));
}
