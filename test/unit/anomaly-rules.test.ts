import { describe, expect, it } from 'vitest';
import type { PartitionStats } from '../../src/catalog/anomaly-types.js';
import { judgePartition } from '../../src/engine/anomaly-rules.js';
import { ANOMALY_DEFAULTS, type AnomalySettings } from '../../src/policy/anomaly.js';

const MB = 1024 * 1024;

function stats(over: Partial<PartitionStats>): PartitionStats {
  return { bucket: 'lake', partition: 'events/', before: 0, added: 0, changed: 0, deleted: 0, bytesAdded: 0, bytesChanged: 0, bytesDeleted: 0, signals: {}, ...over };
}

/** The rules that fire for `s` under the defaults (or `settings`), with `validBytesAdded` defaulting to all added bytes. */
function fired(s: PartitionStats, history: PartitionStats[] = [], opts: { validBytesAdded?: number; settings?: Partial<AnomalySettings> } = {}): string[] {
  const finding = judgePartition({ stats: s, settings: { ...ANOMALY_DEFAULTS, ...opts.settings }, validBytesAdded: opts.validBytesAdded ?? s.bytesAdded }, history);
  return finding?.rules ?? [];
}

/** An ordinary day of a table of 30 daily partitions of 24 hourly files each (720 keys). */
const ordinaryHistory = Array.from({ length: 10 }, () => stats({ before: 720, added: 24, deleted: 23, bytesAdded: 24 * MB + 20 * MB, bytesDeleted: 23 * MB }));

describe('an ordinary day does not fire', () => {
  it('a first run: everything new, no history', () => {
    expect(fired(stats({ before: 0, added: 5000, bytesAdded: 5000 * MB }))).toEqual([]);
  });

  it('new partitions added', () => {
    expect(fired(stats({ partition: 'events/date=2026-12-06/', before: 0, added: 24, bytesAdded: 24 * MB }))).toEqual([]);
    expect(fired(stats({ before: 720, added: 48, bytesAdded: 48 * MB }))).toEqual([]);
  });

  it("a daily compaction: yesterday's 24 small files deleted, one large one written", () => {
    const day = stats({ before: 720, added: 25, deleted: 24, bytesAdded: 24 * MB + 18 * MB, bytesDeleted: 24 * MB });
    expect(fired(day)).toEqual([]);
    // Even when the compaction is most of a small table, and with no history at all.
    expect(fired(stats({ before: 48, added: 1, deleted: 24, bytesAdded: 15 * MB, bytesDeleted: 24 * MB }))).toEqual([]);
  });

  it('a few percent of the partition rewritten with valid data, or even all of it', () => {
    expect(fired(stats({ before: 720, changed: 24, changedVerified: 24, bytesChanged: 24 * MB }))).toEqual([]);
    expect(fired(stats({ before: 720, changed: 24, bytesChanged: 24 * MB }))).toEqual([]); // not verified, but 3 %
    expect(fired(stats({ before: 100, changed: 100, changedVerified: 100, bytesChanged: 100 * MB }))).toEqual([]);
  });

  it('a couple of broken files, or one incompressible rewrite, in a large partition', () => {
    expect(fired(stats({ before: 720, added: 24, signals: { format: 2 } }))).toEqual([]);
    expect(fired(stats({ before: 720, added: 100, signals: { format: 3 } }))).toEqual([]); // 3 % of 100
    expect(fired(stats({ before: 720, changed: 10, signals: { incompressible: 1 } }))).toEqual([]);
  });

  it('a small partition is judged by counts only: losing 5 of 10 files is not a share anomaly', () => {
    expect(fired(stats({ before: 10, deleted: 5, bytesDeleted: 5 * MB }))).toEqual([]);
    expect(fired(stats({ before: 10, changed: 10 }))).toEqual([]);
  });
});

