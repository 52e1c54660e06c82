// Services under test run as real processes, the way `npm start` runs them.
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { freePort, SERVICE_NODE_FLAGS, stopChildProcess } from '@mailpools/core';

export { freePort };

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** What it wrote to stdout and stderr, when started with `capture` (else empty). */
  output(): string;
  /** SIGTERM (SIGKILL if it has not drained within 30 s), then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts services/<name>/src/main.ts and waits until its /readyz answers 200. */
export function startService(
  name: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
  capture = false,
): Promise<ServiceProcess> {
  const entry = fileURLToPath(new URL(`../../../services/${name}/src/main.ts`, import.meta.url));
  return startStageProcess(entry, env, timeoutMs, capture);
}

/** Starts a stage's entry file as a process the way `npm start` does; resolves once /readyz answers 200. */
export async function startStageProcess(
  entry: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
  capture = false,
): Promise<ServiceProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, entry], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, MAILPOOLS_HTTP_PORT: String(port) },
    stdio: ['ignore', capture ? 'pipe' : 'inherit', capture ? 'pipe' : 'inherit'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`${entry} exited with ${child.exitCode} before it was ready`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${entry} was not ready within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    port,
    output: () => output,
    stop: () => stopChildProcess(child),
  };
}

/** The sum of every series of a metric on a process's /metrics (0 when absent). */
export async function scrapeMetric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Events/s of a stage between its first and its last processed record, polling `processed`
 * (a counter of the stage's) until it reaches `total`; for benchmarks.
 */
export async function measureEventsPerSecond(
  label: string,
  total: number,
  processed: () => number | Promise<number>,
  pollMs = 10,
): Promise<number> {
  let firstAt = 0;
  let firstCount = 0;
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    const count = await processed();
    if (firstAt === 0 && count > 0) {
      firstAt = performance.now();
      firstCount = count;
    }
    if (count >= total) {
      const rate = ((count - firstCount) / (performance.now() - firstAt)) * 1000;
      console.error(`${label}: ${Math.round(rate)} events/s`);
      return rate;
    }
    if (Date.now() > deadline) throw new Error(`${label} did not finish: ${count}/${total}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Runs `mailpools <args>` as a user would, without blocking this process (which may serve what it asks). */
export function runMailpools(
  args: string[],
  env: Record<string, string>,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const cli = fileURLToPath(new URL('../../../bin/mailpools.ts', import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * Runs a command in its own process group, so that nothing it starts outlives it: past `limitMs`
 * the whole group is SIGKILLed (after `onOverdue`), and so are its leftovers once it has exited.
 */
export function runInProcessGroup(
  command: string,
  args: readonly string[],
  options: {
    env: NodeJS.ProcessEnv;
    stdio: StdioOptions;
    limitMs: number;
    onOverdue?: () => void;
    cwd?: string;
  },
): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: options.stdio,
    detached: true,
  });
  const killGroup = () => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const overdue = setTimeout(() => {
    options.onOverdue?.();
    killGroup();
  }, options.limitMs);
  const exited = once(child, 'close').then(([code]) => {
    clearTimeout(overdue);
    killGroup();
    return code as number | null;
  });
  return { child, exited };
}
