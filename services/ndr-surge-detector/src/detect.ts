// ndr-surge-detector's logic. NDRs are counted per scope (a tenant, and "*" for the platform) in
// event-time minutes. A scope surges when the NDRs of the last few minutes are far above its
// baseline — the median count of the same hour of day over the previous days, so the daily rhythm
// is learnt and one bad day does not move it — and ends when a longer window is back near it.
// One alert per surge: STARTED, UPDATED (when the likely cause changes, or every few minutes with
// new figures), ENDED, all with one alertId. The cause is named from the bounces themselves.
import { createHash } from 'node:crypto';
import { maskAddress } from '@mailpools/core';
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
  /** The scope's day before the surge, what its cause is told against. */
  readonly normal?: NormalProfile;
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

/**
 * The scope's normal as the surge found it: the day before the surge's first window, kept with
 * the surge so that every later look compares against the same thing.
 */
export interface NormalProfile {
  readonly total: number;
  readonly unknownUser: number;
  readonly policyReject: number;
  readonly unknownOriginal: number;
  /** Counts of its most frequent original senders and sources. */
  readonly senders: Readonly<Record<string, number>>;
  readonly sources: Readonly<Record<string, number>>;
}

const PROFILE_KEYS = 50;

export function normalProfileOf(w: WindowStats): NormalProfile {
  const top = (counts: Map<string, number>) =>
    Object.fromEntries([...counts].sort((x, y) => y[1] - x[1]).slice(0, PROFILE_KEYS));
  return {
    total: w.total,
    unknownUser: w.unknownUser,
    policyReject: w.policyReject,
    unknownOriginal: w.unknownOriginal,
    senders: top(w.senders),
    sources: top(w.sources),
  };
}

/** What an operator would do first, per cause. */
const FIRST_STEP: Record<SurgeCause, string> = {
  DIRECTORY_HARVEST:
    'Check that directory-based edge blocking rejects unknown recipients at SMTP time instead of bouncing them; if the probes left from one account, reset its credentials and restrict it.',
  SPOOFING:
    "Check the tenant's SPF, DKIM and DMARC (p=reject stops most backscatter) and that the platform refuses bounces whose SRS hash does not verify.",
  SPAM_ATTACK:
    'Restrict the top senders (mailpools restricted, or the portal), reset their credentials, and look at their recent mail in the trace.',
  ROGUE_SERVER:
    'Find the top source: disable or re-scope that connector, or block the IP, until its owner has cleaned it up.',
  UNKNOWN:
    'Look at the top senders, sources and recipient domains in the trace; see `missing` for what did not fit a cause.',
};

/** Below this many NDRs in the day before, who sent and through what has no normal to compare with. */
const NORMAL_MINIMUM = 20;
/** A cause must account for at least this share of the NDRs the surge added… */
const EXPLAINS = 0.5;
/** A harvest's bounces are nearly all unknown recipients; backscatter's only in part. */
const HARVEST_EXPLAINS = 0.75;
/** …and that share must exceed the kind's usual share by this much. */
const MIN_LIFT = 0.25;

/**
 * The likely cause of a surge, with the statistic that named it. Each cause is scored by how much
 * of the surge's extra NDRs (those above the expected count) its kind of bounce accounts for,
 * beyond that kind's share in the scope's own normal:
 * - directory harvest: unknown-recipient codes, nearly every recipient a different address,
 *   whatever their domains;
 * - spoofing: bounces of messages the platform did not send;
 * - spam attack: policy and content rejections (5.7.x) carried by a few senders beyond their
 *   usual share;
 * - rogue server: one connector or source IP beyond its usual share.
 * UNKNOWN comes with the evidence that was missing.
 */