describe("the issue's incident fires", () => {
  // A third of 300 Parquet files overwritten with random bytes of the same size, a tenth deleted, two notes.
  const incident = stats({
    before: 300,
    added: 2,
    changed: 100,
    deleted: 30,
    bytesAdded: 2000,
    bytesChanged: 100 * MB,
    bytesDeleted: 30 * MB,
    signals: { format: 100, 'ransom-note': 2 },
  });

  it('overwritten, deleted, broken formats and ransom notes, each with a reason that has its numbers', () => {
    const finding = judgePartition({ stats: incident, settings: ANOMALY_DEFAULTS, validBytesAdded: 0 }, ordinaryHistory);
    expect(finding?.rules).toEqual(['overwritten', 'deleted', 'broken-formats', 'ransom-notes']);
    expect(finding?.reasons).toEqual([
      'overwrote 100 of 300 keys with data not verified valid (33.33%; threshold 25%, history max 0% of 10 runs)',
      'deleted 30 of 300 keys (10%; threshold 5%, history max 0% of 10 runs)',
      "100 of 102 new or changed objects do not have their extension's format (98.04%; threshold 5%, history max 0% of 10 runs)",
      '2 new keys are named like a ransom note (threshold 1)',
    ]);
  });

  it('deletions alone, with no history, still fire', () => {
    expect(fired(stats({ before: 300, deleted: 30, bytesDeleted: 30 * MB }))).toEqual(['deleted']);
  });

  it('random bytes replacing files of an unknown format fire as overwrites and incompressible data', () => {
    expect(fired(stats({ before: 300, changed: 100, signals: { incompressible: 100 } }))).toEqual(['overwritten', 'incompressible']);
  });

  it('a small partition fires on counts: 3 broken files, one note, 3 extension swaps', () => {
    expect(fired(stats({ before: 5, changed: 3, signals: { format: 3 } }))).toEqual(['broken-formats']);
    expect(fired(stats({ before: 5, changed: 2, signals: { format: 2 } }))).toEqual([]);
    expect(fired(stats({ before: 5, added: 1, signals: { 'ransom-note': 1 } }))).toEqual(['ransom-notes']);
    expect(fired(stats({ before: 5, added: 3, deleted: 3, signals: { 'extension-swap': 3 } }))).toEqual(['extension-swaps']);
  });

  it('deletions replaced by new data that is not valid are no compaction', () => {
    const swapped = stats({ before: 300, added: 30, deleted: 30, bytesAdded: 30 * MB, bytesDeleted: 30 * MB, signals: { 'extension-swap': 30 } });
    expect(fired(swapped, [], { validBytesAdded: 0 })).toEqual(['deleted', 'extension-swaps']);
    expect(fired(swapped, [], { validBytesAdded: 30 * MB, settings: { extensionSwaps: null } })).toEqual([]);
  });
});

describe('history raises the bar', () => {
  it('a share fires only above history_factor times the largest share of the history', () => {
    const history = [stats({ before: 300, deleted: 18 }), stats({ before: 300, deleted: 3 })]; // max 6 %
    expect(fired(stats({ before: 300, deleted: 30 }), history)).toEqual([]); // 10 % < 2 x 6 %
    expect(fired(stats({ before: 300, deleted: 40 }), history)).toEqual(['deleted']); // 13.3 %
    expect(fired(stats({ before: 300, deleted: 30 }), history, { settings: { historyFactor: 1.5 } })).toEqual(['deleted']);
  });

  it("a compaction's deletions do not raise the bar for deletions", () => {
    const compactions = [stats({ before: 72, added: 1, deleted: 24, bytesAdded: 20 * MB, bytesDeleted: 24 * MB })]; // 33 %, replaced
    expect(fired(stats({ before: 300, deleted: 30 }), compactions)).toEqual(['deleted']);
  });

  it('verified rewrites in the history do not raise the bar for overwrites', () => {
    const backfill = [stats({ before: 300, changed: 300, changedVerified: 300 })];
    const unverified = [stats({ before: 300, changed: 300 })];
    const overwrite = stats({ before: 300, changed: 100 });
    expect(fired(overwrite, backfill)).toEqual(['overwritten']);
    expect(fired(overwrite, unverified)).toEqual([]);
  });

  it('a partition that often adds many keys may keep doing so', () => {
    const growth = stats({ before: 30, added: 90 }); // 300 %
    expect(fired(growth)).toEqual(['added']);
    expect(fired(growth, [stats({ before: 20, added: 40 })])).toEqual([]); // 200 % in the history: the bar is 400 %
  });
});

describe('settings', () => {
  it('off turns a rule off; thresholds are exclusive', () => {
    const s = stats({ before: 300, deleted: 30, signals: { 'ransom-note': 1 } });
    expect(fired(s, [], { settings: { deleted: null, ransomNotes: null } })).toEqual([]);
    expect(fired(stats({ before: 100, deleted: 5 }))).toEqual([]); // exactly 5 %
    expect(fired(stats({ before: 100, deleted: 6 }))).toEqual(['deleted']);
  });

  it('min_partition_objects decides which partitions shares apply to', () => {
    const s = stats({ before: 15, deleted: 5 });
    expect(fired(s)).toEqual([]);
    expect(fired(s, [], { settings: { minPartitionObjects: 10 } })).toEqual(['deleted']);
  });

  it('identical rewrites fire above their share', () => {
    expect(fired(stats({ before: 100, changed: 60, changedVerified: 60, signals: { identical: 60 } }))).toEqual(['identical-rewrites']);
    expect(fired(stats({ before: 100, changed: 40, changedVerified: 40, signals: { identical: 40 } }))).toEqual([]);
  });
});
