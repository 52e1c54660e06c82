// What every MTA integration starts with: the runtime configuration and the watched tenant policy
// from the environment, a metrics registry, and a submitter whose `judge` turns a submission into
// its assignment — or the deferral the tenant's policy answers with when none comes in time.
import { type Logger, loadRuntimeConfig, type RuntimeConfig } from '@mailpools/core';
import { type Policy, tenantPolicy, watchPolicy } from '@mailpools/policy';
import type { PoolAssignment } from '@mailpools/schemas';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { eventFromSubmission, type Submission } from './message.ts';
import { createSubmitter, DecisionDeferred, kafkaTransport } from './submitter.ts';

export interface MtaSide {
  readonly config: RuntimeConfig;
  readonly policy: () => Policy;
  readonly registry: Registry;
  /** The submission's assignment, or the deferral (with its 4xx) when no decision came in time. */
  judge(submission: Submission): Promise<PoolAssignment | DecisionDeferred>;
  close(): Promise<void>;
}

export async function startMtaSide(
  env: Readonly<Record<string, string | undefined>>,
  logger: Logger,
  options: { maxInFlight?: number } = {},
): Promise<MtaSide> {
  const config = loadRuntimeConfig(env);
  const watch = watchPolicy(env, {
    changed: (p) => logger.info({ version: p.version }, 'policy reloaded'),
    refused: (error) => logger.error({ code: error.code }, error.describe()),
  });
  const policy = watch.current;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const submitter = await createSubmitter({
    transport: await kafkaTransport(config),
    policy,
    registry,
    ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
  });
  return {
    config,
    policy,
    registry,
    async judge(submission) {
      const tenant = tenantPolicy(policy(), submission.tenantId);
      const event = eventFromSubmission(submission, {
        internalDomains: tenant.directory.acceptedDomains,
        maxRawBytes: config.maxRawBytes,
      });
      try {
        return await submitter.submit(event);
      } catch (error) {
        if (error instanceof DecisionDeferred) return error;
        throw error;
      }
    },
    async close() {
      watch.stop();
      await submitter.close();
    },
  };
}

/** A message stream's bytes. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}