export function likelyCause(
  w: WindowStats,
  context: { expected?: number; normal?: NormalProfile } = {},
): { cause: SurgeCause; evidence: Record<string, string> } {
  const normal = context.normal;
  const expected = Math.min(context.expected ?? 0, w.total);
  const extra = Math.max(1, w.total - expected);
  const normalTotal = normal?.total ?? 0;
  const enoughNormal = normalTotal >= NORMAL_MINIMUM;
  // The share of a kind among the surge's own NDRs (the window less its expected normal part),
  // counted only where it stands clearly above that kind's usual share: a kind the scope always
  // bounces with says nothing about this surge.
  const lift = (inWindow: number, usualShare: number) => {
    const ofSurge = Math.min(1, Math.max(0, (inWindow - usualShare * expected) / extra));
    return ofSurge - usualShare >= MIN_LIFT ? ofSurge : 0;
  };
  // A kind's usual share, pulled toward 30 % while the day before holds few NDRs.
  const usual = (count: number) => (count + 3) / (normalTotal + 10);
  const usualOfKey = (key: string, counts: Readonly<Record<string, number>> | undefined) =>
    enoughNormal ? (counts?.[key] ?? 0) / normalTotal : 0;
  const byLift = (counts: Map<string, number>, usualCounts: Readonly<Record<string, number>> | undefined) =>
    [...counts]
      .map(([key, n]) => ({ key, n, usual: usualOfKey(key, usualCounts) }))
      .sort((x, y) => y.n - y.usual * w.total - (x.n - x.usual * w.total));
  const topSenders = byLift(w.senders, normal?.senders).slice(0, 3);
  const topSource = byLift(w.sources, normal?.sources)[0];
  const scores = {
    DIRECTORY_HARVEST:
      w.distinctRecipients >= 0.7 * w.total ? lift(w.unknownUser, usual(normal?.unknownUser ?? 0)) : 0,
    SPOOFING: lift(w.unknownOriginal, usual(normal?.unknownOriginal ?? 0)),
    SPAM_ATTACK:
      enoughNormal && topSenders.length > 0
        ? Math.min(
            lift(w.policyReject, usual(normal?.policyReject ?? 0)),
            lift(
              topSenders.reduce((sum, s) => sum + s.n, 0),
              topSenders.reduce((sum, s) => sum + s.usual, 0),
            ),
          )
        : 0,
    ROGUE_SERVER: enoughNormal && topSource ? lift(topSource.n, topSource.usual) : 0,
  } satisfies Record<Exclude<SurgeCause, 'UNKNOWN'>, number>;
  const share = (n: number) => (w.total === 0 ? 0 : n / w.total);
  const evidence: Record<string, string> = {
    ndrs: String(w.total),
    extraNdrs: String(Math.round(extra)),
    normalNdrsDayBefore: String(normalTotal),
    unknownUserShare: percent(share(w.unknownUser)),
    policyRejectShare: percent(share(w.policyReject)),
    unknownOriginalShare: percent(share(w.unknownOriginal)),
    distinctRecipients: String(w.distinctRecipients),
    recipientDomains: String(w.recipientDomains.size),
    topSourceShare: percent(topShare(w.sources, w.total)),
    topThreeSendersShare: percent(topShare(w.senders, w.total, 3)),
    explainedByUnknownUsers: percent(scores.DIRECTORY_HARVEST),
    explainedByForeignOriginals: percent(scores.SPOOFING),
    explainedBySpamRejectsOfFewSenders: percent(scores.SPAM_ATTACK),
    explainedByOneSource: percent(scores.ROGUE_SERVER),
  };
  // The harvest's evidence is the most specific (a harvest's bounces are also of mail the
  // platform did not send, or of one account's), so it is asked first.
  const ranked = (Object.entries(scores) as [Exclude<SurgeCause, 'UNKNOWN'>, number][]).sort(
    (x, y) => y[1] - x[1],
  );
  const [best, bestScore] = ranked[0] as [Exclude<SurgeCause, 'UNKNOWN'>, number];
  // Who and what is involved, bounded, addresses masked: what an operator looks at first.
  const top = (counts: Map<string, number>, show: (key: string) => string = (k) => k) =>
    [...counts]
      .sort((x, y) => y[1] - x[1])
      .slice(0, 3)
      .map(([key, n]) => `${show(key)} (${n})`)
      .join(', ');
  evidence.topSenders = top(w.senders, maskAddress);
  evidence.topSources = top(w.sources);
  evidence.topRecipientDomains = top(w.recipientDomains);
  const cause =
    scores.DIRECTORY_HARVEST >= HARVEST_EXPLAINS
      ? 'DIRECTORY_HARVEST'
      : bestScore >= EXPLAINS
        ? best
        : undefined;
  if (cause)
    return {
      cause,
      evidence: { ...evidence, confidence: percent(scores[cause]), firstStep: FIRST_STEP[cause] },
    };
  return {
    cause: 'UNKNOWN',
    evidence: {
      ...evidence,
      confidence: '0 %',
      firstStep: FIRST_STEP.UNKNOWN,
      missing: `no kind of bounce accounts for half of the ${Math.round(extra)} extra NDRs (closest: ${best} at ${percent(bestScore)})${
        enoughNormal
          ? ''
          : `; the day before held ${normalTotal} NDRs, too few to tell usual senders and sources`
      }`,
    },
  };
}

