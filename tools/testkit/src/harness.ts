// A stage in-process, without Kafka: records go straight to the stage's handler the way the
// runtime hands them over (a batch, a failure narrowed down to the records that cause it), and
// what comes back is checked against its Avro schema as the runtime's encoder would. A stage's
// logic and wiring are unit-tested this way; the integration tests still run it on the stack.
import { MailpoolsError } from '@mailpools/core';
import { type RecordName, typeOf } from '@mailpools/schemas';
import {
  createServiceContext,
  type InputRecord,
  type OutputRecord,
  type ServiceContext,
  type Stage,
  type StageFactory,
} from '@mailpools/stream';
import { freshNamespace } from './env.ts';

export interface DeadLetter<T> {
  readonly value: T;
  readonly error: MailpoolsError;
}

export interface Fed<T> {
  /** Every output record, in input order. */
  readonly outputs: OutputRecord[];
  readonly deadLetters: DeadLetter<T>[];
}

export interface StageHarness {
  readonly stage: Stage;
  readonly context: ServiceContext;
  /** One batch through the stage's handler. */
  feed<T>(values: readonly T[], options?: { topic?: string; partition?: number }): Promise<Fed<T>>;
  /** The sum of every series of one of the stage's metrics (0 when it has none). */
  metric(name: string): Promise<number>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Environment over the process's: a fresh namespace unless it names one. */
  readonly env?: Readonly<Record<string, string>>;
  /** Connect Redis when the stage asked for it (default true); false for stages that need none for the records fed. */
  readonly connect?: boolean;
}

export async function stageHarness(
  service: string,
  factory: StageFactory,
  options: HarnessOptions = {},
): Promise<StageHarness> {
  const running = createServiceContext(service, {
    ...process.env,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    MAILPOOLS_NAMESPACE: freshNamespace(),
    ...options.env,
  });
  const built = await factory(running.context);
  const stage = 'stage' in built ? built.stage : built;
  const closeParts = 'stage' in built ? built.close : undefined;
  if (options.connect !== false) await running.connect();
  let offset = 0;
  return {
    stage,
    context: running.context,
    async feed<T>(values: readonly T[], feedOptions: { topic?: string; partition?: number } = {}) {
      const records: InputRecord<T>[] = values.map((value) => ({
        key: null,
        value,
        topic: feedOptions.topic ?? 'harness',
        partition: feedOptions.partition ?? 0,
        offset: String(offset++),
        timestamp: Date.now(),
        headers: {},
      }));
      const outcomes = await stage.process(records);
      const fed: Fed<T> = { outputs: [], deadLetters: [] };
      for (const [i, outcome] of outcomes.entries()) {
        const value = values[i] as T;
        if (outcome instanceof MailpoolsError) {
          fed.deadLetters.push({ value, error: outcome });
          continue;
        }
        const invalid = outcome.find((o) => !typeOf(o.schema as RecordName).isValid(o.value));
        if (invalid) {
          fed.deadLetters.push({
            value,
            error: new MailpoolsError(
              'MAILPOOLS_ERR_ENCODE_FAILED',
              `An output is not a valid ${invalid.schema}.`,
            ),
          });
          continue;
        }
        fed.outputs.push(...outcome);
      }
      return fed;
    },
    async metric(name) {
      const metric = stage.metrics.registry.getSingleMetric(name);
      if (!metric) return 0;
      const { values } = await metric.get();
      return values.reduce((sum, v) => sum + v.value, 0);
    },
    async close() {
      await closeParts?.();
      await running.close();
    },
  };
}
