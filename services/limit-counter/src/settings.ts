// limit-counter's settings (see docs/configuration.md); the limits themselves are policy (docs/policy.md).
import { defineSettings } from '@mailpools/core';

export const LIMITS_SETTINGS = defineSettings('limit-counter', {
  MAILPOOLS_LIMITS_GRACE_S: {
    default: '300',
    doc: "How late (behind the sender's latest event) an event may be and still count at its own event time; later ones count at the latest minus this.",
    min: 0,
    max: 7 * 86_400,
  },
  MAILPOOLS_LIMITS_DEDUP_TTL_S: {
    default: '604800',
    doc: "How long a message id and its verdict are remembered, so a replay counts nothing; cover the input topic's retention.",
    min: 3_600,
    max: 90 * 86_400,
  },
  MAILPOOLS_LIMITS_MAX_DEFER_MIN: {
    default: '1440',
    doc: 'Furthest into the future a throttled message is deferred.',
    min: 1,
    max: 7 * 1_440,
  },
});
