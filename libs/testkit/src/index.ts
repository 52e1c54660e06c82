export * from './dns-server.ts';
export * from './env.ts';
export * from './process.ts';
