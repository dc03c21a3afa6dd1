/**
 * The warning a command gives when the state it hands out (restore) or shows (ls) holds what a
 * suspect run recorded in the selection: docs/restore.md "A suspect state is said".
 */
import { lastCleanRun, suspectRunsInState } from '../catalog/anomalies.js';
import type { Scope, StateCut } from '../catalog/catalog.js';
import { catalogScope } from '../catalog/scope.js';
import type { EventSink } from '../engine/events.js';
import { printable } from '../util/printable.js';
import type { Opened } from './context.js';
import { runUnitName } from './runs-sets.js';

/**
 * A state that holds what an unacknowledged suspect run recorded in the selection is restored
 * all the same (it may be what the person wants), but never silently: a warning names the run
 * (its run set for a shard attempt), the partitions, and the last clean state to restore instead.
 */
export function warnSuspectState(ctx: Opened, cut: StateCut, scopes: readonly Scope[], events: EventSink): void {
  const found = suspectRunsInState(ctx.catalog, cut, scopes.map((s) => ({ bucket: s.bucket, prefix: s.key ?? s.prefix ?? '' })));
  if (found.length === 0) return;
  const units = new Map<string, { attempt: string; partitions: Set<string>; incident: boolean }>();
  for (const f of found) {
    const id = runUnitName(f.run);
    const unit = units.get(id) ?? { attempt: f.run.id, partitions: new Set<string>(), incident: f.incident };
    for (const p of f.partitions) unit.partitions.add(`s3://${printable(p)}`);
    units.set(id, unit);
  }
  const { lastClean, lastCleanSet } = lastCleanRun(ctx.catalog, [...new Set(found.map((f) => f.run.group))]);
  const clean = lastCleanSet?.id ?? lastClean?.id;
  for (const [what, u] of units) {
    const parts = [...u.partitions];
    events({
      type: 'warning',
      qualifies: true,
      message:
        `this state holds what ${what} recorded, and it is SUSPECT (${u.incident ? 'acknowledged as an incident, with no clean run after it' : 'not acknowledged'}) in ${parts.slice(0, 3).join(', ')}${parts.length > 3 ? ` and ${parts.length - 3} more` : ''}: ` +
        `it may be damage (\`lakeguard runs show ${u.attempt} --anomalies\`${catalogScope(ctx.catalog) === null ? '' : ' on a whole catalog'})` +
        (clean === undefined ? '' : `; the last clean state is ${lastCleanSet === undefined ? 'run' : 'run set'} ${clean} (\`--at ${clean}\`)`),
    });
  }
}
