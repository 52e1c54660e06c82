export * from './config.ts';
export * from './errors.ts';
export * from './logger.ts';
export * from './process.ts';
export * from './progress.ts';
export * from './random.ts';
export * from './redis.ts';
export * from './topology.ts';
