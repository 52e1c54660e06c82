// The Grafana dashboards, written as code: each panel is a title, what it means, and its PromQL.
// `npm run dashboards:generate` writes them to deploy/grafana/dashboards/*.json, which Grafana
// loads through deploy/grafana/provisioning; test/dashboards.test.ts checks that the files are in
// step with this module and that every panel query returns data from a real Prometheus.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The provisioned Prometheus data source (deploy/grafana/provisioning/datasources/prometheus.yml). */
export const DATASOURCE_UID = 'mailpools-prometheus';

interface PanelSpec {
  readonly title: string;
  /** What the panel means, shown as its tooltip in Grafana and listed in the README. */
  readonly description: string;
  readonly type: 'timeseries' | 'stat';
  /** Query → legend. */
  readonly queries: Readonly<Record<string, string>>;
  readonly unit: string;
  readonly width?: number;
}

interface DashboardSpec {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly tenantVariable?: boolean;
  readonly panels: readonly PanelSpec[];
}

const ASSIGNED = 'mailpools_router_assignments_total';
const RATE = '$__rate_interval';

/** Share of assignments (matching `filter`) that went to `pool`; 0 rather than no data when none did. */
function poolShare(pool: string, filter = ''): string {
  const extra = filter ? `, ${filter}` : '';
  const all = filter ? `{${filter}}` : '';
  return `(sum(rate(${ASSIGNED}{pool="${pool}"${extra}}[${RATE}])) or vector(0)) / sum(rate(${ASSIGNED}${all}[${RATE}]))`;
}

/** Per-stage counter rate that shows 0 for every running stage instead of "no data" before the first event. */
function perStageRate(metric: string): string {
  return `sum by (stage) (rate(${metric}[${RATE}])) or sum by (stage) (mailpools_stage_ready) * 0`;
}

function quantiles(metric: string, by: string): Record<string, string> {
  const group = by ? `${by}, le` : 'le';
  const legend = by ? `{{${by}}} ` : '';
  return {
    [`histogram_quantile(0.5, sum by (${group}) (rate(${metric}_bucket[${RATE}])))`]: `${legend}p50`,
    [`histogram_quantile(0.99, sum by (${group}) (rate(${metric}_bucket[${RATE}])))`]: `${legend}p99`,
  };
}

