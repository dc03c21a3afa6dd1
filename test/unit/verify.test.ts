// `verify` covers every repository object: packs that hold run records, manifests, index
// files, forget documents and key files are checked, and damage names the object, the runs
// and the object versions it affects.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { IndexDocument, RunManifest } from '../../src/engine/finalize.js';
import { verify } from '../../src/engine/verify.js';
import { writeAck } from '../../src/engine/ack.js';
import { newRunId } from '../../src/engine/run-id.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { knownDrills } from '../../src/catalog/drills.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { BlobType, packKey } from '../../src/repository/pack.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { getBytes } from '../../src/storage/types.js';
import { flipByte, locateBlob } from '../helpers/damage.js';
import { initRepo, openCatalog, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';
import { referencedPacks } from '../../src/catalog/verify-queries.js';
import { sqlite } from '../../src/catalog/connection.js';

describe('verify covers every repository object', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let store: FsStore;
  let catalog: Catalog;
  let runs: string[];
  const repoPath = (...parts: string[]) => join(dir.path, 'repo', ...parts);

  beforeEach(async () => {
    dir = tempDir('verify');
    const source = join(dir.path, 'lake');
    const files: Record<string, string> = {};
    for (let i = 0; i < 12; i++) files[`t/part-${i}.json`] = JSON.stringify({ i, text: 'x'.repeat(100 + i) });
    writeTree(source, files);
    store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store, { packSize: 64 * 1024 });
    catalog = openCatalog(dir.path, repo);
    const group: Group = { name: 'lake', sources: [{ kind: 'path', path: source, prefixes: [''], exclude: [] }] };
    const policy: Policy = testPolicy(store.location, [group]);
    const first = await backupGroup({ repo, catalog, policy, group });
    writeFileSync(join(source, 't/part-3.json'), '{"changed":true}');
    writeFileSync(join(source, 't/new.json'), '{"new":true}');
    const second = await backupGroup({ repo, catalog, policy, group });
    runs = [first.runId, second.runId];
  });
  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  it('a clean repository: every object is counted, nothing is damaged; an unreferenced pack is a note', async () => {
    await repo.addPassword('second password', { algorithm: 'scrypt', N: 1024, r: 8, p: 1, salt: Buffer.alloc(16, 1).toString('base64') });
    const orphan = await getBytes(store, packKey(referencedPacks(catalog)[0]!.name));
    // A pack a killed backup left: a copy under another (valid) name, listed by nothing.
    const { sha256Hex } = await import('../../src/repository/config.js');
    const extra = Buffer.concat([orphan, Buffer.alloc(0)]);
    extra[0]! ^= 1;
    const extraId = sha256Hex(extra);
    await store.put(packKey(extraId), extra);
    const report = await verify({ repo, catalog, readData: 1, concurrency: 4 });
    expect(report.damage).toEqual([]);
    expect(report).toMatchObject({ keyFiles: 1, manifests: 2, forgets: 0 });
    expect(report.indexFiles).toBeGreaterThanOrEqual(2);
    expect(report.unreferencedPacks).toEqual({ count: 1, bytes: extra.length, listed: [{ id: extraId, size: extra.length }] });
    expect(report.packsRead).toBe(report.packsChecked);
  });

  it('index entries load without their indexes, which are built once before the comparisons (a sort, not a random insert per blob)', async () => {
    // Built while loading, the index by blob id took one random insert per blob: past SQLite's
    // page cache (about 200,000 blobs) verify's time per blob grew with the repository.
    const tempIndexes = () =>
      sqlite(catalog).prepare("SELECT name FROM temp.sqlite_master WHERE type = 'index' AND tbl_name = 'vfy_entries' ORDER BY name").pluck().all() as string[];
    const entries = () => sqlite(catalog).prepare('SELECT count(*) FROM temp.vfy_entries').pluck().get() as number;
    // Each entry names its pack and index file by a small id, not by two 64-character names.
    const bytesPerEntry = () =>
      sqlite(catalog).prepare('SELECT max(length(CAST(pack AS BLOB)) + length(CAST(file AS BLOB))) FROM temp.vfy_entries').pluck().get() as number;
    const seen: { phase: string; indexes: string[]; entries: number; nameBytes: number }[] = [];
    const report = await verify({
      repo,
      catalog,
      readData: 1,
      concurrency: 4,
      events: (e) => {
        if (e.type === 'phase' && (e.phase === 'list packs' || e.phase === 'check structure')) seen.push({ phase: e.phase, indexes: tempIndexes(), entries: entries(), nameBytes: bytesPerEntry() });
      },
    });
    expect(report.damage).toEqual([]);
    expect(report.blobsRead).toBeGreaterThan(0);
    // Every index file is loaded by 'list packs', and its entries have no index yet.
    expect(seen[0]).toMatchObject({ phase: 'list packs', indexes: [] });
    expect(seen[0]!.entries).toBeGreaterThanOrEqual(14);
    expect(seen[0]!.nameBytes).toBeLessThanOrEqual(4);
  });

  it('a byte flipped in a pack holding run records: --read-data names the pack and the run', async () => {
    const manifest = await repo.readDocument<RunManifest>('runs', runs[1]!);
    const where = await locateBlob(repo, manifest.records[0]!);
    flipByte(repoPath(packKey(where.pack)), where.offset + Math.floor(where.length / 2));

    const report = await verify({ repo, catalog, readData: 1, concurrency: 4 });
    const damage = report.damage.find((d) => d.what === `pack ${where.pack}`);
    expect(damage, JSON.stringify(report.damage)).toBeDefined();
    expect(damage!.problem).toMatch(/blobs failed authentication or their hash check/);
    expect(damage!.runs).toContain(runs[1]);
    // The versions that run recorded are what a rebuild would lose: named.
    expect(damage!.affected.map((a) => a.key)).toEqual(expect.arrayContaining(['t/part-3.json', 't/new.json']));
    expect(damage!.affectedCount).toBeGreaterThanOrEqual(2);
  });

  it('a byte flipped in a runs/ manifest: named with its run', async () => {
    const path = repoPath('runs', runs[0]!);
    flipByte(path, readFileSync(path).length >> 1);
    const report = await verify({ repo, catalog, readData: 1, concurrency: 4 });
    const damage = report.damage.find((d) => d.what === `runs/${runs[0]}`);
    expect(damage, JSON.stringify(report.damage)).toBeDefined();
    expect(damage!.problem).toMatch(/failed authentication/);
    expect(damage!.runs).toEqual([runs[0]]);
    expect(damage!.affectedCount).toBe(12); // the first run recorded 12 versions
  });

  it('run-set plans (runsets/) are read: a sound one counts, a flipped byte and a wrong shape are named', async () => {
    const plan = (name: string, bounds: string[][]) => ({ version: 1, name, shards: 2, created: new Date().toISOString(), host: 'h', groups: { lake: { run: runs[0]!, bounds } } });
    await repo.writeDocument('runsets', 'nightly', plan('nightly', [['lake', 't/part-5.json']]));
    await repo.writeDocument('runsets', 'flipped', plan('flipped', [['lake', 't/part-5.json']]));
    await repo.writeDocument('runsets', 'shapeless', plan('shapeless', []));
    const path = repoPath('runsets', 'flipped');
    flipByte(path, readFileSync(path).length >> 1);

    const report = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    expect(report.runSets).toBe(3);
    expect(report.damage.map((d) => d.what).sort()).toEqual(['runsets/flipped', 'runsets/shapeless']);
    expect(report.damage.find((d) => d.what === 'runsets/flipped')!.problem).toMatch(/failed authentication.*a shard of this run set started now would stop/);
    expect(report.damage.find((d) => d.what === 'runsets/shapeless')!.problem).toMatch(/1 boundaries expected/);
  });

  it('a deleted manifest: the structure check names the run', async () => {
    rmSync(repoPath('runs', runs[1]!));
    const report = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    expect(report.packsRead).toBe(0);
    expect(report.damage).toHaveLength(1);
    expect(report.damage[0]).toMatchObject({ what: `runs/${runs[1]}`, runs: [runs[1]], affectedCount: 2 });
    expect(report.damage[0]!.problem).toMatch(/^missing from the repository \(the catalog knows run /);
    expect(report.damage[0]!.affected.map((a) => a.key).sort()).toEqual(['t/new.json', 't/part-3.json']);
  });

  it('a deleted forget document, ack or drill record the catalog holds is named with what a rebuild would undo', async () => {
    const id = newRunId(new Date());
    await repo.writeDocument('forgets', `${id}-0001`, { version: 1, id, part: 1, parts: 1, created: new Date().toISOString(), host: 'h', forgotten: [], dropped: [] });
    const drill = newRunId(new Date());
    await repo.writeDocument('drills', drill, { version: 1, id: drill, host: 'h', created: new Date().toISOString(), scope: 'group:lake', state: 'now', run: null, ok: false, objects: { selected: 1, sampled: 1, restored: 0, verified: 0, damaged: 1 }, bytes: 0, rtoMs: 0, verifyMs: 0, durationMs: 0, rpoMs: null, damaged: [] });
    await syncCatalog({ repo, catalog });
    expect(catalog.knownForgets().has(`${id}-0001`)).toBe(true);
    expect(knownDrills(catalog).has(drill)).toBe(true);
    const ack = await writeAck(repo, catalog, { run: runs[0]!, host: 'h', created: new Date(), by: null, note: null, incident: false });
    expect((await verify({ repo, catalog, readData: 0, concurrency: 4 })).damage).toEqual([]);
    rmSync(repoPath('forgets', `${id}-0001`));
    rmSync(repoPath('acks', ack.id));
    rmSync(repoPath('drills', drill));
    const report = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    expect(report.damage.map((d) => [d.what, d.problem])).toEqual([
      [`forgets/${id}-0001`, 'missing from the repository (the catalog applied it); a catalog rebuild would bring back the runs and versions it removed; restore it from a copy of the repository'],
      [`acks/${ack.id}`, `missing from the repository (the catalog holds it); a catalog rebuild would show run ${runs[0]} as unacknowledged; restore it from a copy of the repository`],
      [`drills/${drill}`, 'missing from the repository (the catalog holds it); a catalog rebuild would not show the drill; restore it from a copy of the repository'],
    ]);
  });

  it('an object outside the directories of the format is noted, not taken as damage', async () => {
    await store.put('junk', Buffer.from('x'));
    await store.put('runs2/20261207T000000Z-abcdef', Buffer.from('x'));
    const report = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    expect(report.damage).toEqual([]);
    expect(report.notes).toEqual([
      'junk is not part of the repository format (nothing reads it; lakeguard did not write it)',
      'runs2/ is not part of the repository format (nothing reads it; lakeguard did not write it)',
    ]);
  });

  it('a deleted index file is named, with the versions only it located', async () => {
    const hex = (await repo.readDocument<RunManifest>('runs', runs[1]!)).records[0]!;
    const { indexFile } = await locateBlob(repo, hex);
    rmSync(repoPath('index', indexFile));
    const report = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    const what = report.damage.map((d) => d.what);
    expect(what).toContain(`index/${indexFile}`);
    expect(report.damage.find((d) => d.what === `index/${indexFile}`)!.problem).toMatch(/^missing from the repository \(the catalog read it\); \d+ blobs it listed are in no other index file/);
    // The run's record blob is now in no index file: the run is named too.
    expect(report.damage.find((d) => d.what === `runs/${runs[1]}`)!.problem).toMatch(`record blob ${hex} is in no index file`);
    // Verified again before a backup writes a new index file: the blobs still wait for one; the
    // file is not named again, nor said to have every blob in another index file.
    const again = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    expect(again.damage.map((d) => d.what)).toEqual(['catalog', `runs/${runs[1]}`]);
    expect(again.damage[0]!.problem).toMatch(/blobs catalogued versions need are in no index file of the repository \(a backup stopped before writing one, or one that listed them is gone\); .*the next backup or prune writes them into a new index file$/);
    expect(again.notes).toEqual([]);
  });

  it('an index entry outside its pack is named (structure check)', async () => {
    const hex = (await repo.readDocument<RunManifest>('runs', runs[0]!)).records[0]!;
    const { indexFile } = await locateBlob(repo, hex);
    const doc = await repo.readDocument<IndexDocument>('index', indexFile);
    const pack = doc.packs.find((p) => p.blobs.some((b) => b[0] === hex))!;
    pack.blobs.find((b) => b[0] === hex)![2] = pack.size;
    const rewritten = await repo.writeDocument('index', null, doc);
    await store.delete(`index/${indexFile}`);
    const report = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    expect(report.damage.find((d) => d.what === `index/${rewritten}`)?.problem).toBe(`1 entries of pack ${pack.id} lie outside the pack (the index file is inconsistent)`);
  });

  it('a pack only index files know (records only) that is missing, a damaged forget document and key file are named', async () => {
    // Find a pack that holds record blobs and no data blob a version needs.
    let recordsOnly: string | undefined;
    for (const name of await repo.listNames('index')) {
      for (const p of (await repo.readDocument<IndexDocument>('index', name)).packs) {
        if (p.blobs.every((b) => b[1] === BlobType.records)) recordsOnly = p.id;
      }
    }
    expect(recordsOnly).toBeDefined();
    const victim = recordsOnly!;
    rmSync(repoPath(packKey(victim)));
    await repo.writeDocument('forgets', '20261201T030000Z-9ab1c2-0001', { version: 1, forgotten: [], dropped: [] });
    flipByte(repoPath('forgets', '20261201T030000Z-9ab1c2-0001'), 20);
    await store.put(`keys/${'f'.repeat(64)}`, Buffer.from('{"not":"a key"}'));
    const report = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    const what = report.damage.map((d) => d.what);
    expect(what).toEqual(expect.arrayContaining([`pack ${victim}`, 'forgets/20261201T030000Z-9ab1c2-0001', `keys/${'f'.repeat(64)}`]));
    expect(report.damage.find((d) => d.what === `pack ${victim}`)!.problem).toMatch(/^missing from the repository \(listed by index\//);
    expect(report.damage.find((d) => d.what === `pack ${victim}`)!.runs.length).toBeGreaterThan(0);
  });
});
