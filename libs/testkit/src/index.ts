export * from './dns-server.ts';
export * from './env.ts';
export * from './process.ts';
export * from './prometheus.ts';
