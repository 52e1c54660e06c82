// `npm test`: brings up the local stack when KAFKA_BROKERS is unset, runs every test file with
// node's test runner against it, and stops the stack again if this run started it.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localStackUnlessConfigured, stackDown } from '@mailpools/stack';

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

const { env, startedHere: startedStack } = await localStackUnlessConfigured();

let status = 1;
try {
  const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], {
    cwd: ROOT,
    env,
    stdio: 'inherit',
  });
  status = result.status ?? 1;
} finally {
  if (startedStack) await stackDown();
}
process.exit(status);
