// The yardstick for eval:ndr: the detector anyone would write first. Per tenant, an exponentially
// weighted mean and variance of NDRs a minute (a half-life of about three hours); an alert when
// the last five minutes exceed three times the mean plus three standard deviations; it ends after
// ten minutes back near the mean. Its cause is the majority reading of the bounces, with fixed
// shares. No daily rhythm, no Poisson test, no store: only the comparison needs it.
import type { SurgeCause } from '@mailpools/schemas';
import type { NdrFact } from '../src/detect.ts';

const MINUTE = 60_000;
const ALPHA = 1 / 240;
const WARM_UP_MINUTES = 1_440;

export interface EvalAlert {
  readonly alertId: string;
  readonly phase: 'STARTED' | 'UPDATED' | 'ENDED';
  readonly scope: 'TENANT' | 'PLATFORM';
  readonly tenantId: string | null;
  readonly eventTime: number;
  readonly likelyCause: SurgeCause;
  readonly evidence: Readonly<Record<string, string>>;
}

interface TenantState {
  mean: number;
  variance: number;
  minutesSeen: number;
  minute: number;
  /** NDRs of the last minutes, the newest last; the current minute is `current`. */
  recent: number[];
  current: number;
  facts: NdrFact[];
  active?: { alertId: string; startedAt: number };
}

function naiveCause(facts: readonly NdrFact[]): SurgeCause {
  const share = (test: (f: NdrFact) => boolean) => facts.filter(test).length / Math.max(1, facts.length);
  if (share((f) => !f.originalKnown) >= 0.5) return 'SPOOFING';
  if (share((f) => f.status.startsWith('5.1.')) >= 0.5) return 'DIRECTORY_HARVEST';
  if (share((f) => f.status.startsWith('5.7.')) >= 0.4) return 'SPAM_ATTACK';
  return 'UNKNOWN';
}

export function createEwmaDetector() {
  const tenants = new Map<string, TenantState>();
  let serial = 0;
  const stateOf = (tenantId: string, minute: number) => {
    let state = tenants.get(tenantId);
    if (!state) {
      state = { mean: 0, variance: 0, minutesSeen: 0, minute, recent: [], current: 0, facts: [] };
      tenants.set(tenantId, state);
    }
    return state;
  };
  const roll = (state: TenantState, minute: number) => {
    while (state.minute < minute) {
      const count = state.current;
      const delta = count - state.mean;
      state.mean += ALPHA * delta;
      state.variance = (1 - ALPHA) * (state.variance + ALPHA * delta * delta);
      state.minutesSeen++;
      state.recent.push(count);
      if (state.recent.length > 10) state.recent.shift();
      state.current = 0;
      state.minute++;
    }
  };
  return {
    /** Counts the facts, then looks at every tenant as of `now`. */
    step(facts: readonly NdrFact[], now: number): EvalAlert[] {
      const minute = Math.floor(now / MINUTE);
      for (const fact of facts) {
        const state = stateOf(fact.tenantId, Math.floor(fact.at / MINUTE));
        roll(state, Math.floor(fact.at / MINUTE));
        state.current++;
        if (state.active) state.facts.push(fact);
        else {
          state.facts.push(fact);
          if (state.facts.length > 200) state.facts.shift();
        }
      }
      const alerts: EvalAlert[] = [];
      for (const [tenantId, state] of tenants) {
        roll(state, minute);
        if (state.minutesSeen < WARM_UP_MINUTES) continue;
        const last5 = state.recent.slice(-4).reduce((a, b) => a + b, 0) + state.current;
        const base = { scope: 'TENANT' as const, tenantId, eventTime: now, evidence: {} };
        if (!state.active) {
          if (last5 > 5 * 3 * state.mean + 3 * Math.sqrt(5 * state.variance) + 3) {
            const alertId = `ewma-${serial++}`;
            state.active = { alertId, startedAt: now };
            const since = state.facts.filter((f) => f.at >= now - 5 * MINUTE);
            state.facts = since;
            alerts.push({ ...base, alertId, phase: 'STARTED', likelyCause: naiveCause(since) });
          }
          continue;
        }
        const last10 = state.recent.reduce((a, b) => a + b, 0);
        if (now - state.active.startedAt >= 20 * MINUTE && last10 < 10 * 1.5 * state.mean + 2) {
          alerts.push({
            ...base,
            alertId: state.active.alertId,
            phase: 'ENDED',
            likelyCause: naiveCause(state.facts),
          });
          state.active = undefined;
          state.facts = [];
        }
      }
      return alerts;
    },
  };
}
