// trace-writer's settings (see docs/configuration.md); its PostgreSQL is DATABASE_URL.
import { defineSettings } from '@mailpools/core';

export const TRACE_SETTINGS = defineSettings('trace-writer', {
  MAILPOOLS_TRACE_RETENTION_DAYS: {
    default: '10',
    doc: 'Days of assignments kept; whole day partitions older than that (in event time) are dropped.',
    min: 1,
    max: 3_650,
  },
  MAILPOOLS_TRACE_API_PORT: {
    default: '9480',
    doc: 'Port of the read-only trace API; 0 picks a free one.',
    min: 0,
    max: 65_535,
  },
  MAILPOOLS_TRACE_API_TOKEN: {
    default: '',
    doc: 'The bearer token the trace API requires; unset: the API is off.',
  },
});
