// `mailpools top`: a live view of the pipeline from the services' own /metrics — the numbers the
// Grafana dashboards show, over the refresh interval instead of a minute: assignments per pool
// per second, high-risk and relay share, blocked and throttled, restricted senders, NDR surges
// under way, and per stage its throughput, lag and p99 batch time, with the end-to-end p99.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadRuntimeConfig, MailpoolsError } from '@mailpools/core';
import { servicesFile } from '@mailpools/stack';

export const TOP_USAGE = `usage: mailpools top [--interval <s>] [--metrics <url,...>] [--once] [--json]
  A live view from the services' /metrics, refreshed every --interval seconds (default 2):
  assignments per pool per second, high-risk and relay share, blocked and throttled, restricted
  senders, NDR surges, per-stage records/s, lag and p99 batch time, end-to-end p99. The services
  are the ones \`mailpools start\` runs (or --metrics). --once prints one view after one
  interval; --json prints each view as one JSON object.`;

/** Samples of one scrape: metric name → series (labels as text) → value. */
export type Samples = Map<string, Map<string, number>>;

/** The Prometheus text format, enough of it: `name{labels} value` lines, comments skipped. */
export function parseMetrics(text: string, into: Samples = new Map()): Samples {
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const [, name, labels = '', value] = match as unknown as [string, string, string | undefined, string];
    const series = into.get(name) ?? new Map<string, number>();
    series.set(labels, (series.get(labels) ?? 0) + Number(value));
    into.set(name, series);
  }
  return into;
}

function label(labels: string, name: string): string | undefined {
  return new RegExp(`${name}="([^"]*)"`).exec(labels)?.[1];
}

/** The sum of a metric's series, grouped by one label ('' groups everything). */
function sumBy(
  samples: Samples,
  metric: string,
  by: string,
  where?: (labels: string) => boolean,
): Map<string, number> {
  const sums = new Map<string, number>();
  for (const [labels, value] of samples.get(metric) ?? []) {
    if (where && !where(labels)) continue;
    const key = by ? (label(labels, by) ?? '') : '';
    sums.set(key, (sums.get(key) ?? 0) + value);
  }
  return sums;
}

/** Per second between two scrapes; a counter that went down (a restart) counts from zero. */
function rates(
  before: Map<string, number>,
  after: Map<string, number>,
  seconds: number,
): Map<string, number> {
  const result = new Map<string, number>();
  for (const [key, value] of after) {
    const previous = before.get(key) ?? 0;
    result.set(key, Math.max(0, (value >= previous ? value - previous : value) / seconds));
  }
  return result;
}

/** A quantile of a histogram's observations between two scrapes, as Prometheus's histogram_quantile. */
function quantile(
  before: Samples,
  after: Samples,
  metric: string,
  q: number,
  where?: (labels: string) => boolean,
): number | null {
  const bucket = (samples: Samples) => {
    const byLe = new Map<number, number>();
    for (const [labels, value] of samples.get(`${metric}_bucket`) ?? []) {
      if (where && !where(labels)) continue;
      const le = label(labels, 'le');
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
      byLe.set(bound, (byLe.get(bound) ?? 0) + value);
    }
    return byLe;
  };
  const a = bucket(before);
  const b = bucket(after);
  const bounds = [...b.keys()].sort((x, y) => x - y);
  const counts = bounds.map((bound) => Math.max(0, (b.get(bound) ?? 0) - (a.get(bound) ?? 0)));
  const total = counts[counts.length - 1] ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [i, bound] of bounds.entries()) {
    const count = counts[i] as number;
    if (count >= rank) {
      if (bound === Number.POSITIVE_INFINITY) return lower;
      return lower + ((bound - lower) * (rank - below)) / Math.max(count - below, 1e-9);
    }
    lower = bound;
    below = count;
  }
  return lower;
}

