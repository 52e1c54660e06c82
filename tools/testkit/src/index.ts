export * from './dns-server.ts';
export * from './env.ts';
export * from './files.ts';
export * from './harness.ts';
export * from './process.ts';
export * from './prometheus.ts';
export * from './terminal.ts';
