// @mailpools/stack: the real Kafka, schema registry, Redis and PostgreSQL on 127.0.0.1, without Docker.
export { runStackCli } from './cli.ts';
export { STACK_SETTINGS, type StackEndpoints, type StackOptions } from './config.ts';
export { type Check, stackChecks } from './doctor.ts';
export type { StackErrorCode } from './errors.ts';
export { StackError } from './errors.ts';
export {
  type Delivery,
  type HarakaInstanceOptions,
  type HarakaProcess,
  harakaBin,
  type RecordingDestination,
  startHaraka,
  startRecordingDestination,
  writeHarakaInstance,
} from './mta.ts';
export { probeKafka, probePostgres, probeRedis, probeRegistry } from './probe.ts';
export type { PartName, PartReport, StackDownOptions, StackDownResult, StackReport } from './stack.ts';
export {
  servicesFile,
  stackDown,
  stackEndpoints,
  stackKafkaCredentials,
  stackRestart,
  stackStatus,
  stackUp,
  useLocalStack,
} from './stack.ts';
