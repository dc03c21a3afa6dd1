// The incident responder's queries on a hand-built catalog with fixed dates: exact results of
// versions, find, ls, diff, calendar and runs show, paging, and that the SQL stays indexed.
process.env.TZ = 'UTC'; // calendar days; set before any Date is made

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, type StateCut } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { globLiteralPrefix, upperBound } from '../../src/catalog/key-range.js';
import { allPages, CatalogQueries, type Page } from '../../src/catalog/queries.js';
import { renderCalendar } from '../../src/commands/calendar.js';
import { UsageError } from '../../src/errors.js';
import { compileGlob } from '../../src/policy/glob.js';
import { at, MiB, seedQueryCatalog, type SeededRuns } from '../helpers/query-fixture.js';

const REPO = 'c3'.repeat(16);

let cat: Catalog;
let q: CatalogQueries;
let runs: SeededRuns;
beforeEach(() => {
  cat = Catalog.open(':memory:', REPO);
  runs = seedQueryCatalog(cat);
  q = new CatalogQueries(cat);
});
afterEach(() => cat.close());

/** Every item of a paged query, fetching `limit` at a time. */
// `after: any`: each query has its own cursor type, which the lambda passes through untouched.
function collect<T>(fetch: (page: { limit: number; after?: any }) => Page<T, unknown>, limit = 1000): T[] {
  const out: T[] = [];
  for (const items of allPages(fetch({ limit }), (after) => fetch({ limit, after }))) {
    expect(items.length).toBeLessThanOrEqual(limit);
    out.push(...items);
  }
  return out;
}

describe('versionsOf', () => {
  it('lists every version and delete marker newest first, with run and data presence', () => {
    const rows = q.versionsOf('raw', 'a/1.csv').items;
    expect(rows.map((r) => [r.versionId, r.deleteMarker, new Date(r.time).toISOString(), r.size, r.run, r.dataPresent])).toEqual([
      ['1-dm', true, '2026-11-04T07:00:00.000Z', 0, '20261104T100000Z-cccccc', null],
      ['1-c', false, '2026-11-04T05:00:00.000Z', 120, '20261104T100000Z-cccccc', true],
      ['1-b', false, '2026-11-03T05:00:00.000Z', 110, '20261103T100000Z-bbbbbb', true],
      ['1-a', false, '2026-11-02T05:00:00.000Z', 100, '20261102T100000Z-aaaaaa', true],
    ]);
    expect(rows[1]).toMatchObject({ etag: `"etag-a/1.csv-${at(4, 5)}"`, lastModified: at(4, 5), runSeq: runs.r3, storageClass: null });
  });

  it('pages newest first without repeating or skipping, also between equal times', () => {
    expect(collect((p) => q.versionsOf('raw', 'a/1.csv', p), 1).map((r) => r.versionId)).toEqual(['1-dm', '1-c', '1-b', '1-a']);
    expect(collect((p) => q.versionsOf('raw', 'a/1.csv', p), 3).map((r) => r.versionId)).toEqual(['1-dm', '1-c', '1-b', '1-a']);
  });

  it('says when a version’s data is no longer in any pack; unknown keys and buckets have no versions', () => {
    expect(q.versionsOf('raw', 'c.txt').items.map((r) => [r.versionId, r.dataPresent, r.storageClass])).toEqual([['c-a', false, 'STANDARD_IA']]);
    expect(q.versionsOf('raw', 'nope').items).toEqual([]);
    expect(q.versionsOf('nope', 'a/1.csv').items).toEqual([]);
    expect(q.versionsOf('logs', 'a/1.csv').items.map((r) => [r.versionId, r.size])).toEqual([[null, 10]]);
  });
});

