// The Prometheus rule file parses and names only metrics the detector exports.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';

test("deploy/prometheus/ndr-alerts.yml: well-formed rules on the detector's metrics", () => {
  const file = new URL('../../../deploy/prometheus/ndr-alerts.yml', import.meta.url);
  const doc = parse(readFileSync(file, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);
  assert.ok(rules.length >= 2);
  const source = readFileSync(new URL('./index.ts', import.meta.url), 'utf8');
  for (const rule of rules) {
    assert.match(rule.alert, /^Mailpools/);
    for (const metric of rule.expr.match(/mailpools_[a-z_]+/g) ?? [])
      assert.ok(source.includes(`'${metric}'`), `${rule.alert} uses ${metric}`);
  }
});
