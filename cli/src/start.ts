// `mailpools start` (npm start): the local stack when KAFKA_BROKERS is unset, the topics and
// schemas, then every service in services/ as its own process, until Ctrl-C; then a clean stop
// of the services and of the stack this command started.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  allTopics,
  createLogger,
  freePort,
  loadRuntimeConfig,
  SERVICE_NODE_FLAGS,
  STAGES,
  stopChildProcess,
} from '@mailpools/core';
import { RECORD_NAMES } from '@mailpools/schemas';
import { useLocalStack } from '@mailpools/stack';
import { createEventProducer } from '@mailpools/stream';

const SERVICES_DIR = fileURLToPath(new URL('../../services/', import.meta.url));

/** Services that exist, the pipeline's stages first and in order. */
export function discoverServices(dir = SERVICES_DIR): string[] {
  const present = existsSync(dir)
    ? readdirSync(dir).filter((name) => existsSync(`${dir}/${name}/src/main.ts`))
    : [];
  const order = STAGES.map((s) => s.service);
  return present.sort(
    (a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
}

function pipeLines(child: ChildProcess, name: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) process.stdout.write(`${name.padEnd(20)}| ${line}\n`);
    });
  }
}

export async function runStart(): Promise<number> {
  const log = createLogger('mailpools');
  // Leave a stack that was already running as it was.
  const releaseStack = await useLocalStack();
  const config = loadRuntimeConfig();
  const producer = await createEventProducer(config);
  try {
    await producer.ensureTopics(allTopics(config.namespace, config.partitions));
    for (const name of RECORD_NAMES) await producer.serde.register(name);
  } finally {
    await producer.close();
  }
  log.info(
    { brokers: config.kafkaBrokers, registry: config.schemaRegistryUrl },
    'topics and schemas in place',
  );

  const services = discoverServices();
  // MAILPOOLS_HTTP_PORT is the first service's port and the others follow it in pipeline order;
  // 0 gives each a free port, so two namespaced pipelines can run side by side.
  const ports: number[] = [];
  for (const [index] of services.entries())
    ports.push(config.httpPort === 0 ? await freePort() : config.httpPort + index);
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  // Signal handlers do not keep Node running; this does, until Ctrl-C.
  const keepAlive = setInterval(() => undefined, 60_000);
  const stopped = new Promise<number>((resolve) => {
    const shutdown = async (reason: string, code: number) => {
      if (stopping) return;
      stopping = true;
      clearInterval(keepAlive);
      log.info({ reason }, 'stopping services');
      await Promise.all([...children.values()].map((child) => stopChildProcess(child)));
      await releaseStack();
      resolve(code);
    };
    process.once('SIGINT', () => void shutdown('SIGINT', 0));
    process.once('SIGTERM', () => void shutdown('SIGTERM', 0));
    for (const [index, name] of services.entries()) {
      const child = spawn(
        process.execPath,
        [
          ...SERVICE_NODE_FLAGS,
          fileURLToPath(new URL(`../../services/${name}/src/main.ts`, import.meta.url)),
        ],
        {
          env: { ...process.env, MAILPOOLS_HTTP_PORT: String(ports[index]) },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      pipeLines(child, name);
      child.once('exit', (code, signal) => {
        if (!stopping) void shutdown(`${name} exited (${signal ?? code})`, 1);
      });
      children.set(name, child);
      log.info({ service: name, metrics: `http://127.0.0.1:${ports[index]}/metrics` }, 'service started');
    }
    if (services.length === 0)
      log.info('no services in services/ yet; the stack is up, feed events with `npx mailpools feed`');
    log.info('running; Ctrl-C stops everything');
  });
  return stopped;
}
