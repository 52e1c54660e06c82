// Process plumbing shared by the parts: finding them by their tag, detached start, readiness wait, stop.
import { spawn } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StackError } from './errors.ts';

const POLL_MS = 250;
const STOP_GRACE_MS = 20_000;
const TAIL_LINES = 20;
const ANSI_ESCAPE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/** Absolute path of an executable on PATH, or undefined. */
export function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

export function requireTool(command: string, install: string): void {
  if (which(command)) return;
  throw new StackError(
    'MAILPOOLS_ERR_STACK_MISSING_TOOL',
    `\`${command}\` is not on PATH; the stack needs it.`,
    {
      hint: install,
    },
  );
}

export const JAVA_INSTALL_HINT = 'Install Java 17 and Maven: apt-get install openjdk-17-jre-headless maven';

/** A zombie (exited, not yet reaped) counts as dead: it will never answer again. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The process's command line, argv joined by spaces ('' when it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/** The parts of the stack, each one process. */
export type PartName = 'kafka' | 'registry' | 'redis' | 'postgres';

/** How each part's command line looks (besides the stack's tag, which every one carries). */
const PART_COMMAND: Record<PartName, (commandLine: string) => boolean> = {
  kafka: (line) => line.includes(' kafka.Kafka '),
  registry: (line) => line.includes('apicurio-registry-app'),
  // Redis rewrites its command line to its process title (see startRedis).
  redis: (line) => line.startsWith('redis-server'),
  // Only the postmaster keeps its arguments; its backends retitle themselves and carry no tag.
  postgres: (line) => /(^|\/)postgres -D /.test(line),
};

// The tag ends where the next option begins (` -`) or with the command line.
const TAG = /mailpools\.stack=(.+?)(?= -|$)/;

export interface TaggedProcess {
  pid: number;
  part: PartName;
  /** The stack directory named by the tag: whose process it is. */
  stackDir: string;
}

/**
 * Every live process of any mailpools stack on this machine, found by the tag on its command
 * line: no pid file is needed, so a checkout that was moved or deleted still has its processes
 * found (and a reused pid is never mistaken for ours).
 */
export function taggedProcesses(): TaggedProcess[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const found: TaggedProcess[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    const line = commandLine(pid);
    const stackDir = TAG.exec(line)?.[1];
    if (stackDir === undefined) continue;
    const part = (Object.keys(PART_COMMAND) as PartName[]).find((name) => PART_COMMAND[name](line));
    if (part !== undefined && isAlive(pid)) found.push({ pid, part, stackDir });
  }
  return found;
}

/** Starts a long-running process that outlives us: own process group, output appended to logPath. */
export function spawnDetached(
  command: string,
  args: string[],
  cwd: string,
  logPath: string,
  /** Run as this user (the stack under root starting PostgreSQL, which refuses root). */
  owner?: { uid: number; gid: number },
): number {
  mkdirSync(cwd, { recursive: true });
  mkdirSync(dirname(logPath), { recursive: true });
  const log = openSync(logPath, 'a');
  try {
    const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', log, log], ...owner });
    if (child.pid === undefined) {
      throw new StackError('MAILPOOLS_ERR_STACK_PROCESS_EXITED', `Could not start \`${command}\`.`, {
        hint: `Check that \`${command}\` runs from this shell.`,
        logPath,
      });
    }
    child.on('error', () => {}); // a failed start shows up as a dead pid in waitReady
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/** Runs a command to completion; its output goes to onLine (line by line) and is kept for errors. */
export function runToEnd(
  command: string,
  args: string[],
  options: { cwd?: string; onLine?: (line: string) => void; uid?: number; gid?: number } = {},
): Promise<{ code: number; lines: string[] }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      uid: options.uid,
      gid: options.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const partial = { stdout: '', stderr: '' };
    const take = (stream: 'stdout' | 'stderr', chunk: Buffer, flush = false) => {
      const text = partial[stream] + chunk.toString('utf8');
      const parts = text.split('\n');
      partial[stream] = flush ? '' : (parts.pop() ?? '');
      for (const raw of parts) {
        // Maven's launcher emits colour resets even in batch mode.
        const line = raw.replaceAll(ANSI_ESCAPE, '').trimEnd();
        if (!line) continue;
        lines.push(line);
        options.onLine?.(line);
      }
    };
    child.stdout.on('data', (chunk: Buffer) => take('stdout', chunk));
    child.stderr.on('data', (chunk: Buffer) => take('stderr', chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      take('stdout', Buffer.alloc(0), true);
      take('stderr', Buffer.alloc(0), true);
      resolvePromise({ code: code ?? 1, lines });
    });
  });
}

