// Readiness probes, one attempt each, through the real protocols. Each resolves to true/false and never throws.
import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';

const PROBE_TIMEOUT_MS = 2000;

// Kafka: a raw Metadata v1 request (no topics). A broker lists itself in the answer only once it is
// registered and unfenced, i.e. ready for clients. Raw bytes rather than kafkajs because kafkajs on
// Node 24 prints a TimeoutNegativeWarning on its first answer, which would land in the stack's output.
export function probeKafka(host: string, port: number): Promise<boolean> {
  const clientId = Buffer.from('mailpools-stack-probe');
  const request = Buffer.alloc(4 + 2 + 2 + 4 + 2 + clientId.length + 4);
  let at = request.writeInt32BE(request.length - 4, 0);
  at = request.writeInt16BE(3, at); // api key: Metadata
  at = request.writeInt16BE(1, at); // api version 1: an empty topic array means "no topics"
  at = request.writeInt32BE(1, at); // correlation id
  at = request.writeInt16BE(clientId.length, at);
  at += clientId.copy(request, at);
  request.writeInt32BE(0, at); // topics: empty array

  return new Promise((resolve) => {
    const socket = new Socket();
    let received = Buffer.alloc(0);
    const finish = (ready: boolean) => {
      socket.destroy();
      resolve(ready);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return;
      // size, correlation id, then the broker array's length.
      finish(received.length >= 12 && received.readInt32BE(4) === 1 && received.readInt32BE(8) >= 1);
    });
    socket.connect(port, host, () => socket.write(request));
  });
}

// Registry: the Confluent-compatible API the services use answers 200.
export async function probeRegistry(baseUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${baseUrl}/subjects`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

// Redis: PING answers PONG. No retries and no offline queue, so a dead server fails fast.
export async function probeRedis(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => {}); // reported through the rejected connect() instead
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

// PostgreSQL: a connection to the server's own `postgres` database answers SELECT 1 (the
// database in the URL may not exist yet: the trace writer creates it).
export async function probePostgres(url: string): Promise<boolean> {
  const target = new URL(url);
  target.pathname = '/postgres';
  const client = new pg.Client({
    connectionString: target.toString(),
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
  });
  client.on('error', () => {}); // reported through the rejected connect() instead
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}