export const DASHBOARDS: readonly DashboardSpec[] = [
  {
    uid: 'mailpools-overview',
    title: 'mailpools / Overview',
    description: 'Where outbound mail leaves through, who is blocked, and bounces.',
    panels: [
      {
        title: 'Assignments per pool',
        description: 'Messages routed per second, by pool (NORMAL, HIGH_RISK, RELAY, BLOCKED).',
        type: 'timeseries',
        queries: { [`sum by (pool) (rate(${ASSIGNED}[${RATE}]))`]: '{{pool}}' },
        unit: 'reqps',
        width: 12,
      },
      {
        title: 'Why mail left the normal pool',
        description: 'Messages per second by the routing rule that decided, good mail (rule none) left out.',
        type: 'timeseries',
        queries: { [`sum by (rule) (rate(${ASSIGNED}{rule!="none"}[${RATE}]))`]: '{{rule}}' },
        unit: 'reqps',
        width: 12,
      },
      {
        title: 'High-risk share',
        description:
          'Share of messages sent through the high-risk pool: spam, NDRs, sender domains without A or MX.',
        type: 'stat',
        queries: { [poolShare('HIGH_RISK')]: 'high-risk' },
        unit: 'percentunit',
      },
      {
        title: 'Relay share',
        description:
          'Share of messages sent through the relay pool: forwarded or relayed mail nobody vouched for.',
        type: 'stat',
        queries: { [poolShare('RELAY')]: 'relay' },
        unit: 'percentunit',
      },
      {
        title: 'Blocked messages per minute',
        description: 'Messages not sent at all (restricted senders, over a hard limit).',
        type: 'stat',
        queries: { [`(sum(rate(${ASSIGNED}{pool="BLOCKED"}[${RATE}])) or vector(0)) * 60`]: 'blocked' },
        unit: 'none',
      },
      {
        title: 'Restricted senders',
        description:
          'Senders restricted now (blocked for the day or until an admin releases them: `mailpools restricted list`).',
        type: 'stat',
        queries: { 'max(mailpools_limits_restricted_senders)': 'restricted' },
        unit: 'none',
      },
      {
        title: 'Senders restricted, by limit',
        description: 'New restrictions per hour, by the limit the sender went over.',
        type: 'timeseries',
        queries: {
          [`sum by (limit) (rate(mailpools_limits_restrictions_total[${RATE}])) * 3600 or vector(0)`]:
            '{{limit}}',
        },
        unit: 'none',
        width: 8,
      },
      {
        title: 'NDRs per minute, by tenant class',
        description:
          'Non-delivery reports per minute, platform-wide and by tenant size (small, medium, large).',
        type: 'timeseries',
        queries: {
          [`sum(rate(mailpools_ndr_total[${RATE}])) * 60 or vector(0)`]: 'platform',
          [`sum by (tenant_class) (rate(mailpools_ndr_total[${RATE}])) * 60`]: '{{tenant_class}}',
        },
        unit: 'none',
        width: 8,
      },
      {
        title: 'Active NDR surges',
        description:
          'Bounce surges under way (tenants and the platform); mail.ndr.surges says which tenant and the likely cause.',
        type: 'stat',
        queries: { 'max(mailpools_ndr_active_surges)': 'surges' },
        unit: 'none',
        width: 4,
      },
      {
        title: 'NDR surges started, by cause',
        description: 'Surges started over the dashboard range, by likely cause.',
        type: 'stat',
        queries: {
          'sum by (cause) (increase(mailpools_ndr_surge_alerts_total{phase="STARTED"}[$__range])) or vector(0)':
            '{{cause}}',
        },
        unit: 'none',
        width: 4,
      },
      {
        title: 'Spam verdicts',
        description: 'Messages per second by spam label (HAM, SUSPICIOUS, SPAM).',
        type: 'timeseries',
        queries: { [`sum by (label) (rate(mailpools_spam_verdicts_total[${RATE}]))`]: '{{label}}' },
        unit: 'reqps',
        width: 12,
      },
      {
        title: 'Authentication results',
        description: 'Results per second of SPF, DMARC, ARC and the sender-domain DKIM check.',
        type: 'timeseries',
        queries: {
          [`sum by (check, result) (rate(mailpools_auth_results_total[${RATE}]))`]: '{{check}} {{result}}',
        },
        unit: 'reqps',
        width: 12,
      },
    ],
  },
  {
    uid: 'mailpools-pipeline',
    title: 'mailpools / Pipeline health',
    description: 'Throughput, latency, lag and errors of every stage.',
    panels: [
      {
        title: 'Throughput per stage',
        description: 'Input records each stage finished per second (produced and committed).',
        type: 'timeseries',
        queries: { [`sum by (stage) (rate(mailpools_stage_records_processed_total[${RATE}]))`]: '{{stage}}' },
        unit: 'reqps',
        width: 12,
      },
      {
        title: 'Consumer lag per group',
        description:
          "Records behind the end of each stage's input topic (a stage's consumer group is its name). Growing lag: the stage falls behind.",
        type: 'timeseries',
        queries: { 'sum by (stage) (mailpools_stage_consumer_lag_records)': '{{stage}}' },
        unit: 'none',
        width: 12,
      },
      {
        title: 'Batch latency per stage',
        description: 'From receiving a batch to having produced and committed it, p50 and p99.',
        type: 'timeseries',
        queries: quantiles('mailpools_stage_batch_duration_seconds', 'stage'),
        unit: 's',
        width: 12,
      },
      {
        title: 'End-to-end latency',
        description:
          "From the event's own time (submission) to its pool assignment, p50 and p99. A replay shows the replayed events' age.",
        type: 'timeseries',
        queries: quantiles('mailpools_router_event_age_seconds', ''),
        unit: 's',
        width: 12,
      },
      {
        title: 'Dead-lettered records',
        description: 'Poison records sent to <topic>.dlq per second; the dead-letter record says why.',
        type: 'timeseries',
        queries: { [perStageRate('mailpools_stage_records_dead_lettered_total')]: '{{stage}}' },
        unit: 'reqps',
        width: 8,
      },
      {
        title: 'Transient failures',
        description:
          'Broker, registry, Redis or DNS failures per second that paused a partition and were retried.',
        type: 'timeseries',
        queries: { [perStageRate('mailpools_stage_transient_failures_total')]: '{{stage}}' },
        unit: 'reqps',
        width: 8,
      },
      {
        title: 'Instances up',
        description: 'Instances of each service Prometheus reaches; 0 for a service means the stage is down.',
        type: 'timeseries',
        queries: { 'sum by (service) (up{job="mailpools"})': '{{service}}' },
        unit: 'none',
        width: 8,
      },
      {
        title: 'Assigned partitions',
        description:
          'Input partitions each stage holds across its replicas (all of them when the group is healthy).',
        type: 'timeseries',
        queries: { 'sum by (stage) (mailpools_stage_assigned_partitions)': '{{stage}}' },
        unit: 'none',
        width: 8,
      },
      {
        title: 'DNS lookups by source',
        description:
          'Lookups per second answered by the in-process cache, Redis, the network, or failed for now.',
        type: 'timeseries',
        queries: { [`sum by (source) (rate(mailpools_dns_lookups_total[${RATE}]))`]: '{{source}}' },
        unit: 'reqps',
        width: 8,
      },
      {
        title: 'Limit counter: Redis round trips per batch',
        description: 'The limit counter makes one Redis call per batch; more means batches are split.',
        type: 'stat',
        queries: {
          [`sum(rate(mailpools_limits_redis_round_trips_total[${RATE}])) / sum(rate(mailpools_stage_batch_records_count{stage="limit-counter"}[${RATE}]))`]:
            'round trips',
        },
        unit: 'none',
        width: 8,
      },
      {
        title: 'CPU per service',
        description: 'CPU seconds per second used by all instances of each service.',
        type: 'timeseries',
        queries: { [`sum by (service) (rate(mailpools_process_cpu_seconds_total[${RATE}]))`]: '{{service}}' },
        unit: 'percentunit',
        width: 12,
      },
      {
        title: 'Memory per service',
        description: 'Resident memory of all instances of each service.',
        type: 'timeseries',
        queries: { 'sum by (service) (mailpools_process_resident_memory_bytes)': '{{service}}' },
        unit: 'bytes',
        width: 12,
      },
    ],
  },
  {
    uid: 'mailpools-tenant',
    title: 'mailpools / Tenant',
    description:
      'One tenant: its pools, why, its bounces and restrictions. Tenants listed in the policy file have their own series; the rest are "other".',
    tenantVariable: true,
    panels: [
      {
        title: 'Tenant assignments per pool',
        description: "The tenant's messages routed per second, by pool.",
        type: 'timeseries',
        queries: { [`sum by (pool) (rate(${ASSIGNED}{tenant="$tenant"}[${RATE}]))`]: '{{pool}}' },
        unit: 'reqps',
        width: 12,
      },
      {
        title: 'Tenant rules that decided',
        description: "The tenant's messages per second by the routing rule that decided (none: good mail).",
        type: 'timeseries',
        queries: { [`sum by (rule) (rate(${ASSIGNED}{tenant="$tenant"}[${RATE}]))`]: '{{rule}}' },
        unit: 'reqps',
        width: 12,
      },
      {
        title: 'Tenant high-risk share',
        description: "Share of the tenant's messages sent through the high-risk pool.",
        type: 'stat',
        queries: { [poolShare('HIGH_RISK', 'tenant="$tenant"')]: 'high-risk' },
        unit: 'percentunit',
        width: 6,
      },
      {
        title: 'Tenant relay share',
        description: "Share of the tenant's messages sent through the relay pool.",
        type: 'stat',
        queries: { [poolShare('RELAY', 'tenant="$tenant"')]: 'relay' },
        unit: 'percentunit',
        width: 6,
      },
      {
        title: 'Tenant NDRs per minute',
        description: "Non-delivery reports per minute for the tenant's mail.",
        type: 'timeseries',
        queries: { [`sum(rate(mailpools_ndr_total{tenant="$tenant"}[${RATE}])) * 60 or vector(0)`]: 'NDRs' },
        unit: 'none',
        width: 6,
      },
      {
        title: 'Tenant senders restricted',
        description: "The tenant's senders restricted over the dashboard range, by limit.",
        type: 'stat',
        queries: {
          'sum by (limit) (increase(mailpools_limits_restrictions_total{tenant="$tenant"}[$__range])) or vector(0)':
            '{{limit}}',
        },
        unit: 'none',
        width: 6,
      },
    ],
  },
];

