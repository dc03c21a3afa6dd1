// The test lake's generator (test/helpers/parquet-lake.ts) is itself tested: its Parquet files
// are real (PAR1 at both ends, hyparquet reads the rows the model says), it is a pure function
// of the seed, and its ordinary day and incident do what the integration test and the
// benchmark rely on (a compaction keeps every row, an incident overwrites a third with garbage
// of the same size).
import { describe, expect, it } from 'vitest';
import { LakeModel, PARQUET_CONTENT_TYPE, RANSOM_NOTE_NAME, readParquet } from '../helpers/parquet-lake.js';

const SMALL = { seed: 11, days: 3, regions: ['eu', 'us'], salesFilesMax: 4, eventsFilesMax: 8 };

const isParquet = (b: Buffer): boolean => b.length >= 12 && b.subarray(0, 4).toString('latin1') === 'PAR1' && b.subarray(-4).toString('latin1') === 'PAR1';

describe('test lake generator', () => {
  it('writes Hive-partitioned Parquet files whose rows hyparquet reads back, with side files', async () => {
    const lake = LakeModel.generate(SMALL);
    const parquet = lake.parquetKeys();
    expect(parquet.length).toBeGreaterThanOrEqual(3 * (2 + 6));
    for (const key of parquet) {
      expect(key).toMatch(/^(sales\/date=2026-11-0[1-3]\/region=(eu|us)|events\/date=2026-11-0[1-3])\/part-\d{5}\.parquet$/);
      const f = lake.files.get(key)!;
      expect(isParquet(f.body), key).toBe(true);
      expect(f.contentType).toBe(PARQUET_CONTENT_TYPE);
      expect(f.metadata.rows).toBe(String(f.rows));
      const rows = await readParquet(f.body);
      expect(rows.length, key).toBe(f.rows);
    }
    const sizes = parquet.map((k) => lake.files.get(k)!.body.length);
    expect(Math.min(...sizes)).toBeGreaterThan(1024);
    expect(Math.max(...sizes)).toBeLessThan(400 * 1024);
    // Typed columns, as a query engine sees them.
    const row = (await readParquet(lake.files.get(parquet.find((k) => k.startsWith('sales/'))!)!.body))[0]!;
    expect(typeof row.order_id).toBe('bigint');
    expect(row.ordered_at).toBeInstanceOf(Date);
    expect(typeof row.amount).toBe('number');
    expect(typeof row.currency).toBe('string');
    // Side files real lakes have.
    for (const d of ['2026-11-01', '2026-11-02', '2026-11-03']) expect(lake.files.get(`sales/date=${d}/_SUCCESS`)?.body.length).toBe(0);
    expect(JSON.parse(lake.files.get('sales/_schema.json')!.body.toString()).partitioning).toEqual(['date', 'region']);
    expect(lake.files.get('reference/regions.csv')!.body.toString()).toMatch(/^region,name,currency\neu,/);
  });

  it('is a pure function of the seed', () => {
    const a = LakeModel.generate(SMALL);
    const b = LakeModel.generate(SMALL);
    const c = LakeModel.generate({ ...SMALL, seed: 12 });
    expect([...a.files.keys()]).toEqual([...b.files.keys()]);
    for (const [k, f] of a.files) expect(f.body.equals(b.files.get(k)!.body), k).toBe(true);
    const dayA = a.planOrdinaryDay();
    const dayB = b.planOrdinaryDay();
    expect(dayA.rewritten).toEqual(dayB.rewritten);
    for (const [k, f] of dayA.puts) expect(f.body.equals(dayB.puts.get(k)!.body), k).toBe(true);
    const incA = a.planIncident();
    const incB = b.planIncident();
    expect(incA.overwritten).toEqual(incB.overwritten);
    for (const [k, f] of incA.puts) expect(f.body.equals(incB.puts.get(k)!.body), k).toBe(true);
    // Another seed: other files.
    const shared = [...c.files].filter(([k, f]) => f.body.length > 0 && a.files.get(k)?.body.equals(f.body));
    expect(shared.map(([k]) => k).sort()).toEqual(['sales/_schema.json', 'reference/regions.csv'].sort());
  });

  it('an ordinary day adds a partition, rewrites a few percent with valid Parquet, and compacts yesterday', async () => {
    const lake = LakeModel.generate(SMALL);
    const before = new Map(lake.files);
    const day = lake.planOrdinaryDay();
    expect(day.date).toBe('2026-11-04');
    expect(lake.days).toBe(4);
    expect(day.added.length).toBeGreaterThan(0);
    for (const k of day.added) {
      expect(k.startsWith('sales/date=2026-11-04/') || k.startsWith('events/date=2026-11-04/'), k).toBe(true);
      expect(before.has(k)).toBe(false);
    }
    // A few percent rewritten, each with new valid Parquet of more rows.
    const parquetBefore = [...before.keys()].filter((k) => k.endsWith('.parquet')).length;
    expect(day.rewritten.length).toBe(Math.max(1, Math.round(parquetBefore * 0.03)));
    for (const k of day.rewritten) {
      const f = lake.files.get(k)!;
      expect(isParquet(f.body)).toBe(true);
      expect(f.body.equals(before.get(k)!.body)).toBe(false);
      expect((await readParquet(f.body)).length).toBe(f.rows);
      expect(f.rows).toBeGreaterThan(before.get(k)!.rows);
    }
    // Compaction: yesterday's small files gone, their rows (exactly) in one larger file that
    // holds at least half their bytes (what detection treats as a compaction).
    const c = day.compaction;
    expect(c.partition).toBe('events/date=2026-11-03/');
    expect(c.deleted.length).toBeGreaterThanOrEqual(6);
    for (const k of c.deleted) expect(lake.files.has(k)).toBe(false);
    const mergedRows = await readParquet(lake.files.get(c.written)!.body);
    const smallRows = (await Promise.all(c.deleted.map((k) => readParquet(before.get(k)!.body)))).flat();
    expect(mergedRows).toEqual(smallRows);
    const deletedBytes = c.deleted.reduce((s, k) => s + before.get(k)!.body.length, 0);
    expect(lake.files.get(c.written)!.body.length).toBeGreaterThan(deletedBytes / 2);
    expect(day.deletes).toEqual(c.deleted);
    // The next day compacts the partition just added, and takes other rewrites.
    const next = lake.planOrdinaryDay();
    expect(next.compaction.partition).toBe('events/date=2026-11-04/');
    expect(next.date).toBe('2026-11-05');
  });

  it('an incident overwrites a third with random bytes of the same size, deletes a tenth and drops notes', () => {
    const lake = LakeModel.generate(SMALL);
    lake.planOrdinaryDay();
    const before = new Map(lake.files);
    const parquet = lake.parquetKeys();
    const inc = lake.planIncident();
    expect(inc.overwritten.length).toBe(Math.round(parquet.length / 3));
    expect(inc.deleted.length).toBe(Math.round(parquet.length / 10));
    expect(inc.overwritten.filter((k) => inc.deleted.includes(k))).toEqual([]);
    for (const k of inc.overwritten) {
      const f = lake.files.get(k)!;
      expect(f.body.length).toBe(before.get(k)!.body.length);
      expect(isParquet(f.body)).toBe(false);
      expect(f.contentType).toBe('application/octet-stream');
    }
    for (const k of inc.deleted) expect(lake.files.has(k)).toBe(false);
    // A note in every date partition of both tables (4 dates x 2 tables), all new keys.
    expect(inc.notes.length).toBe(8);
    for (const k of inc.notes) {
      expect(k).toMatch(new RegExp(`^(sales|events)/date=2026-11-0[1-4]/${RANSOM_NOTE_NAME}$`));
      expect(before.has(k)).toBe(false);
    }
    // Side files and the untouched two thirds keep their bytes.
    for (const [k, f] of before) {
      if (!inc.overwritten.includes(k) && !inc.deleted.includes(k)) expect(lake.files.get(k)!.body.equals(f.body), k).toBe(true);
    }
  });
});
