// Services under test run as real processes, the way `npm start` runs them.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SERVICE_NODE_FLAGS } from '@mailpools/core';

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts services/<name>/src/index.ts and waits until its /readyz answers 200. */
export async function startService(
  name: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<ServiceProcess> {
  const port = await freePort();
  const entry = fileURLToPath(new URL(`../../../services/${name}/src/index.ts`, import.meta.url));
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, entry], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, MAILPOOLS_HTTP_PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before it was ready`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} was not ready within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    port,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      return code as number | null;
    },
  };
}
