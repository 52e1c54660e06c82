// The README's configuration tables are the users' reference: keep them in step with the code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ENVIRONMENT } from '@mailpools/core';
import { compilePolicy, DEFAULT_POLICY } from '@mailpools/policy';
import { STACK_ENVIRONMENT } from '@mailpools/stack';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('every environment variable is in the README with its default', () => {
  for (const [name, fallback] of [...ENVIRONMENT, ...STACK_ENVIRONMENT]) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
    assert.ok(row, `${name} has a row in a configuration table`);
    const shown = fallback === '' ? '(empty)' : `\`${fallback}\``;
    assert.ok(row.includes(shown), `${name}'s row shows the default ${shown}`);
  }
});

test('the README starts with the two commands', () => {
  const firstBlock = readme.slice(
    readme.indexOf('```sh'),
    readme.indexOf('```', readme.indexOf('```sh') + 5),
  );
  assert.match(firstBlock, /npm ci && npm start/);
  assert.match(firstBlock, /npm ci && npm test/);
});

test("the README's tenant policy example is valid and shows the built-in defaults", () => {
  const section = readme.slice(readme.indexOf('### Tenant policy'));
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