describe('find', () => {
  const keys = (glob: string, opts: Parameters<CatalogQueries['find']>[1] = {}, limit?: number) =>
    collect((p) => q.find(glob, opts, p), limit).map((f) => `${f.bucket}/${f.key}${f.deleted ? ' (deleted)' : ''}`);

  it('matches the glob in every bucket, in key order, deleted keys marked', () => {
    expect(keys('a/**')).toEqual(['raw/a/1.csv (deleted)', 'logs/a/1.csv', 'raw/a/2.csv', 'raw/a/b/3.csv', 'raw/a/b/4.csv']);
    expect(keys('*.csv')).toEqual(['raw/a/1.csv (deleted)', 'logs/a/1.csv', 'raw/a/2.csv', 'raw/a/b/3.csv', 'raw/a/b/4.csv']);
    expect(keys('**/*.{log,bin}')).toEqual(['raw/d.bin', 'logs/x/y.log (deleted)']);
    expect(keys('a/*')).toEqual(['raw/a/1.csv (deleted)', 'logs/a/1.csv', 'raw/a/2.csv']);
    expect(keys('nothing/**')).toEqual([]);
  });

  it('reports each key’s state and how many versions it has', () => {
    const [a1] = q.find('a/1.csv', { bucket: 'raw' }).items;
    expect(a1).toMatchObject({ bucket: 'raw', key: 'a/1.csv', deleted: true, versionId: '1-dm', versions: 4, run: '20261104T100000Z-cccccc' });
    const [d] = q.find('d.bin').items;
    expect(d).toMatchObject({ deleted: false, size: 5 * MiB, versions: 1, time: at(4, 8) });
  });

  it('filters by bucket, deleted, size, since and at', () => {
    expect(keys('**', { bucket: 'logs' })).toEqual(['logs/a/1.csv', 'logs/x/y.log (deleted)']);
    expect(keys('**', { deleted: true })).toEqual(['raw/a/1.csv (deleted)', 'logs/x/y.log (deleted)']);
    expect(keys('**', { largerThan: 300 })).toEqual(['raw/a/b/4.csv', 'raw/d.bin']);
    expect(keys('**', { largerThan: MiB })).toEqual(['raw/d.bin']);
    // Changes recorded after run 2, and after a wall-clock instant.
    expect(keys('**', { since: { runSeq: runs.r2 } })).toEqual(['raw/a/1.csv (deleted)', 'logs/a/1.csv', 'raw/a/2.csv', 'raw/d.bin', 'logs/x/y.log (deleted)']);
    expect(keys('**', { since: { time: at(4, 6, 30) } })).toEqual(['raw/a/1.csv (deleted)', 'logs/a/1.csv', 'raw/d.bin', 'logs/x/y.log (deleted)']);
    // At run 1 only run 1's keys exist; on Nov 3 at noon a/2.csv was deleted and a/1.csv was its 2nd version.
    expect(keys('**', { at: { runSeq: runs.r1 } })).toEqual(['raw/a/1.csv', 'raw/a/2.csv', 'raw/a/b/3.csv', 'raw/c.txt']);
    expect(keys('*.csv', { at: { time: at(3, 12) }, deleted: true })).toEqual(['raw/a/2.csv (deleted)']);
    expect(q.find('a/1.csv', { bucket: 'raw', at: { time: at(3, 12) } }).items[0]).toMatchObject({ size: 110, versionId: '1-b' });
    // Combined: larger than 100 B, changed after Nov 2, as of Nov 3 noon.
    expect(keys('**', { at: { time: at(3, 12) }, since: { time: at(2, 23) }, largerThan: 100 })).toEqual(['raw/a/1.csv', 'raw/a/b/4.csv']);
  });

  it('pages through equal keys of several buckets without repeats', () => {
    const all = keys('**');
    expect(all).toHaveLength(8);
    for (const limit of [1, 2, 3]) expect(keys('**', {}, limit)).toEqual(all);
  });

  it('refuses a malformed glob as bad usage', () => {
    expect(() => q.find('a/{b')).toThrow(UsageError);
  });
});

