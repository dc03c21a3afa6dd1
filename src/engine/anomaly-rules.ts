/**
 * The partition rules of anomaly detection (docs/anomalies.md): one run's statistics of one
 * partition, its settings and its history in, a finding (or none) out. Pure.
 *
 * A share rule fires when the share is above its threshold AND above `history_factor` times the
 * largest share the partition had in its history (its last clean or acknowledged runs), and is
 * judged only when its denominator has at least `min_partition_objects` objects: below that, one
 * file is a large share of nothing. Count rules (ransom notes, extension swaps) ignore history.
 */
import type { PartitionFinding, PartitionRule, PartitionStats } from '../catalog/anomaly-types.js';
import { formatPercent, type AnomalySettings, type ShareThreshold } from '../policy/anomaly.js';

/** Deletions replaced by new valid data of at least this share of their bytes are a compaction. */
export const COMPACTION_BYTES_SHARE = 0.5;

/** One run's view of a partition, with what only the run itself knows. */
export interface PartitionEvidence {
  stats: PartitionStats;
  settings: AnomalySettings;
  /** Bytes of new keys without any signal: what a compaction writes in place of what it deletes. */
  validBytesAdded: number;
  /**
   * A shard whose key range cuts the partition sees only its part: the partition's live keys as
   * its history last recorded them (every shard's part). A part below `min_partition_objects` is
   * then judged by its changes' share of the whole partition.
   */
  partitionObjects?: number;
}

interface ShareRule {
  rule: PartitionRule;
  threshold: (s: AnomalySettings) => ShareThreshold;
  /** Numerator and denominator of the share in a run's statistics. */
  of: (p: PartitionStats) => { part: number; whole: number };
  /** Words for the reason line: "overwrote 41 of 120 keys". */
  words: (part: number, whole: number) => string;
  /** A history run whose share does not count (a compaction's deletions). */
  ignoreInHistory?: (p: PartitionStats) => boolean;
  /** A run in which the rule does not fire whatever the share. */
  excused?: (e: PartitionEvidence) => boolean;
  /** Also needs this many objects (broken formats, incompressible). */
  minCount?: (s: AnomalySettings) => number;
  /** The share is of the partition's live keys before the run (a shard's part of a cut partition stands for it). */
  ofLiveKeys?: true;
}

const newOrChanged = (p: PartitionStats) => p.added + p.changed;

/** A deletion of this run that new valid data replaced: a compaction, not an anomaly. */
function isCompaction(bytesDeleted: number, bytesAdded: number): boolean {
  return bytesDeleted > 0 && bytesAdded >= COMPACTION_BYTES_SHARE * bytesDeleted;
}

const SHARE_RULES: readonly ShareRule[] = [
  {
    rule: 'overwritten',
    ofLiveKeys: true,
    threshold: (s) => s.overwritten,
    // Rewrites whose new data was verified (a known format's signature, compressing as before) are left out.
    of: (p) => ({ part: p.changed - (p.changedVerified ?? 0), whole: p.before }),
    words: (n, of) => `overwrote ${n} of ${of} keys with data not verified valid`,
  },
  {
    rule: 'deleted',
    ofLiveKeys: true,
    threshold: (s) => s.deleted,
    of: (p) => ({ part: p.deleted, whole: p.before }),
    words: (n, of) => `deleted ${n} of ${of} keys`,
    ignoreInHistory: (p) => isCompaction(p.bytesDeleted, p.bytesAdded),
    excused: (e) => isCompaction(e.stats.bytesDeleted, e.validBytesAdded),
  },
  {
    rule: 'added',
    ofLiveKeys: true,
    threshold: (s) => s.added,
    of: (p) => ({ part: p.added, whole: p.before }),
    words: (n, of) => `added ${n} keys to ${of}`,
  },
  {
    rule: 'identical-rewrites',
    ofLiveKeys: true,
    threshold: (s) => s.identicalRewrites,
    of: (p) => ({ part: p.signals.identical ?? 0, whole: p.before }),
    words: (n, of) => `rewrote ${n} of ${of} keys with identical content`,
  },
  {
    rule: 'broken-formats',
    threshold: (s) => s.brokenFormats,
    of: (p) => ({ part: p.signals.format ?? 0, whole: newOrChanged(p) }),
    words: (n, of) => `${n} of ${of} new or changed objects do not have their extension's format`,
    minCount: (s) => s.minFlaggedObjects,
  },
  {
    rule: 'incompressible',
    threshold: (s) => s.incompressible,
    of: (p) => ({ part: p.signals.incompressible ?? 0, whole: newOrChanged(p) }),
    words: (n, of) => `${n} of ${of} new or changed objects stopped compressing`,
    minCount: (s) => s.minFlaggedObjects,
  },
];

