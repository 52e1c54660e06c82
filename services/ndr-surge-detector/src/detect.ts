// ndr-surge-detector's logic. NDRs are counted per scope (a tenant, and "*" for the platform) in
// event-time minutes. A scope surges when the NDRs of the last few minutes are far above its
// baseline — the median count of the same hour of day over the previous days, so the daily rhythm
// is learnt and one bad day does not move it — and ends when a longer window is back near it.
// One alert per surge: STARTED, UPDATED (when the likely cause changes, or every few minutes with
// new figures), ENDED, all with one alertId. The cause is named from the bounces themselves.
import { createHash } from 'node:crypto';
import { DEFAULT_POLICY, type NdrSurgePolicy, type Policy, tenantPolicy } from '@mailpools/policy';
import type { NdrSurgeAlert, PoolAssignment, SurgeCause } from '@mailpools/schemas';

export const PLATFORM = '*';
const MINUTE = 60_000;
const HOUR = 3_600_000;

/** One NDR as the detector reads it (from the router's PoolAssignment). */
export interface NdrFact {
  readonly id: string;
  readonly tenantId: string;
  readonly at: number;
  readonly status: string;
  readonly finalRecipient: string;
  readonly originalKnown: boolean;
  readonly originalSender: string | null;
  /** Connector or IP the bounced message came in through. */
  readonly originalSource: string | null;
}

/** What a window of minutes of one scope holds. */
export interface WindowStats {
  total: number;
  unknownOriginal: number;
  unknownUser: number;
  policyReject: number;
  distinctRecipients: number;
  /** Counts by original sender, source, and recipient domain (the top few suffice). */
  senders: Map<string, number>;
  sources: Map<string, number>;
  recipientDomains: Map<string, number>;
}

export interface SurgeState {
  readonly alertId: string;
  readonly startedAt: number;
  readonly cause: SurgeCause;
  readonly lastUpdateAt: number;
  readonly peak: number;
}

/** Where the counts and surge states live: in memory (one process), or Redis (shared by replicas). */
export interface NdrStore {
  /** Adds facts not added before (by id); returns those that were new. */
  add(facts: readonly NdrFact[]): Promise<NdrFact[]>;
  window(scope: string, fromMinute: number, toMinute: number): Promise<WindowStats>;
  /** NDRs of the scope in each of these hours (epoch hour numbers), and when its first NDR was counted. */
  hourCounts(
    scope: string,
    hours: readonly number[],
  ): Promise<{ first: number | undefined; counts: number[] }>;
  surge(scope: string): Promise<SurgeState | undefined>;
  /** Sets the surge state if it is still `expected` (compare-and-set): one replica wins each transition. */
  transition(scope: string, expected: SurgeState | undefined, next: SurgeState | undefined): Promise<boolean>;
  activeScopes(): Promise<string[]>;
}

export function emptyWindow(): WindowStats {
  return {
    total: 0,
    unknownOriginal: 0,
    unknownUser: 0,
    policyReject: 0,
    distinctRecipients: 0,
    senders: new Map(),
    sources: new Map(),
    recipientDomains: new Map(),
  };
}

/** P(X ≥ k) for X ~ Poisson(mu), summed in log space. */
export function poissonTail(k: number, mu: number): number {
  if (k <= 0) return 1;
  if (mu <= 0) return 0;
  let logTerm = -mu + k * Math.log(mu);
  for (let i = 2; i <= k; i++) logTerm -= Math.log(i);
  let sum = 0;
  for (let j = k; j < k + 1_000; j++) {
    const term = Math.exp(logTerm);
    sum += term;
    if (term < sum * 1e-12) break;
    logTerm += Math.log(mu) - Math.log(j + 1);
  }
  return Math.min(1, sum);
}

function topShare(counts: Map<string, number>, total: number, top = 1): number {
  if (total === 0) return 0;
  return (
    [...counts.values()]
      .sort((a, b) => b - a)
      .slice(0, top)
      .reduce((sum, n) => sum + n, 0) / total
  );
}

const percent = (share: number) => `${Math.round(share * 100)} %`;

