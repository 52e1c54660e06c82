// The runtime's Prometheus metrics. Labels are bounded: stage, topic, partition, error code.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface StageMetrics {
  readonly registry: Registry;
  readonly processed: Counter<'stage'>;
  readonly deadLettered: Counter<'stage' | 'code'>;
  readonly failures: Counter<'stage' | 'code'>;
  readonly batchSeconds: Histogram<'stage' | 'delivery'>;
  readonly batchRecords: Histogram<'stage'>;
  readonly lag: Gauge<'stage' | 'topic' | 'partition'>;
  readonly assignedPartitions: Gauge<'stage'>;
  readonly ready: Gauge<'stage'>;
}

export function createStageMetrics(registry = new Registry()): StageMetrics {
  collectDefaultMetrics({ register: registry, prefix: 'mailpools_' });
  return {
    registry,
    processed: new Counter({
      name: 'mailpools_stage_records_processed_total',
      help: 'Input records a stage finished (produced and committed), poison ones included.',
      labelNames: ['stage'],
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'mailpools_stage_records_dead_lettered_total',
      help: 'Input records sent to the dead-letter topic, by error code.',
      labelNames: ['stage', 'code'],
      registers: [registry],
    }),
    failures: new Counter({
      name: 'mailpools_stage_transient_failures_total',
      help: 'Transient failures (broker, registry, Redis, DNS) that paused a partition and were retried.',
      labelNames: ['stage', 'code'],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: 'mailpools_stage_batch_duration_seconds',
      help: 'Time from receiving a batch to having produced and committed it.',
      labelNames: ['stage', 'delivery'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    batchRecords: new Histogram({
      name: 'mailpools_stage_batch_records',
      help: 'Records per batch.',
      labelNames: ['stage'],
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'mailpools_stage_consumer_lag_records',
      help: 'Records behind the end of the input partition after the last batch.',
      labelNames: ['stage', 'topic', 'partition'],
      registers: [registry],
    }),
    assignedPartitions: new Gauge({
      name: 'mailpools_stage_assigned_partitions',
      help: 'Input partitions assigned to this process.',
      labelNames: ['stage'],
      registers: [registry],
    }),
    ready: new Gauge({
      name: 'mailpools_stage_ready',
      help: '1 when the stage has joined its consumer group and can produce.',
      labelNames: ['stage'],
      registers: [registry],
    }),
  };
}
