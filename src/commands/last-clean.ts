/**
 * `last-clean` as an instant, for every command a responder uses on the way back from an
 * incident (`rollback --at`, `diff <from> live`): the state recorded by the newest complete run,
 * neither failed nor suspect (unless acknowledged as expected changes), of the groups that cover
 * the scope, started before their oldest unacknowledged suspect run (src/catalog/anomalies.ts,
 * lastCleanRun).
 */
import { lastCleanRun } from '../catalog/anomalies.js';
import { runSetCut } from '../catalog/run-sets.js';
import type { RunRow, StateCut } from '../catalog/types.js';
import type { EventSink } from '../engine/events.js';
import { sourceName } from '../engine/sources.js';
import { UsageError } from '../errors.js';
import { runUnitName } from './runs-sets.js';
import type { Policy } from '../policy/types.js';
import type { Catalog } from '../catalog/catalog.js';

export function isLastClean(text: string): boolean {
  return text.trim().toLowerCase() === 'last-clean';
}

/**
 * The clean run and the suspect run it precedes (undefined when no run is suspect: then the
 * newest complete run, with a warning). `groups`: the groups covering the scope (every group
 * of the policy when the command has no narrower scope). Throws a one-line UsageError when
 * there is no such run.
 */
export function resolveLastClean(catalog: Catalog, groups: readonly string[], events: EventSink, option: string): LastClean {
  const { suspect, lastClean: clean, lastCleanSet: set, incident } = lastCleanRun(catalog, groups);
  if (clean === undefined) {
    throw new UsageError(
      suspect === undefined
        ? `${option} last-clean: no complete run of ${groups.join(', ')} in the catalog`
        : `${option} last-clean: no complete clean run of ${groups.join(', ')} started before the suspect run ${suspect.id}`,
      { hint: 'list runs with `lakeguard runs` and give a run id or a time instead' },
    );
  }
  if (suspect === undefined && incident === undefined) {
    events({ type: 'warning', message: `${option} last-clean: no unacknowledged suspect run of ${groups.join(', ')}: the newest complete run, ${set?.id ?? clean.id}, is the last clean one` });
  }
  const base = { clean, suspect, ...(incident === undefined ? {} : { incident }) };
  if (set === undefined) return { ...base, cut: { runSeq: clean.seq }, id: clean.id, started: clean.started, what: `run ${clean.id}` };
  return { ...base, cut: runSetCut(catalog, set), id: set.id, started: set.started, what: `run set ${set.id}` };
}

/**
 * Why this state: `the last clean run before the suspect run set <id>` (a shard attempt is named
 * by its run set, the id `runs` shows), or `the newest complete run` when none is suspect.
 */
export function lastCleanWhy(last: LastClean): string {
  if (last.suspect !== undefined) return `the last clean run before the suspect ${runUnitName(last.suspect)}`;
  if (last.incident !== undefined) return `the last clean run before the ${runUnitName(last.incident)}, acknowledged as an incident`;
  return 'the newest complete run';
}

/** The last clean state: a run's, or a complete run set's (never one shard attempt's alone). */
export interface LastClean {
  /** The run, or for a run set the newest clean attempt. */
  clean: RunRow;
  suspect: RunRow | undefined;
  /** With no unacknowledged suspect: the newest run acknowledged as an incident after `clean`, if any. */
  incident?: RunRow;
  cut: StateCut;
  /** The run's or the run set's id, and when it started. */
  id: string;
  started: number;
  /** `run <id>` or `run set <id>`, for messages. */
  what: string;
}

/** The groups whose sources include `bucket` (all groups without one). */
export function groupsCovering(policy: Policy, bucket: string | undefined): string[] {
  return policy.groups.filter((g) => bucket === undefined || g.sources.some((s) => sourceName(s) === bucket)).map((g) => g.name);
}
