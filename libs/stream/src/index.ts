export * from './client.ts';
export { startHealthServer, type HealthServer } from './http.ts';
export { isRetriable } from './kafka.ts';
export * from './metrics.ts';
export * from './stage.ts';
