// The CI variant of `npm run chaos`, run as the script itself (its own process, as a user runs
// it): 10,000 events through two replicas of every service while instances are SIGKILLed, Kafka
// and Redis restart and DNS stops answering for 10 s; nothing is lost or decided twice, the limit
// counters match the offline sums, the DLQ holds exactly the poison records, consumer lag shows
// while stages fall behind, and memory stays bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runInProcessGroup } from '@mailpools/testkit';
import type { ChaosReport } from '../bench/chaos.ts';

test('chaos, short: faults on the whole pipeline lose nothing, duplicate nothing and miscount nothing', {
  timeout: 900_000,
}, async () => {
  const script = fileURLToPath(new URL('../bench/chaos.ts', import.meta.url));
  // Its own process group: should the script hang, it goes together with every service it started.
  const { child, exited } = runInProcessGroup(process.execPath, [script], {
    env: {
      ...process.env,
      CHAOS_EVENTS: '10000',
      CHAOS_POISON: '5',
      CHAOS_KILLS: '5',
      CHAOS_DNS_OUTAGE_S: '10',
      CHAOS_FEED_S: '60',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
    limitMs: 780_000,
  });
  let stdout = '';
  child.stdout?.on('data', (chunk) => {
    stdout += chunk;
  });
  const code = await exited;
  const report = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as ChaosReport;
  assert.equal(report.kills, 5);
  assert.equal(report.kills_while_routing, 5, 'every kill hit the pipeline while it was routing');
  assert.deepEqual(
    {
      lost: report.lost,
      duplicates: report.duplicates,
      counterMismatches: report.counter_mismatches,
      poisonInDlq: report.poison_in_dlq,
      unexpectedInDlq: report.unexpected_in_dlq,
      assignments: report.assignments,
    },
    { lost: 0, duplicates: 0, counterMismatches: 0, poisonInDlq: 5, unexpectedInDlq: 0, assignments: 10_000 },
  );
  // Back-pressure: stages fell behind during the faults, visibly, and no process ballooned.
  assert.ok(
    Object.values(report.max_lag_records).some((lag) => lag > 0),
    `consumer lag was visible: ${JSON.stringify(report.max_lag_records)}`,
  );
  assert.ok(report.peak_rss_mb > 0 && report.peak_rss_mb < 700, `peak RSS ${report.peak_rss_mb} MB`);
  assert.equal(code, 0, 'the chaos script passed');
});
