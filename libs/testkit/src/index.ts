export * from './env.ts';
export * from './process.ts';
