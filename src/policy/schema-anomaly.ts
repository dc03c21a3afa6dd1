/**
 * The `anomaly:` map of the policy schema, allowed at the top level, in a group, a source and a
 * prefix entry (inheritance: anomaly.ts; meaning of each field: docs/anomalies.md).
 */
import { isScalar } from 'yaml';
import type { AnomalyLevel } from './anomaly.js';
import { checkGlobList } from './values.js';
import { describe, read, withoutUndefined, type Checker, type Field } from './yaml-check.js';

export const ANOMALY_KEYS = [
  'enabled',
  'overwritten',
  'deleted',
  'added',
  'identical_rewrites',
  'broken_formats',
  'incompressible',
  'min_flagged_objects',
  'ransom_notes',
  'extension_swaps',
  'min_partition_objects',
  'history_runs',
  'history_factor',
  'ransom_note_patterns',
] as const;

/** The most history a partition is compared with: each run of it costs a catalog row to read. */
const MAX_HISTORY_RUNS = 1000;
/** Shares above this are typing mistakes (`added` may exceed 100 %: a partition may grow 10x). */
const MAX_SHARE_PERCENT = 100_000;

export function checkAnomaly(c: Checker, f: Field): AnomalyLevel | undefined {
  const m = c.map(f, ANOMALY_KEYS, `a map of ${ANOMALY_KEYS.join(', ')}`);
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const share = (key: (typeof ANOMALY_KEYS)[number], max: number) => read(m, key, (x) => checkShare(c, x, max));
  const count = (key: (typeof ANOMALY_KEYS)[number]) => read(m, key, (x) => checkCount(c, x));
  const level: AnomalyLevel = withoutUndefined({
    enabled: read(m, 'enabled', (x) => checkBoolean(c, x)),
    overwritten: share('overwritten', 100),
    deleted: share('deleted', 100),
    added: share('added', MAX_SHARE_PERCENT),
    identicalRewrites: share('identical_rewrites', 100),
    brokenFormats: share('broken_formats', 100),
    incompressible: share('incompressible', 100),
    minFlaggedObjects: read(m, 'min_flagged_objects', (x) => c.integer(x, 1)),
    ransomNotes: count('ransom_notes'),
    extensionSwaps: count('extension_swaps'),
    minPartitionObjects: read(m, 'min_partition_objects', (x) => c.integer(x, 0)),
    historyRuns: read(m, 'history_runs', (x) => c.integer(x, 0, MAX_HISTORY_RUNS)),
    historyFactor: read(m, 'history_factor', (x) => checkFactor(c, x)),
    ransomNotePatterns: read(m, 'ransom_note_patterns', (x) => checkPatterns(c, x)),
  });
  return c.problems.length > before ? undefined : level;
}

function checkBoolean(c: Checker, f: Field): boolean | undefined {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (typeof value === 'boolean') return value;
  c.report(f, `expected true or false, got ${describe(f.node)}`);
  return undefined;
}

/** `25%` → 0.25; `off` → null. Plain numbers are refused: is 0.5 half a percent or half? */
function checkShare(c: Checker, f: Field, maxPercent: number): number | null | undefined {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (value === 'off' || value === false) return null;
  const m = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value) : null;
  const percent = m === null ? undefined : Number(m[1]);
  if (percent !== undefined && percent > 0 && percent <= maxPercent) return percent / 100;
  const hint = typeof value === 'number' ? ` (write it as a percentage, e.g. "${value <= 1 ? value * 100 : value}%")` : '';
  c.report(f, `expected a percentage above 0% and up to ${maxPercent}% such as "25%", or off, got ${describe(f.node)}${hint}`);
  return undefined;
}

/** A count threshold: a positive integer, or `off`. */
function checkCount(c: Checker, f: Field): number | null | undefined {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (value === 'off' || value === false) return null;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return value;
  c.report(f, `expected a positive integer (the rule fires at that many objects), or off, got ${describe(f.node)}`);
  return undefined;
}

function checkFactor(c: Checker, f: Field): number | undefined {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 1 && value <= 100) return value;
  c.report(f, `expected a number from 1 to 100 such as 2 (a share fires only above this many times the partition's largest recent share), got ${describe(f.node)}`);
  return undefined;
}

function checkPatterns(c: Checker, f: Field): string[] | undefined {
  return checkGlobList(c, f, { list: 'a list of globs such as ["*_RECOVERY_*.txt"]', item: 'a glob such as "*_RECOVERY_*.txt"' }, (glob) =>
    glob.includes('/') ? `ransom note patterns match a key's base name; remove the "/" from ${JSON.stringify(glob)}` : undefined,
  );
}