describe('ls', () => {
  const view = (prefix: string, cut?: StateCut, limit?: number) =>
    collect((p) => q.ls('raw', prefix, cut, p), limit).map((e) => (e.type === 'prefix' ? `${e.name} ${e.objects} ${e.bytes}` : `${e.name} ${e.bytes}`));

  it('shows the children of a prefix at three instants', () => {
    expect(view('', { runSeq: runs.r1 })).toEqual(['a/ 3 600', 'c.txt 50']);
    expect(view('', { time: at(3, 12) })).toEqual(['a/ 3 810', 'c.txt 50']);
    expect(view('')).toEqual(['a/ 3 910', 'c.txt 50', `d.bin ${5 * MiB}`]);
    expect(view('', { time: at(2, 5, 30) })).toEqual(['a/ 1 100']);
    expect(view('', { time: at(1, 0) })).toEqual([]);
  });

  it('lists inside a prefix, and a prefix without its slash as `aws s3 ls` does', () => {
    expect(view('a/')).toEqual(['a/2.csv 210', 'a/b/ 2 700']);
    expect(view('a/', { runSeq: runs.r2 })).toEqual(['a/1.csv 110', 'a/b/ 2 700']);
    expect(view('a')).toEqual(['a/ 3 910']);
    expect(view('a/b/', { runSeq: runs.r1 })).toEqual(['a/b/3.csv 300']);
    expect(view('zzz/')).toEqual([]);
  });

  it('gives each entry its newest time and an object its version', () => {
    const entries = q.ls('raw', '').items;
    expect(entries[0]).toEqual({ type: 'prefix', name: 'a/', objects: 3, bytes: 910, time: at(4, 6) });
    expect(entries[1]).toMatchObject({ type: 'object', name: 'c.txt', versionId: 'c-a', storageClass: 'STANDARD_IA', time: at(2, 8) });
  });

  it('pages by entry, skipping whole sub-prefixes', () => {
    for (const limit of [1, 2]) expect(view('', undefined, limit)).toEqual(view(''));
    expect(view('a/', undefined, 1)).toEqual(['a/2.csv 210', 'a/b/ 2 700']);
    // Children that do not exist at the cut (d.bin not yet, a/2.csv deleted) make pages shorter, never end the listing.
    expect(view('', { time: at(3, 12) }, 1)).toEqual(['a/ 3 810', 'c.txt 50']);
    expect(view('a/', { runSeq: runs.r2 }, 1)).toEqual(['a/1.csv 110', 'a/b/ 2 700']);
    const pages = [q.ls('raw', 'a/', { runSeq: runs.r2 }, { limit: 1 })];
    while (pages.at(-1)!.next !== null) pages.push(q.ls('raw', 'a/', { runSeq: runs.r2 }, { limit: 1, after: pages.at(-1)!.next }));
    expect(pages.map((p) => p.items.map((e) => e.name))).toEqual([['a/1.csv'], [], ['a/b/']]);
  });

  it('counts characters, not UTF-16 units, when cutting names after a non-BMP prefix', () => {
    const seq = cat.beginRun({ id: 'emoji', group: 'g', started: at(20, 0), host: 'h' });
    cat.transaction(() =>
      cat.insertVersions(seq, [
        { bucket: 'raw', key: '😀/x/1', versionId: 'e1', deleteMarker: false, size: 1, etag: 'e', lastModified: 1, validFrom: 1, blobs: [] },
        { bucket: 'raw', key: '😀/é', versionId: 'e2', deleteMarker: false, size: 2, etag: 'e', lastModified: 1, validFrom: 1, blobs: [] },
      ]),
    );
    expect(view('😀/')).toEqual(['😀/x/ 1 1', '😀/é 2']);
  });
});

