// The docs are the users' reference: keep them in step with the code. The README is the short
// front door; the configuration and policy pages show what the code does; every relative link
// in every page resolves.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '@mailpools/core';
import { compilePolicy, DEFAULT_POLICY } from '@mailpools/policy';
import { filesUnder } from '@mailpools/testkit';
import { allSettings, configurationPage, errorsPage } from '../../docs/generate.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const readme = read('README.md');

test('the configuration page is what the declared settings generate, and no variable has two owners', () => {
  assert.equal(
    read('docs/configuration.md'),
    configurationPage(),
    'docs/configuration.md is stale: run npm run docs:generate',
  );
  const names = allSettings().map(([name]) => name);
  assert.equal(new Set(names).size, names.length, 'each variable is declared once');
  const configuration = read('docs/configuration.md');
  for (const [name, fallback] of allSettings()) {
    const row = configuration.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
    assert.ok(row, `${name} has a row in a configuration table`);
    const shown = fallback === '' ? '(empty)' : `\`${fallback}\``;
    assert.ok(row.includes(shown), `${name}'s row shows the default ${shown}`);
  }
});

test('the README starts with the two commands and stays short', () => {
  assert.ok(readme.split('\n').length <= 200, `README.md has ${readme.split('\n').length} lines`);
  const firstBlock = readme.slice(
    readme.indexOf('```sh'),
    readme.indexOf('```', readme.indexOf('```sh') + 5),
  );
  assert.match(firstBlock, /npm ci && npm start/);
  assert.match(firstBlock, /npm ci && npm test/);
});

test("the policy page's example is valid and shows the built-in defaults", () => {
  const section = read('docs/policy.md');
  const json = section.slice(
    section.indexOf('```json') + 7,
    section.indexOf('```', section.indexOf('```json') + 7),
  );
  const document = JSON.parse(json) as { defaults: unknown };
  const policy = compilePolicy(document, 'README');
  assert.deepEqual(
    JSON.parse(JSON.stringify(compilePolicy({ version: 'x', defaults: document.defaults }).defaults)),
    JSON.parse(JSON.stringify(DEFAULT_POLICY.defaults)),
  );
  assert.equal(policy.tenants.contoso?.limits.outboundSpamPolicies.length, 2);
});

test('every relative link in the docs resolves to a file or folder of the repository', () => {
  const broken: string[] = [];
  for (const file of filesUnder(ROOT, '.md')) {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = (match[1] as string).split('#')[0] as string;
      if (target === '' || /^(https?|mailto):/.test(target)) continue;
      // ../shared/ is the team's folder beside the checkout, not part of the repository.
      if (target.startsWith('../shared/')) continue;
      if (!existsSync(join(dirname(file), target))) broken.push(`${relative(ROOT, file)} → ${target}`);
    }
  }
  assert.deepEqual(broken, []);
});

test('every error code is documented (docs/errors.md is generated) and every documented code is used', () => {
  assert.equal(read('docs/errors.md'), errorsPage(), 'docs/errors.md is stale: run npm run docs:generate');
  const code = ['libs', 'services', 'tools', 'cli', 'test']
    .flatMap((dir) => filesUnder(join(ROOT, dir), '.ts'))
    .filter((file) => !file.endsWith('error-codes.ts'))
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
  const unused = Object.keys(ERROR_CODES).filter((c) => !code.includes(`'${c}'`));
  assert.deepEqual(unused, [], 'codes in the catalogue that nothing throws');
});
