import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMetrics, renderView, viewOf } from './top.ts';

const scrape = (routed: number, high: number, processed: number, buckets: [string, number][]) =>
  parseMetrics(
    [
      '# HELP mailpools_router_assignments_total x',
      `mailpools_router_assignments_total{pool="NORMAL",rule="none",tenant="other",tenant_class="small"} ${routed}`,
      `mailpools_router_assignments_total{pool="HIGH_RISK",rule="spam",tenant="other",tenant_class="small"} ${high}`,
      `mailpools_limits_decisions_total{decision="THROTTLE",limit="messageRate"} ${high / 2}`,
      'mailpools_limits_restricted_senders 3',
      'mailpools_ndr_active_surges 1',
      `mailpools_stage_records_processed_total{stage="pool-router"} ${processed}`,
      'mailpools_stage_consumer_lag_records{stage="pool-router",partition="0"} 7',
      'mailpools_stage_ready{stage="pool-router"} 1',
      ...buckets.map(
        ([le, n]) => `mailpools_stage_batch_duration_seconds_bucket{stage="pool-router",le="${le}"} ${n}`,
      ),
    ].join('\n'),
  );

test('top: rates per pool and shares from two scrapes, as the dashboards compute them', () => {
  const before = scrape(100, 10, 110, [
    ['0.01', 10],
    ['0.1', 20],
    ['+Inf', 20],
  ]);
  const after = scrape(140, 20, 160, [
    ['0.01', 10],
    ['0.1', 120],
    ['+Inf', 120],
  ]);
  const view = viewOf(before, after, 2);
  assert.equal(view.poolsPerSecond.NORMAL, 20);
  assert.equal(view.poolsPerSecond.HIGH_RISK, 5);
  assert.equal(view.highRiskShare, 0.2);
  assert.equal(view.throttledPerSecond, 2.5);
  assert.equal(view.restrictedSenders, 3);
  assert.equal(view.activeSurges, 1);
  const router = view.stages['pool-router'];
  assert.equal(router?.recordsPerSecond, 25);
  assert.equal(router?.lag, 7);
  // 100 batches between the scrapes, all in (0.01, 0.1]: p99 interpolates to 0.0991 s.
  assert.ok(Math.abs((router?.batchP99Ms ?? 0) - 99.1) < 0.01, String(router?.batchP99Ms));
  const text = renderView(view, 'title').join('\n');
  assert.match(text, /NORMAL +20\.0 +80\.0 %/);
  assert.match(text, /restricted senders 3 +NDR surges under way 1/);
});

test('top: a restarted service (a counter that went down) counts from zero, not negative', () => {
  const view = viewOf(scrape(500, 0, 500, []), scrape(10, 0, 10, []), 1);
  assert.equal(view.poolsPerSecond.NORMAL, 10);
});
