/**
 * Effective `continuous:` settings (docs/watch.md): the thresholds `lakeguard watch` batches
 * changes by, inherited field by field like `anomaly`: top level → group → source, each level
 * overriding only the fields it sets, over the defaults of the product documentation.
 */
import type { Group, Policy, Source } from './types.js';

/** Every continuous setting, resolved. Durations in milliseconds. */
export interface ContinuousSettings {
  /** A batch is backed up once this has passed since its first change and min_updates changes wait. */
  intervalMs: number;
  /** The fewest waiting changes that make a batch due at `interval`. */
  minUpdates: number;
  /** A batch with any change waiting is backed up once this has passed since its first change. */
  maxIntervalMs: number;
  /** A full incremental run of the group this often, whatever the events said (null: never). */
  reconcileMs: number | null;
  /**
   * The most changes of a group watch holds one by one (in memory and in the journal); past it
   * the group overflows and its next run is a full listing (docs/watch.md "Overflow").
   */
  maxPending: number;
}

/** A `continuous:` map as written at one level: only the fields it sets. */
export type ContinuousLevel = Partial<ContinuousSettings>;

const MINUTE = 60_000;
export const CONTINUOUS_DEFAULTS: Readonly<ContinuousSettings> = Object.freeze({
  intervalMs: 15 * MINUTE,
  minUpdates: 32,
  maxIntervalMs: 60 * MINUTE,
  reconcileMs: 24 * 60 * MINUTE,
  maxPending: 10_000,
});

const FIELDS = ['intervalMs', 'minUpdates', 'maxIntervalMs', 'reconcileMs', 'maxPending'] as const;

function inherit(into: ContinuousSettings, level: ContinuousLevel | undefined): void {
  if (level === undefined) return;
  for (const field of FIELDS) {
    const value = level[field];
    if (value !== undefined) (into as unknown as Record<string, unknown>)[field] = value;
  }
}

/** The effective settings of a source of a group (the group's own when `source` is undefined). */
export function continuousSettings(policy: Policy, group: Group, source?: Source): ContinuousSettings {
  const settings = { ...CONTINUOUS_DEFAULTS };
  inherit(settings, policy.continuous);
  inherit(settings, group.continuous);
  inherit(settings, source?.continuous);
  return settings;
}