export interface View {
  readonly seconds: number;
  /** Assignments per second by pool (NORMAL, HIGH_RISK, RELAY, BLOCKED). */
  readonly poolsPerSecond: Record<string, number>;
  readonly highRiskShare: number | null;
  readonly relayShare: number | null;
  readonly throttledPerSecond: number;
  readonly restrictedSenders: number | null;
  readonly activeSurges: number | null;
  readonly stages: Record<
    string,
    { recordsPerSecond: number; lag: number; batchP99Ms: number | null; ready: string }
  >;
  readonly endToEndP99Seconds: number | null;
}

const POOL_ORDER = ['NORMAL', 'HIGH_RISK', 'RELAY', 'BLOCKED'];

/** What two scrapes, `seconds` apart, say. Pure: tested without services. */
export function viewOf(before: Samples, after: Samples, seconds: number): View {
  const assigned = rates(
    sumBy(before, 'mailpools_router_assignments_total', 'pool'),
    sumBy(after, 'mailpools_router_assignments_total', 'pool'),
    seconds,
  );
  const poolsPerSecond = Object.fromEntries(POOL_ORDER.map((pool) => [pool, assigned.get(pool) ?? 0]));
  const total = Object.values(poolsPerSecond).reduce((s, v) => s + v, 0);
  const throttled = (labels: string) => label(labels, 'decision') === 'THROTTLE';
  const gauge = (metric: string) => {
    const values = [...(after.get(metric) ?? new Map()).values()];
    // Shared state read by every replica: take the largest, as the dashboards do (max, not sum).
    return values.length === 0 ? null : Math.max(...values);
  };
  const processed = rates(
    sumBy(before, 'mailpools_stage_records_processed_total', 'stage'),
    sumBy(after, 'mailpools_stage_records_processed_total', 'stage'),
    seconds,
  );
  const lag = sumBy(after, 'mailpools_stage_consumer_lag_records', 'stage');
  const ready = sumBy(after, 'mailpools_stage_ready', 'stage');
  const instances = new Map<string, number>();
  for (const labels of (after.get('mailpools_stage_ready') ?? new Map()).keys()) {
    const stage = label(labels, 'stage') ?? '';
    instances.set(stage, (instances.get(stage) ?? 0) + 1);
  }
  const stages: View['stages'] = {};
  for (const stage of [...new Set([...processed.keys(), ...ready.keys()])]) {
    const p99 = quantile(
      before,
      after,
      'mailpools_stage_batch_duration_seconds',
      0.99,
      (l) => label(l, 'stage') === stage,
    );
    stages[stage] = {
      recordsPerSecond: processed.get(stage) ?? 0,
      lag: lag.get(stage) ?? 0,
      batchP99Ms: p99 === null ? null : p99 * 1000,
      ready: `${ready.get(stage) ?? 0}/${instances.get(stage) ?? 0}`,
    };
  }
  return {
    seconds,
    poolsPerSecond,
    highRiskShare: total > 0 ? (poolsPerSecond.HIGH_RISK ?? 0) / total : null,
    relayShare: total > 0 ? (poolsPerSecond.RELAY ?? 0) / total : null,
    throttledPerSecond:
      rates(
        sumBy(before, 'mailpools_limits_decisions_total', '', throttled),
        sumBy(after, 'mailpools_limits_decisions_total', '', throttled),
        seconds,
      ).get('') ?? 0,
    restrictedSenders: gauge('mailpools_limits_restricted_senders'),
    activeSurges: gauge('mailpools_ndr_active_surges'),
    stages,
    endToEndP99Seconds: quantile(before, after, 'mailpools_router_event_age_seconds', 0.99),
  };
}

const num = (v: number, digits = 1) => v.toFixed(digits).padStart(8);
const share = (v: number | null) => (v === null ? '       -' : `${(v * 100).toFixed(1).padStart(6)} %`);

