// Commands as a person runs them: in a pseudo-terminal (util-linux's `script`, so the command sees
// a TTY: colour, layout), or plainly through a pipe. Each runs in its own process group and is
// stopped with it; its output is collected as it comes, for waiting on a line.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../../bin/mailpools.ts', import.meta.url));

export interface RunningCommand {
  readonly child: ChildProcess;
  /** Everything written so far (stdout and stderr; in a terminal they are one stream). */
  output(): string;
  /** Resolves with the output once its plain text (no escapes) matches, or rejects after timeoutMs with what it has. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGINT to the group (Ctrl-C), SIGKILL after 20 s; the exit code. */
  stop(): Promise<number | null>;
  /** The exit code, once it has ended by itself. */
  exited(): Promise<number | null>;
}

/** The session `script` started its command in: the pid of its one child. */
function sessionInside(scriptPid: number): number | undefined {
  try {
    const children = readFileSync(`/proc/${scriptPid}/task/${scriptPid}/children`, 'utf8')
      .trim()
      .split(/\s+/);
    const pid = Number(children[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;

/** `mailpools <args>`; with `terminal`, inside a pseudo-terminal of 160 columns. */
export function runCommand(
  args: readonly string[],
  env: Record<string, string | undefined>,
  options: { terminal?: boolean } = {},
): RunningCommand {
  const command = [process.execPath, CLI, ...args];
  const child = options.terminal
    ? spawn('script', ['-qfec', `stty cols 160 rows 50; exec ${command.map(quote).join(' ')}`, '/dev/null'], {
        env: { ...process.env, TERM: 'xterm-256color', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      })
    : spawn(command[0] as string, command.slice(1), {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
  let text = '';
  const listeners = new Set<() => void>();
  for (const stream of [child.stdout, child.stderr])
    stream?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      for (const listener of listeners) listener();
    });
  const ended = once(child, 'exit').then(([code]) => code as number | null);
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), signal);
    } catch {
      // already gone
    }
  };
  return {
    child,
    output: () => text,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(plainText(text))) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(text);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; the output was:\n${text.slice(-4_000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      // Ctrl-C as a person types it: in a terminal the pty turns it into SIGINT for the command
      // (a session of its own, out of reach of our process group); through a pipe, SIGINT.
      const session = options.terminal ? sessionInside(child.pid as number) : undefined;
      if (options.terminal) child.stdin?.write('\u0003');
      else group('SIGINT');
      const killer = setTimeout(() => {
        if (session !== undefined) spawn('pkill', ['-KILL', '-s', String(session)]);
        group('SIGKILL');
      }, 20_000);
      const code = await ended;
      clearTimeout(killer);
      if (session !== undefined) spawn('pkill', ['-KILL', '-s', String(session)]);
      group('SIGKILL'); // anything it left behind in its group
      return code;
    },
    exited: () => ended,
  };
}

/**
 * Text as a person reads it on the screen: no terminal escapes (colour, cursor), and of a line
 * redrawn with carriage returns (a progress bar) only its last drawing.
 */
export function plainText(text: string): string {
  const esc = String.fromCharCode(27);
  return text
    .replace(new RegExp(`${esc}\\[[0-9;?]*[A-Za-z]`, 'g'), '')
    .split('\n')
    .map((line) => line.replace(/\r+$/, '').split('\r').pop() as string)
    .join('\n');
}

export function hasColour(text: string): boolean {
  return text.includes(`${String.fromCharCode(27)}[3`);
}
