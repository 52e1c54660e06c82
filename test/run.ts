// `npm test`: brings up the local stack when KAFKA_BROKERS is unset, runs every test file with
// node's test runner against it, and stops the stack again if this run started it.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useLocalStack } from '@mailpools/stack';
import { runInProcessGroup } from '@mailpools/testkit';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name.startsWith('.')) return [];
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [relative(ROOT, path)] : [];
  });
}

const selected = process.argv.slice(2);
const files =
  selected.length > 0
    ? selected
    : ['libs', 'services', 'test'].flatMap((d) => {
        try {
          return testFiles(join(ROOT, d));
        } catch {
          return [];
        }
      });

const releaseStack = await useLocalStack();

// The whole suite takes about 11 minutes; a hang must fail the run, not eat CI's 90 minutes.
const SUITE_LIMIT_MS = 40 * 60_000;

let status = 1;
try {
  const { child, exited } = runInProcessGroup(
    process.execPath,
    ['--test', '--test-concurrency=1', ...files],
    {
      cwd: ROOT,
      env: process.env,
      stdio: 'inherit',
      limitMs: SUITE_LIMIT_MS,
      onOverdue: () =>
        console.error(
          `npm test: the suite ran past ${SUITE_LIMIT_MS / 60_000} minutes; stopping it as failed.`,
        ),
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => process.kill(-(child.pid as number), signal)); // then the stack goes down below
  status = (await exited) ?? 1;
} finally {
  await releaseStack();
}
process.exit(status);