/** Grafana's JSON model of a dashboard (schema version 39, Grafana 11). */
export function dashboardJson(spec: DashboardSpec): Record<string, unknown> {
  const datasource = { type: 'prometheus', uid: DATASOURCE_UID };
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const panels = spec.panels.map((panel, index) => {
    const w = panel.width ?? 6;
    const h = panel.type === 'stat' ? 5 : 8;
    if (x + w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const gridPos = { x, y, w, h };
    x += w;
    rowHeight = Math.max(rowHeight, h);
    return {
      id: index + 1,
      type: panel.type,
      title: panel.title,
      description: panel.description,
      datasource,
      gridPos,
      fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
      options:
        panel.type === 'stat'
          ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value' }
          : { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
      targets: Object.entries(panel.queries).map(([expr, legendFormat], i) => ({
        refId: String.fromCharCode(65 + i),
        datasource,
        expr,
        legendFormat,
      })),
    };
  });
  const tenant = {
    name: 'tenant',
    label: 'Tenant',
    type: 'query',
    datasource,
    query: { query: `label_values(${ASSIGNED}, tenant)`, refId: 'tenants' },
    definition: `label_values(${ASSIGNED}, tenant)`,
    refresh: 2,
    sort: 1,
  };
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: ['mailpools'],
    timezone: 'utc',
    schemaVersion: 39,
    version: 1,
    editable: false,
    refresh: '30s',
    time: { from: 'now-3h', to: 'now' },
    templating: { list: spec.tenantVariable ? [tenant] : [] },
    annotations: { list: [] },
    panels,
  };
}

/** The file each dashboard is provisioned from. */
export function dashboardFile(spec: DashboardSpec): URL {
  return new URL(`./dashboards/${spec.uid.replace(/^mailpools-/, '')}.json`, import.meta.url);
}

export function renderDashboard(spec: DashboardSpec): string {
  return `${JSON.stringify(dashboardJson(spec), null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const spec of DASHBOARDS) {
    writeFileSync(dashboardFile(spec), renderDashboard(spec));
    console.log(`wrote ${fileURLToPath(dashboardFile(spec))}`);
  }
}