describe('diff', () => {
  it('counts added, changed and deleted keys with their bytes between two runs', () => {
    expect(q.diffSummary({ runSeq: runs.r1 }, { runSeq: runs.r3 }, { buckets: ['raw'] })).toEqual({
      added: { objects: 2, bytes: 400 + 5 * MiB },
      changed: { objects: 1, bytes: 210, bytesBefore: 200 },
      rewritten: { objects: 0, bytes: 0 },
      deleted: { objects: 1, bytes: 100 },
      buckets: ['raw'],
    });
    expect(q.diffSummary({ runSeq: runs.r1 }, { runSeq: runs.r2 }, { buckets: ['raw'] })).toEqual({
      added: { objects: 1, bytes: 400 },
      changed: { objects: 1, bytes: 110, bytesBefore: 100 },
      rewritten: { objects: 0, bytes: 0 },
      deleted: { objects: 1, bytes: 200 },
      buckets: ['raw'],
    });
  });

  it('lists the keys behind the summary, paged', () => {
    const details = (limit: number) => collect((p) => q.diffDetails({ runSeq: runs.r1 }, { runSeq: runs.r3 }, {}, p), limit);
    const all = details(1000);
    // Runs 4 and 5 (bucket logs) came after run 3: nothing changed there.
    expect(all.map((d) => `${d.change} ${d.bucket}/${d.key}`)).toEqual(['deleted raw/a/1.csv', 'changed raw/a/2.csv', 'added raw/a/b/4.csv', 'added raw/d.bin']);
    expect(all[1]).toEqual({
      change: 'changed',
      bucket: 'raw',
      key: 'a/2.csv',
      before: { versionId: '2-a', size: 200, etag: `"etag-a/2.csv-${at(2, 6)}"`, time: at(2, 6) },
      after: { versionId: '2-b', size: 210, etag: `"etag-a/2.csv-${at(4, 6)}"`, time: at(4, 6) },
      deletedAt: null,
    });
    // Deleted: when the delete marker came (day 4, 07:00), not when its last data was written.
    expect(all[0]).toMatchObject({ before: { size: 100, versionId: '1-a' }, after: null, deletedAt: at(4, 7) });
    expect(all[2]).toMatchObject({ before: null, after: { size: 400 } });
    for (const limit of [1, 2, 3]) expect(details(limit)).toEqual(all);
  });

  it('takes instants, a prefix, a group, and works backwards', () => {
    const s = q.diffSummary({ time: at(3, 12) }, { time: at(30, 0) }, { prefix: 'a/' });
    expect(s.buckets).toEqual(['logs', 'raw']);
    expect([s.added, s.changed, s.deleted]).toEqual([
      { objects: 2, bytes: 220 }, // raw a/2.csv back, logs a/1.csv
      { objects: 0, bytes: 0, bytesBefore: 0 },
      { objects: 1, bytes: 110 }, // raw a/1.csv
    ]);
    // Group logs: only the keys its runs recorded (bucket list from the catalog).
    const logs = q.diffSummary({ runSeq: runs.r3 }, { runSeq: runs.r5 }, { group: 'logs' });
    expect(logs).toEqual({
      added: { objects: 1, bytes: 10 },
      changed: { objects: 0, bytes: 0, bytesBefore: 0 },
      rewritten: { objects: 0, bytes: 0 },
      deleted: { objects: 0, bytes: 0 },
      buckets: ['logs'],
    });
    const back = q.diffSummary({ runSeq: runs.r2 }, { runSeq: runs.r1 }, { buckets: ['raw'] });
    expect([back.added.objects, back.deleted.objects, back.changed.objects]).toEqual([1, 1, 1]);
    expect(q.diffSummary({ runSeq: runs.r3 }, { runSeq: runs.r3 }).changed.objects + q.diffSummary({ runSeq: runs.r3 }, { runSeq: runs.r3 }).added.objects).toBe(0);
  });
});

describe('calendar', () => {
  it('puts every run on its local day, with its status and failures', () => {
    const cal = q.calendar('2026-11');
    expect(cal.days).toHaveLength(30);
    expect(cal.timeZone).toBe('UTC');
    const busy = cal.days.filter((d) => d.runs.length > 0).map((d) => [d.date, d.runs.map((r) => `${r.status}:${r.group}`)]);
    expect(busy).toEqual([
      ['2026-11-02', ['complete:finance']],
      ['2026-11-03', ['partial:finance']],
      ['2026-11-04', ['complete:finance', 'failed:logs']],
      ['2026-11-10', ['interrupted:logs']],
    ]);
    expect(cal.days[2]!.runs[0]).toMatchObject({ id: '20261103T100000Z-bbbbbb', objectsFailed: 2, started: at(3, 10), finished: at(3, 10, 5) });
    expect(q.calendar('2026-11', 'logs').days.flatMap((d) => d.runs.map((r) => r.id))).toEqual(['20261104T180000Z-dddddd', '20261110T100000Z-eeeeee']);
    expect(q.calendar('2026-10').days.every((d) => d.runs.length === 0)).toBe(true);
    expect(() => q.calendar('2026-13')).toThrow(UsageError);
  });

  it('renders a month grid with a legend (NO_COLOR)', () => {
    expect(renderCalendar(q.calendar('2026-11'), { color: false })).toMatchInlineSnapshot(`
      "November 2026  all groups  (days in UTC time)

      Mo     Tu     We     Th     Fr     Sa     Su
                                                 1
       2 ●    3 ◐    4 ●✕   5      6      7      8
       9     10 ✕   11     12     13     14     15
      16     17     18     19     20     21     22
      23     24     25     26     27     28     29
      30

      ● complete   ◐ partial (some objects failed)   ✕ failed or interrupted   ○ running

      5 runs: 2 complete, 1 partial, 1 failed, 1 interrupted
        2026-11-03 10:00:00Z  partial      20261103T100000Z-bbbbbb  finance  2 objects failed
        2026-11-04 18:00:00Z  failed       20261104T180000Z-dddddd  logs
        2026-11-10 10:00:00Z  interrupted  20261110T100000Z-eeeeee  logs
      (details: \`lakeguard runs show <id> --failures\`)"
    `);
  });

  it('colours the marks only when asked', () => {
    const coloured = renderCalendar(q.calendar('2026-11'), { color: true, today: '2026-11-04' });
    expect(coloured).toContain('\x1b[32m●\x1b[0m');
    expect(coloured).toContain('\x1b[33m◐\x1b[0m');
    expect(coloured).toContain('\x1b[31m✕\x1b[0m');
    expect(coloured).toContain('\x1b[7m 4\x1b[0m');
  });
});