export function tailFile(path: string, count = TAIL_LINES): string[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '');
  return lines.slice(-count);
}

export function tail(lines: string[], count = TAIL_LINES): string[] {
  return lines.slice(-count);
}

/** Whether we could listen on host:port right now. */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolvePromise(true)));
  });
}

export async function requireFreePort(
  host: string,
  port: number,
  part: string,
  envVar: string,
): Promise<void> {
  if (await portIsFree(host, port)) return;
  throw new StackError(
    'MAILPOOLS_ERR_STACK_PORT_IN_USE',
    `Port ${port} on ${host}, needed by ${part}, is taken by a process this stack did not start.`,
    { hint: `Stop whatever listens on ${port} (see \`ss -ltnp\`), or set ${envVar} to a free port.` },
  );
}

export interface ReadyWait {
  part: string;
  pid: number;
  logPath: string;
  timeoutMs: number;
  probe: () => Promise<boolean>;
}

/** Polls the probe until it answers; fails at once if the process dies, or after timeoutMs. */
export async function waitReady(wait: ReadyWait): Promise<void> {
  const deadline = Date.now() + wait.timeoutMs;
  for (;;) {
    if (await wait.probe()) return;
    if (!isAlive(wait.pid)) {
      throw new StackError(
        'MAILPOOLS_ERR_STACK_PROCESS_EXITED',
        `${wait.part} (pid ${wait.pid}) exited while starting.`,
        {
          hint: `Read the end of ${wait.logPath} for the cause.`,
          logPath: wait.logPath,
          logTail: tailFile(wait.logPath),
        },
      );
    }
    if (Date.now() >= deadline) {
      throw new StackError(
        'MAILPOOLS_ERR_STACK_NOT_READY',
        `${wait.part} (pid ${wait.pid}) did not become ready within ${wait.timeoutMs / 1000} s.`,
        {
          hint: `Read ${wait.logPath}; then run \`mailpools stack down\` and \`mailpools stack up\` again.`,
          logPath: wait.logPath,
          logTail: tailFile(wait.logPath),
        },
      );
    }
    await sleep(POLL_MS);
  }
}

/** `stop` (SIGTERM), up to 20 s for a clean shutdown, then SIGKILL. Resolves once the process is gone. */
export async function stopProcess(
  pid: number,
  part: string,
  stop: NodeJS.Signals = 'SIGTERM',
): Promise<'stopped' | 'killed'> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {}
  };
  signal(stop);
  const deadline = Date.now() + STOP_GRACE_MS;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'stopped';
    await sleep(100);
  }
  signal('SIGKILL');
  const killDeadline = Date.now() + 5000;
  while (Date.now() < killDeadline) {
    if (!isAlive(pid)) return 'killed';
    await sleep(100);
  }
  throw new StackError(
    'MAILPOOLS_ERR_STACK_STOP_FAILED',
    `${part} (pid ${pid}) survived SIGTERM and SIGKILL.`,
    {
      hint: `Check the process with \`ps -p ${pid} -o pid,stat,cmd\`; it may be stuck in the kernel.`,
    },
  );
}