export interface Baseline {
  /** Expected NDRs a minute (Infinity while nothing can be told yet). */
  readonly perMinute: number;
  /**
   * Less than `baselineDays` of history: the scope's weekly rhythm is not known yet (a first
   * Monday after a quiet Sunday is no surge), so a surge must stand out twice as far.
   */
  readonly learning: boolean;
}

/** Expected NDRs per minute at `atMs`: the median of the same hour of day over the previous days. */
export async function baselinePerMinute(
  store: NdrStore,
  scope: string,
  atMs: number,
  settings: NdrSurgePolicy,
): Promise<Baseline> {
  const hour = Math.floor(atMs / HOUR);
  const days = Array.from({ length: settings.baselineDays }, (_, k) => hour - 24 * (k + 1));
  const { first, counts } = await store.hourCounts(scope, days);
  if (first === undefined) return { perMinute: Number.POSITIVE_INFINITY, learning: true };
  const learning = atMs - first < settings.baselineDays * 24 * HOUR;
  // Only hours the scope was seen for from their beginning: a partly watched hour would read low.
  const whole = counts.filter((_, i) => (days[i] as number) * HOUR >= first).sort((a, b) => a - b);
  const mid = whole.length >> 1;
  const median =
    whole.length === 0
      ? 0
      : whole.length % 2
        ? (whole[mid] as number)
        : ((whole[mid - 1] as number) + (whole[mid] as number)) / 2;
  if (!learning) return { perMinute: Math.max(settings.floorPerMinute, median / 60), learning };
  // Learning: no alert in the first hour; then the larger of the same hour's median so far and
  // twice the mean so far (the first, partly watched hour included). A day or two of history
  // holds one noisy count per hour of day, and a quiet Sunday says little about a Monday.
  if (atMs - first < HOUR) return { perMinute: Number.POSITIVE_INFINITY, learning };
  const firstHour = Math.floor(first / HOUR);
  const sinceFirst = await store.hourCounts(
    scope,
    Array.from({ length: hour - firstHour + 1 }, (_, i) => firstHour + i),
  );
  const total = sinceFirst.counts.reduce((sum, n) => sum + n, 0);
  return {
    perMinute: Math.max(settings.floorPerMinute, median / 60, (2 * total) / ((atMs - first) / MINUTE)),
    learning,
  };
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
  const { perMinute, learning } = await baselinePerMinute(store, scope, now, settings);
  const startFactor = learning ? 2 * settings.startFactor : settings.startFactor;
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
        stats.total < startFactor * expected ||
        poissonTail(stats.total, expected) > settings.startProbability
      )
        continue;
      const normal = normalProfileOf(await store.window(scope, from - 1_440, from - 1));
      const { cause, evidence } = likelyCause(stats, { expected, normal });
      const alertId = createHash('sha256').update(`${scope}|${from}`).digest('hex').slice(0, 16);
      const next: SurgeState = {
        alertId,
        startedAt: from * MINUTE,
        cause,
        lastUpdateAt: now,
        peak: stats.total,
        normal,
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
    return alertOf(
      now,
      scope,
      'ENDED',
      current,
      window,
      likelyCause(stats, { expected, normal: current.normal }).evidence,
    );
  }
  // Name the cause from the whole surge so far, not the last minutes alone.
  const startMinute = Math.floor(current.startedAt / MINUTE);
  const sinceStart = await store.window(scope, startMinute, lastMinute);
  const { cause, evidence } = likelyCause(sinceStart, {
    expected: perMinute * (lastMinute - startMinute + 1),
    normal: current.normal,
  });
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
