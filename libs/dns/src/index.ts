export * from './config.ts';
export * from './resolver.ts';
export * from './transport.ts';