describe('runShow and failures', () => {
  it('counts what a run recorded and lists its failures in order, paged', () => {
    const d = q.runShow('20261103T1000')!;
    expect(d).toMatchObject({ versionsRecorded: 3, deleteMarkersRecorded: 1, bytesRecorded: 510, failures: 2 });
    expect(d.run).toMatchObject({ seq: runs.r2, status: 'partial', counters: { objectsFailed: 2 } });
    expect(q.runShow(String(runs.r3))!.versionsRecorded).toBe(4);
    expect(q.runShow('nope')).toBeUndefined();
    const failures = collect((p) => q.failures(runs.r2, p), 1);
    expect(failures.map((f) => [f.key, f.code])).toEqual([
      ['a/locked.csv', 'AccessDenied'],
      ['a/with,comma "quoted".csv', 'NotFound'],
    ]);
    expect(q.failures(runs.r1).items).toEqual([]);
  });

  it('counts the keys a run changed as diff counts them, however many versions it recorded', () => {
    // Run 3 recorded four versions: a/1.csv twice (a new version, then a delete marker),
    // a/2.csv back after its delete marker, and the new d.bin.
    const r3 = q.runShow(String(runs.r3))!;
    const diff = q.diffSummary({ runSeq: runs.r2 }, { runSeq: runs.r3 });
    expect(r3.changes).toEqual({ ...diff, buckets: [] });
    expect([r3.changes!.added.objects, r3.changes!.changed.objects, r3.changes!.deleted.objects]).toEqual([2, 0, 1]);
    // Past the bound the keys are not counted (null), never counted partly.
    expect(q.runShow(String(runs.r3), 3)!.changes).toBeNull();
    expect(q.runShow(String(runs.r3), 4)!.changes).toEqual(r3.changes);
    // Run 2 over the catalog before it (run 1): a/1.csv changed, a/2.csv deleted, a/b/4.csv added.
    expect(q.runShow(String(runs.r2))!.changes).toEqual({ ...q.diffSummary({ runSeq: runs.r1 }, { runSeq: runs.r2 }), buckets: [] });
  });

  it('names the run before it in the catalog for `diff`, also when a forgotten run left a gap', () => {
    expect(q.runShow(String(runs.r3))!.previousSeq).toBe(runs.r2);
    expect(q.runShow(String(runs.r1))!.previousSeq).toBeNull();
    // What forget does to a run of the catalog: its rows go (run 3's changes are then counted against run 1).
    for (const table of ['versions', 'failures']) sqlite(cat).prepare(`DELETE FROM ${table} WHERE run = ?`).run(runs.r2);
    sqlite(cat).prepare('DELETE FROM runs WHERE seq = ?').run(runs.r2);
    expect(q.runShow(String(runs.r3))!.previousSeq).toBe(runs.r1);
  });

  it('lists the versions a run recorded with what each did to its key, paged', () => {
    const versions = collect((p) => q.runVersions(runs.r3, p), 1);
    expect(versions.map((v) => `${v.change} ${v.key} ${v.versionId}`)).toEqual(['changed a/1.csv 1-c', 'deleted a/1.csv 1-dm', 'added a/2.csv 2-b', 'added d.bin d-a']);
    expect(versions[1]).toMatchObject({ bucket: 'raw', deleteMarker: true, etag: null, time: at(4, 7) });
    expect(collect((p) => q.runVersions(runs.r3, p), 1000)).toEqual(versions);
    // A delete marker over a key already absent changes nothing.
    expect(collect((p) => q.runVersions(runs.r5, p), 10).map((v) => v.change)).toEqual(['deleted']);
  });
});

