// @mailpools/client: the mail platform's integration API (docs/integration.md).
export * from './message.ts';
export * from './mta.ts';
export * from './mta-side.ts';
export * from './submitter.ts';
