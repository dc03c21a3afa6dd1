/** How `diff` prints what changed: the --details list and the counts (shared by `diff <T> live`). */
import type { DiffEntry, DiffSide, DiffSummary } from '../catalog/queries.js';
import { formatBytes, formatTimeMs } from '../util/format.js';
import { isoTime, ListPrinter, plural, withIso } from './query-common.js';
import type { Reporter } from './reporter.js';

/**
 * The --details list: both sizes, both ETags (quotes dropped), and the time of the change: when
 * the new version was written, or for a deleted key when it was deleted.
 */
export function diffPrinter(reporter: Reporter): ListPrinter<DiffEntry> {
  const etag = (side: DiffSide | null) => (side === null ? '-' : (side.etag ?? '-').replace(/"/g, ''));
  return new ListPrinter<DiffEntry>(
    reporter,
    'change',
    [
      { header: 'CHANGE', value: (d) => d.change },
      { header: 'BEFORE', value: (d) => (d.before === null ? '-' : formatBytes(d.before.size)), right: true },
      { header: 'AFTER', value: (d) => (d.after === null ? '-' : formatBytes(d.after.size)), right: true },
      { header: 'TIME', value: (d) => (d.change === 'deleted' ? formatTimeMs(d.deletedAt) : formatTimeMs(d.after?.time ?? null)) },
      { header: 'ETAG BEFORE', value: (d) => etag(d.before) },
      { header: 'ETAG AFTER', value: (d) => etag(d.after) },
      { header: 'OBJECT', value: (d) => `s3://${d.bucket}/${d.key}` },
    ],
    (d) => ({
      ...d,
      before: d.before === null ? null : withIso(d.before, 'time'),
      after: d.after === null ? null : withIso(d.after, 'time'),
      deletedAt: d.deletedAt,
      deletedAtIso: isoTime(d.deletedAt),
    }),
  );
}

/** The counts of a diff (or of what a run recorded), one line per kind; `rewritten` only when there are some. */
export function summaryLines(s: DiffSummary, indent = '  '): string[] {
  const line = (kind: string, n: number, text: string) => `${indent}${kind.padEnd(10)} ${plural(n, 'object').padEnd(14)} ${text}`;
  return [
    line('added', s.added.objects, formatBytes(s.added.bytes)),
    line('changed', s.changed.objects, `${formatBytes(s.changed.bytesBefore)} -> ${formatBytes(s.changed.bytes)}`),
    ...(s.rewritten.objects > 0 ? [line('rewritten', s.rewritten.objects, `${formatBytes(s.rewritten.bytes)} (a new version with the same content: not a change)`)] : []),
    line('deleted', s.deleted.objects, formatBytes(s.deleted.bytes)),
  ];
}
