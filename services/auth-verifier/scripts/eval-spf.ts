// npm run eval:spf — the RFC 7208 test suite against the SPF that auth-verifier uses; prints every
// failing case and the pass rate. Last line: one JSON object.
import { progressBar } from '@mailpools/core';
import { runSpfSuite } from '../eval/spf-suite.ts';

const progress = progressBar('RFC 7208 suite', 203);
let done = 0;
const outcomes = await runSpfSuite(() => progress.update(++done));
progress.finish(outcomes.length);
const failed = outcomes.filter((o) => !o.passed);
for (const o of failed)
  console.log(
    `FAIL ${o.name} (${o.scenario}; RFC 7208 ${o.spec}): expected ${o.expected.join(' or ')}, got ${o.got}`,
  );
const passed = outcomes.length - failed.length;
console.log(`${passed}/${outcomes.length} cases pass (${((100 * passed) / outcomes.length).toFixed(1)} %)`);
console.log(
  JSON.stringify({
    spf_cases: outcomes.length,
    spf_passed: passed,
    spf_failed: failed.length,
    spf_pass_rate: Number((passed / outcomes.length).toFixed(4)),
    spf_failures: failed.map((o) => o.name),
  }),
);