/** The likely cause of a surge, with the figures that named it. */
export function likelyCause(w: WindowStats): { cause: SurgeCause; evidence: Record<string, string> } {
  const share = (n: number) => (w.total === 0 ? 0 : n / w.total);
  const evidence: Record<string, string> = {
    ndrs: String(w.total),
    unknownOriginalShare: percent(share(w.unknownOriginal)),
    unknownUserShare: percent(share(w.unknownUser)),
    policyRejectShare: percent(share(w.policyReject)),
    distinctRecipients: String(w.distinctRecipients),
    topRecipientDomainShare: percent(topShare(w.recipientDomains, w.total)),
    topSourceShare: percent(topShare(w.sources, w.total)),
    topThreeSendersShare: percent(topShare(w.senders, w.total, 3)),
  };
  // A harvest probes one domain's addresses: unknown users, nearly every recipient different.
  if (
    share(w.unknownUser) >= 0.6 &&
    w.distinctRecipients >= 0.7 * w.total &&
    topShare(w.recipientDomains, w.total) >= 0.7
  )
    return { cause: 'DIRECTORY_HARVEST', evidence };
  // Backscatter: bounces of messages the platform never sent (the sender was forged).
  if (share(w.unknownOriginal) >= 0.6) return { cause: 'SPOOFING', evidence };
  // One connector or IP behind most of the bounced mail: a compromised or misconfigured server.
  if (topShare(w.sources, w.total) >= 0.6) return { cause: 'ROGUE_SERVER', evidence };
  // A few submitters whose mail remote servers refuse as spam.
  if (topShare(w.senders, w.total, 3) >= 0.5 && share(w.policyReject) >= 0.3)
    return { cause: 'SPAM_ATTACK', evidence };
  return { cause: 'UNKNOWN', evidence };
}

/** Expected NDRs per minute at `atMs`: the median of the same hour of day over the previous days. */
export async function baselinePerMinute(
  store: NdrStore,
  scope: string,
  atMs: number,
  settings: NdrSurgePolicy,
): Promise<number> {
  const hour = Math.floor(atMs / HOUR);
  const days = Array.from({ length: settings.baselineDays }, (_, k) => hour - 24 * (k + 1));
  const { first, counts } = await store.hourCounts(scope, days);
  if (first === undefined) return Number.POSITIVE_INFINITY;
  // Only hours the scope was seen for from their beginning: a partly watched hour would read low.
  const whole = counts.filter((_, i) => (days[i] as number) * HOUR >= first).sort((a, b) => a - b);
  if (whole.length > 0) {
    const mid = whole.length >> 1;
    const median =
      whole.length % 2 ? (whole[mid] as number) : ((whole[mid - 1] as number) + (whole[mid] as number)) / 2;
    return Math.max(settings.floorPerMinute, median / 60);
  }
  // Less than a day of history: learning. No alert in the first hour; then twice the mean so far
  // (the first, partly watched hour included), which leaves room for the daily rhythm the scope
  // has not shown yet.
  if (atMs - first < HOUR) return Number.POSITIVE_INFINITY;
  const firstHour = Math.floor(first / HOUR);
  const sinceFirst = await store.hourCounts(
    scope,
    Array.from({ length: hour - firstHour + 1 }, (_, i) => firstHour + i),
  );
  const total = sinceFirst.counts.reduce((sum, n) => sum + n, 0);
  return Math.max(settings.floorPerMinute, (2 * total) / ((atMs - first) / MINUTE));
}

function alertOf(
  now: number,
  scope: string,
  phase: NdrSurgeAlert['phase'],
  state: SurgeState,
  window: { start: number; end: number; stats: WindowStats; expected: number },
  evidence: Record<string, string>,
): NdrSurgeAlert {
  return {
    alertId: state.alertId,
    phase,
    scope: scope === PLATFORM ? 'PLATFORM' : 'TENANT',
    tenantId: scope === PLATFORM ? null : scope,
    windowStart: window.start,
    windowEnd: window.end,
    ndrCount: window.stats.total,
    baseline: Number(window.expected.toFixed(3)),
    ratio: Number((window.stats.total / Math.max(window.expected, 1e-9)).toFixed(2)),
    likelyCause: state.cause,
    evidence,
    eventTime: now,
  };
}

