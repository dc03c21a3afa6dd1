/**
 * The warning a restore gives when the run whose state it hands out is partial in the
 * selection: some objects there could not be read by that run (docs/restore.md).
 */
import type { Scope, StateCut } from '../catalog/catalog.js';
import { SKIP_CODES } from '../catalog/types.js';
import type { EventSink } from '../engine/events.js';
import { printable } from '../util/printable.js';
import type { Opened } from './context.js';

/**
 * A partial run's state holds, for each object it could not read, what an earlier run recorded
 * (an older version, or nothing for a new key): restored all the same, but never silently.
 */
export function warnPartialRun(ctx: Opened, cut: StateCut, scopes: readonly Scope[], events: EventSink): void {
  if (!('runSeq' in cut) || cut.runSet !== undefined) return;
  const run = ctx.catalog.findRun(String(cut.runSeq));
  if (run?.status !== 'partial') return;
  const failed = ctx.catalog.failuresOfRun(run.seq).filter((f) => !SKIP_CODES.includes(f.code) && scopes.some((s) => s.bucket === f.bucket && covers(s, f.key)));
  if (failed.length === 0) return;
  const first = failed[0]!;
  events({
    type: 'warning',
    qualifies: true,
    message:
      `run ${run.id} is partial: ${failed.length} ${failed.length === 1 ? 'object' : 'objects'} of this selection could not be read by it (${failed.length === 1 ? '' : 'first: '}s3://${printable(`${first.bucket}/${first.key}`)}, ${first.code}); ` +
      `each is restored as an earlier run recorded it, or not at all (\`lakeguard runs show ${run.id} --failures\`)`,
  });
}

/** Whether a failure's key (an object, or a prefix that could not be listed) lies in the scope. */
function covers(scope: Scope, failed: string): boolean {
  const listingOf = (key: string): boolean => key.startsWith(failed) && (failed === '' || failed.endsWith('/'));
  if (scope.key !== undefined) return failed === scope.key || listingOf(scope.key);
  const prefix = scope.prefix ?? '';
  return failed.startsWith(prefix) || listingOf(prefix);
}
