// The spam section: spam-classifier's thresholds, what SUSPICIOUS does, the submitter profile.
import { oneOf, type Reader } from './reader.ts';

export interface SpamPolicy {
  /** Score from which a message is labelled SUSPICIOUS. */
  readonly suspiciousAt: number;
  /** Score from which a message is labelled SPAM. */
  readonly spamAt: number;
  /** Where SUSPICIOUS mail goes: the normal pool (the default) or, when the tenant says so, high-risk. */
  readonly onSuspicious: 'normal' | 'high-risk';
  /** The submitter's own pattern (spam-classifier's profile). */
  readonly profile: {
    readonly enabled: boolean;
    /** Messages a submitter must have sent before its profile moves a score. */
    readonly minHistory: number;
  };
}

/** The built-in spam section: SPAM from 0.5, where the model's operating point is placed. */
export const SPAM_DEFAULTS: SpamPolicy = {
  suspiciousAt: 0.2,
  spamAt: 0.5,
  onSuspicious: 'normal',
  profile: { enabled: true, minHistory: 10 },
};

export function spamSection(raw: unknown, base: SpamPolicy, at: Reader): SpamPolicy {
  if (raw === undefined) return base;
  const given = at.object(raw, ['suspiciousAt', 'spamAt', 'onSuspicious', 'profile']);
  const suspiciousAt =
    given.suspiciousAt === undefined
      ? base.suspiciousAt
      : at.at('suspiciousAt').number(given.suspiciousAt, 0, 1);
  const spamAt = given.spamAt === undefined ? base.spamAt : at.at('spamAt').number(given.spamAt, 0, 1);
  if (suspiciousAt > spamAt) throw at.at('suspiciousAt').error(`must not exceed spamAt (${spamAt})`);
  const onSuspicious =
    given.onSuspicious === undefined
      ? base.onSuspicious
      : oneOf(at.at('onSuspicious'), given.onSuspicious, ['normal', 'high-risk'] as const);
  let profile = base.profile;
  if (given.profile !== undefined) {
    const p = at.at('profile').object(given.profile, ['enabled', 'minHistory']);
    profile = {
      enabled:
        p.enabled === undefined ? base.profile.enabled : at.at('profile').at('enabled').flag(p.enabled),
      minHistory:
        p.minHistory === undefined
          ? base.profile.minHistory
          : at.at('profile').at('minHistory').number(p.minHistory, 1, 100_000, true),
    };
  }
  return { suspiciousAt, spamAt, onSuspicious, profile };
}