describe('query plans stay indexed', () => {
  const plan = (sql: string, params: Record<string, unknown>) =>
    (sqlite(cat).prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail).join('\n');

  it('find pushes the glob’s literal prefix into an index range; ls and versions seek by key', () => {
    expect(sqlite(cat).prepare("SELECT 1 FROM sqlite_master WHERE name = 'objects_by_key'").get()).toBeUndefined();
    q.find('x/**'); // the first find across buckets creates the index it needs
    sqlite(cat).exec('ANALYZE'); // the worst case: statistics that could tempt the planner into a scan
    expect(sqlite(cat).prepare("SELECT sql FROM sqlite_master WHERE name = 'objects_by_key'").pluck().get()).toMatch(/ON objects \(key\)/);
    const find = plan(
      `SELECT o.id FROM objects o INDEXED BY objects_by_key JOIN versions v ON v.id = (SELECT id FROM versions WHERE object = o.id ORDER BY valid_from DESC, id DESC LIMIT 1)
       WHERE o.key >= @lo AND o.key < @hi ORDER BY o.key, o.id LIMIT 10`,
      { lo: 'a/', hi: 'a0' },
    );
    expect(find).toMatch(/SEARCH o USING (COVERING )?INDEX objects_by_key \(key>\? AND key<\?\)/);
    expect(find).not.toMatch(/SCAN/);
    const ls = plan(
      `SELECT o.id FROM objects o JOIN versions v ON v.id = (SELECT id FROM versions WHERE object = o.id AND valid_from <= 5 ORDER BY valid_from DESC, id DESC LIMIT 1)
       WHERE o.bucket = (SELECT id FROM buckets WHERE name = @b) AND o.key >= @lo AND o.key < @hi`,
      { b: 'raw', lo: 'a/', hi: 'a0' },
    );
    expect(ls).toMatch(/SEARCH o USING (COVERING )?INDEX sqlite_autoindex_objects_1 \(bucket=\? AND key>\? AND key<\?\)/);
    expect(ls).toMatch(/SEARCH versions USING (COVERING )?INDEX versions_by_object \(object=\? AND valid_from<\?\)/);
    expect(ls).not.toMatch(/SCAN/);
  });
});

describe('globLiteralPrefix', () => {
  it.each([
    ['table=x/**', 'table=x/'],
    ['a/b*.csv', 'a/b'],
    ['a/b/', 'a/b/'],
    ['/top*', 'top'],
    ['a/*', 'a/'],
    ['a\\*b/c', 'a*b/c'],
    ['a/{b,c}/**', 'a/'],
    ['a/[xy]', 'a/'],
    // matches at any depth, so no prefix
    ['*.crc', ''],
    ['name.txt', ''],
    ['_temporary/', ''],
    ['a/{b,}', ''],
    ['a{x,/y}', ''],
    ['**/a/b', ''],
    ['{a,b}/c', ''],
  ])('%s → %j', (glob, prefix) => {
    expect(globLiteralPrefix(glob)).toBe(prefix);
  });

  it('never excludes a key the glob matches (brute force over small keys)', () => {
    const globs = ['a/*', 'a/b/', 'a/{b,}', 'ab', 'a/**', '/a', 'a\\/b', 'a/{b,c/d}', 'a/[b]'];
    const alphabet = ['a', 'b', 'c', 'd', '/'];
    const keys: string[] = [''];
    for (let len = 1; len <= 5; len++) for (const k of keys.filter((x) => x.length === len - 1)) for (const ch of alphabet) keys.push(k + ch);
    for (const glob of globs) {
      const re = compileGlob(glob);
      const prefix = globLiteralPrefix(glob);
      for (const key of keys) if (re.test(key)) expect(key.startsWith(prefix), `${glob} matches ${key} outside ${prefix}`).toBe(true);
    }
  });
});

describe('upperBound', () => {
  it('is the least string above every string with the prefix, in UTF-8 order', () => {
    expect(upperBound('')).toBeNull();
    expect(upperBound('a/')).toBe('a0');
    expect(upperBound('a\u{10FFFF}')).toBe('b');
    expect(upperBound('\u{D7FF}')).toBe('\u{E000}');
    expect(upperBound('\u{FFFF}')).toBe('\u{10000}');
  });
});
