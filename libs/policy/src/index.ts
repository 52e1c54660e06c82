// @mailpools/policy: tenant policy as data, section by section.
export * from './auth.ts';
export * from './directory.ts';
export * from './limits.ts';
export * from './mta.ts';
export * from './ndr.ts';
export * from './policy.ts';
export * from './routing.ts';
export * from './spam.ts';
