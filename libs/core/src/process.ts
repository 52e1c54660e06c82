// Child processes the project starts itself (the services under `npm start`, tests, scripts).
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** SIGTERM (the child drains), SIGKILL if it has not exited within `graceMs`; resolves with its exit code. */
export async function stopChildProcess(child: ChildProcess, graceMs = 30_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const stuck = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const [code] = await exited;
  clearTimeout(stuck);
  return code as number | null;
}