export function renderView(view: View, title: string): string[] {
  const lines = [title, '', 'pool          per s     share'];
  const total = Object.values(view.poolsPerSecond).reduce((s, v) => s + v, 0);
  for (const [pool, perSecond] of Object.entries(view.poolsPerSecond))
    lines.push(`  ${pool.padEnd(10)}${num(perSecond)}  ${share(total > 0 ? perSecond / total : null)}`);
  lines.push(
    `  ${'all'.padEnd(10)}${num(total)}`,
    '',
    `high-risk share ${share(view.highRiskShare).trim()}   relay share ${share(view.relayShare).trim()}   throttled ${view.throttledPerSecond.toFixed(1)}/s`,
    `restricted senders ${view.restrictedSenders ?? '-'}   NDR surges under way ${view.activeSurges ?? '-'}`,
    '',
    'stage                  records/s      lag   batch p99 ms   ready',
  );
  for (const [stage, s] of Object.entries(view.stages))
    lines.push(
      `  ${stage.padEnd(20)}${num(s.recordsPerSecond)}  ${String(s.lag).padStart(7)}  ${(s.batchP99Ms === null ? '-' : s.batchP99Ms.toFixed(1)).padStart(13)}   ${s.ready}`,
    );
  lines.push(
    '',
    `end to end (event time → routed) p99: ${view.endToEndP99Seconds === null ? '-' : `${view.endToEndP99Seconds.toFixed(2)} s`}`,
  );
  return lines;
}

function metricsUrls(given: string | undefined, namespace: string): string[] {
  if (given)
    return given
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean);
  const file = servicesFile(namespace);
  if (!existsSync(file))
    throw new MailpoolsError(
      'MAILPOOLS_ERR_USAGE',
      'No running `mailpools start` found for this namespace, and no --metrics given.',
      {
        hint: `Run \`mailpools start\` (it notes its services in ${file}), or give --metrics http://host:port/metrics,...`,
      },
    );
  return (JSON.parse(readFileSync(file, 'utf8')) as { metrics: string }[]).map((s) => s.metrics);
}

async function scrape(urls: readonly string[]): Promise<Samples> {
  const samples: Samples = new Map();
  await Promise.all(
    urls.map(async (url) => {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(1_500) });
        if (response.ok) parseMetrics(await response.text(), samples);
      } catch {
        // a service that does not answer shows as not ready
      }
    }),
  );
  return samples;
}

export async function runTop(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      interval: { type: 'string', default: '2' },
      metrics: { type: 'string' },
      once: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const interval = Number(values.interval);
  if (!(interval >= 0.2 && interval <= 60))
    throw new MailpoolsError(
      'MAILPOOLS_ERR_USAGE',
      `--interval must be from 0.2 to 60 seconds, got "${values.interval}".`,
      {
        hint: TOP_USAGE,
      },
    );
  const config = loadRuntimeConfig();
  const urls = metricsUrls(values.metrics, config.namespace);
  const live = process.stdout.isTTY === true && !values.json && !values.once;
  let stop = false;
  const quit = () => {
    stop = true;
  };
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
  let before = await scrape(urls);
  let at = performance.now();
  while (!stop) {
    await new Promise((r) => setTimeout(r, interval * 1000));
    const after = await scrape(urls);
    const now = performance.now();
    const view = viewOf(before, after, (now - at) / 1000);
    before = after;
    at = now;
    if (values.json) log(JSON.stringify(view));
    else {
      const title = `mailpools top — ${config.namespace.replace(/\.$/, '') || 'default namespace'} — ${new Date().toISOString().slice(11, 19)} UTC, every ${interval} s${live ? ' (Ctrl-C quits)' : ''}`;
      // On a terminal the view redraws in place; elsewhere each view follows the last.
      if (live) process.stdout.write('\u001b[H\u001b[2J');
      for (const line of renderView(view, title)) log(line);
      if (!live) log('');
    }
    if (values.once) break;
  }
  return 0;
}