/** The largest share of a rule in a partition's history (0 when it has none to compare with). */
function historyMax(rule: ShareRule, history: readonly PartitionStats[]): number {
  let max = 0;
  for (const h of history) {
    if (rule.ignoreInHistory?.(h) === true) continue;
    const { part, whole } = rule.of(h);
    if (whole > 0) max = Math.max(max, part / whole);
  }
  return max;
}

function judgeShare(rule: ShareRule, e: PartitionEvidence, history: readonly PartitionStats[]): string | undefined {
  const { settings } = e;
  const threshold = rule.threshold(settings);
  if (threshold === null) return undefined;
  const { part } = rule.of(e.stats);
  let { whole } = rule.of(e.stats);
  if (part <= 0) return undefined;
  const minCount = rule.minCount?.(settings);
  if (minCount !== undefined && part < minCount) return undefined;
  if (rule.excused?.(e) === true) return undefined;
  // A shard's part of a cut partition too small to judge: its changes as a share of the whole
  // partition are (a part of what one process would have judged, so no finding it would not make
  // while the partition is as large as its history says).
  if (rule.ofLiveKeys === true && whole > 0 && whole < settings.minPartitionObjects && (e.partitionObjects ?? 0) >= settings.minPartitionObjects) {
    whole = Math.max(whole, e.partitionObjects!);
  }
  const words = rule.words(part, whole);
  if (whole < settings.minPartitionObjects) {
    // Too few objects for a share to mean anything: a rule with a minimum count fires on the count alone.
    return minCount === undefined ? undefined : `${words} (${minCount} or more in a partition of fewer than ${settings.minPartitionObjects} objects)`;
  }
  const share = part / whole;
  const max = historyMax(rule, history);
  if (share <= threshold || share <= settings.historyFactor * max) return undefined;
  const past = history.length === 0 ? 'no history' : `history max ${formatPercent(max)} of ${history.length} runs`;
  return `${words} (${formatPercent(share)}; threshold ${formatPercent(threshold)}, ${past})`;
}

/** Judges one partition of a run; undefined when no rule fires. `history`: newest first, already limited to history_runs. */
export function judgePartition(e: PartitionEvidence, history: readonly PartitionStats[]): PartitionFinding | undefined {
  const rules: PartitionRule[] = [];
  const reasons: string[] = [];
  for (const rule of SHARE_RULES) {
    const reason = judgeShare(rule, e, history);
    if (reason === undefined) continue;
    rules.push(rule.rule);
    reasons.push(reason);
  }
  const notes = e.stats.signals['ransom-note'] ?? 0;
  if (e.settings.ransomNotes !== null && notes >= e.settings.ransomNotes) {
    rules.push('ransom-notes');
    reasons.push(`${notes} new ${notes === 1 ? 'key is' : 'keys are'} named like a ransom note (threshold ${e.settings.ransomNotes})`);
  }
  const swaps = e.stats.signals['extension-swap'] ?? 0;
  if (e.settings.extensionSwaps !== null && swaps >= e.settings.extensionSwaps) {
    rules.push('extension-swaps');
    reasons.push(`${swaps} new ${swaps === 1 ? 'key has' : 'keys have'} a swapped or ransomware extension (threshold ${e.settings.extensionSwaps})`);
  }
  if (rules.length === 0) return undefined;
  return { bucket: e.stats.bucket, partition: e.stats.partition, rules, reasons };
}