/** Looks at one scope at event time `now` (ms) and returns the alert its surge state change calls for, if any. */
export async function evaluate(
  store: NdrStore,
  scope: string,
  now: number,
  settings: NdrSurgePolicy = DEFAULT_POLICY.defaults.ndr,
): Promise<NdrSurgeAlert | undefined> {
  const current = await store.surge(scope);
  const thisMinute = Math.floor(now / MINUTE);
  const lastMinute = thisMinute - 1; // the last complete minute
  const perMinute = await baselinePerMinute(store, scope, now, settings);
  if (!current) {
    // Start windows end now: whole minutes plus the minute under way, so a surge is seen as it
    // builds, not only when a minute completes; the baseline is scaled to the time covered.
    const partial = (now - thisMinute * MINUTE) / MINUTE;
    for (const minutes of settings.startWindowsMinutes) {
      const from = thisMinute - minutes;
      const stats = await store.window(scope, from, thisMinute);
      const expected = perMinute * (minutes + partial);
      if (
        stats.total < settings.startMinimum ||
        stats.total < settings.startFactor * expected ||
        poissonTail(stats.total, expected) > settings.startProbability
      )
        continue;
      const { cause, evidence } = likelyCause(stats);
      const alertId = createHash('sha256').update(`${scope}|${from}`).digest('hex').slice(0, 16);
      const next: SurgeState = {
        alertId,
        startedAt: from * MINUTE,
        cause,
        lastUpdateAt: now,
        peak: stats.total,
      };
      if (!(await store.transition(scope, undefined, next))) return undefined;
      return alertOf(
        now,
        scope,
        'STARTED',
        next,
        { start: from * MINUTE, end: now, stats, expected },
        evidence,
      );
    }
    return undefined;
  }
  const from = lastMinute - settings.endWindowMinutes + 1;
  const stats = await store.window(scope, from, lastMinute);
  const expected = perMinute * settings.endWindowMinutes;
  const window = { start: from * MINUTE, end: (lastMinute + 1) * MINUTE, stats, expected };
  const oldEnough = now - current.startedAt >= 2 * settings.endWindowMinutes * MINUTE;
  if (oldEnough && stats.total < settings.endFactor * expected + settings.startMinimum / 2) {
    if (!(await store.transition(scope, current, undefined))) return undefined;
    return alertOf(now, scope, 'ENDED', current, window, likelyCause(stats).evidence);
  }
  // Name the cause from the whole surge so far, not the last minutes alone.
  const sinceStart = await store.window(scope, Math.floor(current.startedAt / MINUTE), lastMinute);
  const { cause, evidence } = likelyCause(sinceStart);
  const due = now - current.lastUpdateAt >= settings.updateEveryMinutes * MINUTE;
  if (cause === current.cause && !due) return undefined;
  const next: SurgeState = {
    ...current,
    cause,
    lastUpdateAt: now,
    peak: Math.max(current.peak, stats.total),
  };
  if (!(await store.transition(scope, current, next))) return undefined;
  return alertOf(now, scope, 'UPDATED', next, window, evidence);
}

/** The scopes one fact counts in: its tenant and the platform. */
export function scopesOf(fact: NdrFact): string[] {
  return [fact.tenantId, PLATFORM];
}

/** The NDR an assignment carries, as the detector reads it; undefined for other mail. */
export function factOf(assignment: PoolAssignment): NdrFact | undefined {
  const ndr = assignment.ndr;
  if (!ndr) return undefined;
  return {
    id: assignment.messageId,
    tenantId: assignment.tenantId,
    at: assignment.eventTime,
    status: ndr.status,
    finalRecipient: ndr.finalRecipient,
    originalKnown: ndr.originalKnown,
    originalSender: ndr.originalSender,
    originalSource: ndr.originalSource,
  };
}

export interface BatchResult {
  /** NDRs counted for the first time (a replayed one is not). */
  readonly counted: readonly NdrFact[];
  readonly alerts: readonly NdrSurgeAlert[];
  /** Surges under way after this batch. */
  readonly active: number;
}

/**
 * A batch of assignments: its NDRs counted, then every scope they touch and every surge under
 * way looked at as of the batch's latest event time, under the policy's thresholds (a tenant's
 * own, `defaults` for the platform).
 */
export async function detectBatch(
  assignments: readonly PoolAssignment[],
  store: NdrStore,
  policy: () => Policy,
): Promise<BatchResult> {
  const facts = assignments.map(factOf).filter((f): f is NdrFact => f !== undefined);
  const counted = await store.add(facts);
  const now = Math.max(...assignments.map((a) => a.eventTime));
  const active = new Set(await store.activeScopes());
  const scopes = new Set([PLATFORM, ...facts.map((f) => f.tenantId), ...active]);
  const alerts: NdrSurgeAlert[] = [];
  for (const scope of scopes) {
    const current = policy();
    const settings = scope === PLATFORM ? current.defaults.ndr : tenantPolicy(current, scope).ndr;
    const alert = await evaluate(store, scope, now, settings);
    if (!alert) continue;
    alerts.push(alert);
    if (alert.phase === 'STARTED') active.add(scope);
    if (alert.phase === 'ENDED') active.delete(scope);
  }
  return { counted, alerts, active: active.size };
}
