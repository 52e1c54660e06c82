// auth-verifier's settings (see docs/configuration.md).
import { defineSettings } from '@mailpools/core';

export const AUTH_SETTINGS = defineSettings('auth-verifier', {
  MAILPOOLS_AUTH_MAX_BYTES: {
    default: '262144',
    doc: 'Raw messages longer than this get SPF only (status `PARTIAL`); so do messages the platform truncated.',
    min: 1_024,
    max: 64 * 1_048_576,
  },
  MAILPOOLS_AUTH_TIMEOUT_MS: {
    default: '5000',
    doc: 'Time bound of the checks of one message; past it the status is `PARTIAL` and SPF `temperror`.',
    min: 50,
    max: 120_000,
  },
  MAILPOOLS_AUTH_MTA: {
    default: 'mailpools',
    doc: 'The authserv-id (a host name) the results are written for.',
  },
});
