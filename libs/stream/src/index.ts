export { type BareLoop, startBarePassthrough } from './baseline.ts';
export * from './client.ts';
export { type HealthServer, startHealthServer } from './http.ts';
export { committedOffset, createKafka, isRetriable, offsetReader } from './kafka.ts';
export * from './metrics.ts';
export * from './service.ts';
export * from './stage.ts';
