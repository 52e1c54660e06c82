export * from './config.ts';
export * from './domain.ts';
export * from './node-style.ts';
export * from './resolver.ts';
export * from './transport.ts';
