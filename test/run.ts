// `npm test`: brings up the local stack when KAFKA_BROKERS is unset, runs every test file with
// node's test runner against it, and stops the stack again if this run started it.
// `npm run test:unit`: the tests that need no stack, without starting one.
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useLocalStack } from '@mailpools/stack';
import { filesUnder, runInProcessGroup } from '@mailpools/testkit';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const testFiles = (dir: string) => filesUnder(dir, '.test.ts').map((path) => relative(ROOT, path));

// `--unit`: the tests that need no stack — every test beside its code (libs/, services/, tools/,
// cli/, mta/) and test/unit/ — in seconds. Without it, the integration tests in test/ against a real
// local stack (npm test runs the unit tests first). Files named on the command line run alone.
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const selected = args.filter((a) => a !== '--unit');
const unitFiles = ['libs', 'services', 'tools', 'cli', 'mta', 'test/unit'].flatMap((d) => {
  try {
    return testFiles(join(ROOT, d));
  } catch {
    return [];
  }
});
const files =
  selected.length > 0
    ? selected
    : unitOnly
      ? unitFiles
      : testFiles(join(ROOT, 'test')).filter((f) => !unitFiles.includes(f));

if (unitOnly) {
  const { child, exited } = runInProcessGroup(process.execPath, ['--test', ...files], {
    cwd: ROOT,
    env: process.env,
    stdio: 'inherit',
    limitMs: 5 * 60_000,
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => process.kill(-(child.pid as number), signal));
  process.exit((await exited) ?? 1);
}

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
