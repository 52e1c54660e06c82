// spam-classifier's settings (see docs/configuration.md).
import { defineSettings } from '@mailpools/core';

export const SPAM_SETTINGS = defineSettings('spam-classifier', {
  MAILPOOLS_SPAM_MODEL: {
    default: '',
    doc: 'The model artefact; unset: `services/spam-classifier/model/spam-model.bin`.',
  },
  MAILPOOLS_SPAM_MAX_BYTES: {
    default: '32768',
    doc: 'Bytes of a message parsed at most; the verdict says `truncated` when more were left unread.',
    min: 1024,
    max: 16 * 1024 * 1024,
  },
  MAILPOOLS_SPAM_TIMEOUT_MS: {
    default: '50',
    doc: 'Time bound of parsing one message (then judged as plain text, flagged).',
    min: 1,
    max: 10_000,
  },
  MAILPOOLS_SPAM_PROFILE_DEDUP_TTL_S: {
    default: '604800',
    doc: "How long a message's submitter-profile evidence is kept, so that a replay gets the same verdict (cover the topic retention).",
    min: 3_600,
    max: 90 * 86_400,
  },
  MAILPOOLS_SPAM_PROFILE_TTL_S: {
    default: '5184000',
    doc: 'A submitter profile not written to for this long is forgotten.',
    min: 86_400,
    max: 3_650 * 86_400,
  },
});
