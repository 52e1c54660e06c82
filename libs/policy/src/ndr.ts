// The ndr section: when ndr-surge-detector calls a surge, and when it ends.
import type { Reader } from './reader.ts';

/** When the NDR-surge detector calls a tenant's (or, in `defaults`, the platform's) bounces a surge. */
export interface NdrSurgePolicy {
  /** The windows a surge can start on: this many whole minutes before now, plus the minute under way. */
  readonly startWindowsMinutes: readonly number[];
  /** A window must hold this many times its baseline… */
  readonly startFactor: number;
  /** …at least this many NDRs… */
  readonly startMinimum: number;
  /** …and be this unlikely under the baseline (Poisson upper tail): noise is not a surge. */
  readonly startProbability: number;
  /** Minutes in the window a surge ends on; a surge lasts at least twice this. */
  readonly endWindowMinutes: number;
  /** It ends when that window holds less than this many times the baseline (plus half the start minimum). */
  readonly endFactor: number;
  /** Days of the same hour the baseline looks back on. */
  readonly baselineDays: number;
  /** The lowest baseline, in NDRs a minute: a quiet scope's handful is not a surge by itself. */
  readonly floorPerMinute: number;
  /** Minutes between UPDATED alerts of one surge when its cause stays the same. */
  readonly updateEveryMinutes: number;
}

export const NDR_DEFAULTS: NdrSurgePolicy = {
  startWindowsMinutes: [1, 2, 3],
  startFactor: 4,
  startMinimum: 4,
  startProbability: 5e-6,
  endWindowMinutes: 5,
  endFactor: 1.5,
  baselineDays: 7,
  floorPerMinute: 0.05,
  updateEveryMinutes: 15,
};

export function ndrSection(raw: unknown, base: NdrSurgePolicy, at: Reader): NdrSurgePolicy {
  if (raw === undefined) return base;
  const given = at.object(raw, Object.keys(base));
  const read = (
    key: Exclude<keyof NdrSurgePolicy, 'startWindowsMinutes'>,
    min: number,
    max: number,
    integer = false,
  ) => (given[key] === undefined ? base[key] : at.at(key).number(given[key], min, max, integer));
  let startWindowsMinutes = base.startWindowsMinutes;
  if (given.startWindowsMinutes !== undefined) {
    const here = at.at('startWindowsMinutes');
    if (!Array.isArray(given.startWindowsMinutes) || given.startWindowsMinutes.length === 0)
      throw here.error('must be a non-empty list of minutes');
    startWindowsMinutes = given.startWindowsMinutes.map((m, i) => here.at(i).number(m, 1, 60, true));
  }
  return {
    startWindowsMinutes,
    startFactor: read('startFactor', 1, 1_000),
    startMinimum: read('startMinimum', 1, 100_000, true),
    startProbability: read('startProbability', 1e-12, 0.5),
    endWindowMinutes: read('endWindowMinutes', 1, 120, true),
    endFactor: read('endFactor', 1, 1_000),
    baselineDays: read('baselineDays', 1, 28, true),
    floorPerMinute: read('floorPerMinute', 0.001, 1_000),
    updateEveryMinutes: read('updateEveryMinutes', 1, 1_440, true),
  };
}
