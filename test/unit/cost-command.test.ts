// `lakeguard cost` pinned on a fixed data set: the real CLI backs up a deterministic lake three
// times into a file:// repository, and the report must give the figures that follow from it.
import { readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { prng, tempDir, writeTree } from '../helpers/fixtures.js';

const KIB = 1024;
const MIN = 128 * KIB; // Standard-IA minimum billable object size
const GIB = 1024 ** 3;
const SEAL = 28; // AES-GCM nonce + tag, per blob and per pack header
const ENTRY = 41; // pack header entry

/** Size of a pack of incompressible blobs of these sizes (docs/repository-format.md, packs/). */
const packSize = (blobs: number[]): number => blobs.reduce((a, b) => a + b + SEAL, 0) + (4 + ENTRY * blobs.length + SEAL) + 4;

describe('lakeguard cost on a fixed data set', { timeout: 180_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const env = () => ({ LAKEGUARD_PASSWORD: 'cost-pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache'), TZ: 'UTC' });
  const cli = (args: string[]) => runCli(['--policy', policy, ...args], env());
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const lake = (key: string) => join(dir.path, 'lake', key);
  const put = (key: string, body: Buffer, hoursAgo: number) => {
    writeTree(join(dir.path, 'lake'), { [key]: body });
    const t = (Date.now() - hoursAgo * 3_600_000) / 1000;
    utimesSync(lake(key), t, t);
  };
  const name = (i: number) => `part=0/f${String(i).padStart(3, '0')}.bin`;

  beforeAll(async () => {
    dir = tempDir('cost-cli');
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: lake\n    sources:\n      - path: ./lake\npricing:\n  storage_class: STANDARD_IA\n');
    // Run 1: 100 objects of 4 KiB and one of 200 KiB, all incompressible.
    for (let i = 0; i < 100; i++) put(name(i), prng(i + 1)(4 * KIB), 5);
    put('big.bin', prng(1000)(200 * KIB), 5);
    ok(await cli(['init']));
    ok(await cli(['backup', '--quiet']));
    // Run 2: 10 objects rewritten, 5 added.
    for (let i = 0; i < 10; i++) put(name(i), prng(2000 + i)(4 * KIB), 4);
    for (let i = 0; i < 5; i++) put(`new/n${i}.bin`, prng(3000 + i)(4 * KIB), 4);
    ok(await cli(['backup', '--quiet']));
    // Run 3: 5 objects deleted, nothing new.
    for (let i = 90; i < 95; i++) rmSync(lake(name(i)));
    ok(await cli(['backup', '--quiet']));
  }, 180_000);

  afterAll(() => dir.cleanup());

  /** Bytes of every pack file in the repository, read from disk: what is really stored. */
  const packsOnDisk = (): { count: number; bytes: number } => {
    let count = 0;
    let bytes = 0;
    const root = join(dir.path, 'repo', 'packs');
    for (const sub of readdirSync(root)) {
      for (const file of readdirSync(join(root, sub))) {
        count++;
        bytes += statSync(join(root, sub, file)).size;
      }
    }
    return { count, bytes };
  };

  it('gives per run and per group the objects, bytes, packs and requests of the data set', async () => {
    const r = ok(await cli(['cost', '--json', '--runs-per-day', '1']));
    const runs = r.messages.filter((m) => m.message_type === 'run');
    // Source state after each run, what each run stored, and its requests: PUTs are its packs,
    // one index file and the lock (the manifest holding the counts comes after); GETs the objects it read; LISTs the
    // directories it listed (lake/, part=0/, then also new/) plus the repository's locks/.
    expect(runs.map((m) => [m.sourceObjects, m.sourceBytes, m.objectsNewOrChanged, m.bytesNew, m.bytesStored, m.packsWritten, m.objectsPerPack, m.requests])).toEqual([
      [101, 100 * 4 * KIB + 200 * KIB, 101, 614_400, 100 * (4 * KIB + SEAL) + 200 * KIB + SEAL, 2, 50.5, { put: 4, get: 101, list: 4 }],
      [106, 105 * 4 * KIB + 200 * KIB, 15, 15 * 4 * KIB, 15 * (4 * KIB + SEAL), 2, 7.5, { put: 4, get: 15, list: 5 }],
      [101, 100 * 4 * KIB + 200 * KIB, 0, 0, 0, 1, 0, { put: 3, get: 0, list: 5 }],
    ]);

    const group = r.messages.find((m) => m.message_type === 'group') as Record<string, any>;
    const disk = packsOnDisk();
    expect(disk.count).toBe(5);
    expect(group).toMatchObject({
      group: 'lake',
      runs: 3,
      source: { objects: 101, bytes: 614_400 },
      // 101 first versions and 15 new ones; 5 delete markers.
      retained: { versions: 116, bytes: 115 * 4 * KIB + 200 * KIB, deleteMarkers: 5 },
      // Every pack on disk; 3 index files and 3 manifests.
      repository: { packs: 5, bytes: disk.bytes, metadataObjects: 6 },
    });
  });

  it('gives the same figures on another host, whose catalog learned the packs from the repository', async () => {
    const here = ok(await cli(['cost', '--json', '--runs-per-day', '1']));
    const there = ok(await cli(['--catalog', join(dir.path, 'other-host.db'), 'cost', '--json', '--runs-per-day', '1']));
    const group = (r: CliResult) => r.messages.find((m) => m.message_type === 'group');
    // The record packs too (no version refers to them): their runs' manifests locate them.
    expect(group(there)).toEqual(group(here));
    expect((group(there) as Record<string, any>).repository.packs).toBe(5);
    expect(summaryOf(there).total).toEqual(summaryOf(here).total);
  });

  it('compares the repository with an object-by-object copy in Standard-IA, to the cent and below', async () => {
    const e = summaryOf(ok(await cli(['cost', '--json', '--runs-per-day', '1']))).total;
    expect(e).toMatchObject({ storageClass: 'STANDARD_IA', sourceClass: 'STANDARD', currency: 'USD', runsAveraged: 2 });
    expect(e.schedule).toMatchObject({ basis: 'given', runsPerDay: 1, runsPerMonth: 30 });

    // lakeguard: run 1's data pack (101 blobs, 621,405 bytes) at its size; run 2's data pack
    // (62,511 bytes), three record packs, three index files and three manifests at 128 KiB each.
    const dataPack = packSize([...Array(100).fill(4 * KIB), 200 * KIB]);
    expect(dataPack).toBe(621_405);
    expect(packSize(Array(15).fill(4 * KIB))).toBeLessThan(MIN);
    const lakeguardBillable = dataPack + 10 * MIN;
    expect(e.lakeguard).toMatchObject({ objects: 11, billableBytes: lakeguardBillable });
    expect(e.lakeguard.storagePerMonth).toBeCloseTo((lakeguardBillable / GIB) * 0.0125, 6);
    // Per month: runs 2 and 3 averaged (3.5 PUT, 7.5 GET, 5 LIST), 30 of them.
    expect(e.lakeguard.requestsPerMonth).toEqual({ put: 105, get: 225, list: 150 });
    expect(e.lakeguard.requestCostPerMonth).toBeCloseTo((105 * 0.01 + 225 * 0.0004 + 150 * 0.005) / 1000, 6); // $0.00189
    expect(e.lakeguard.firstCopy.cost).toBeCloseTo((4 * 0.01 + 101 * 0.0004 + 4 * 0.005) / 1000, 6);

    // Copy: 116 versions, 115 of them under 128 KiB (billed as 128 KiB), one of 200 KiB.
    const copyBillable = 115 * MIN + 200 * KIB;
    expect(e.copy).toMatchObject({ objects: 116, billableBytes: copyBillable });
    expect(e.copy.storagePerMonth).toBeCloseTo((copyBillable / GIB) * 0.0125, 6); // $0.000178
    // One COPY per new or changed object: (15 + 0) / 2 × 30 = 225, the same 150 LISTs.
    expect(e.copy.requestsPerMonth).toEqual({ put: 225, get: 0, list: 150 });
    expect(e.copy.requestCostPerMonth).toBeCloseTo((225 * 0.01 + 150 * 0.005) / 1000, 6); // $0.003
    expect(e.copy.firstCopy).toMatchObject({ put: 101, get: 0, list: 4 });
    expect(e.copy.firstCopy.cost).toBeCloseTo((101 * 0.01 + 4 * 0.005) / 1000, 6);
    const copyTotal = (copyBillable / GIB) * 0.0125 + (225 * 0.01 + 150 * 0.005) / 1000;
    const lakeguardTotal = (lakeguardBillable / GIB) * 0.0125 + (105 * 0.01 + 225 * 0.0004 + 150 * 0.005) / 1000;
    expect(e.savingsPerMonth).toBeCloseTo(copyTotal - lakeguardTotal, 6); // $0.001265
  });

  it('prints the comparison as a small table, and observes the schedule when not told', async () => {
    const t = ok(await cli(['cost']));
    const text = t.stdout;
    expect(text).toMatch(/^group lake: 3 runs$/m);
    expect(text).toMatch(/^ {2}source now {3}101 objects, 600 KiB /m);
    expect(text).toMatch(/^ {2}retained {5}116 versions, 660 KiB \(and 5 delete markers\)$/m);
    // The packs' size on disk varies by some 100 bytes from run to run (record packs carry
    // times), which can cross a KiB boundary: read it from the disk, not a constant.
    const disk = packsOnDisk();
    expect(disk.bytes).toBeGreaterThan(660 * KIB);
    expect(disk.bytes).toBeLessThan(690 * KIB);
    expect(text).toMatch(new RegExp(`^ {2}repository {3}5 packs, ${Math.round(disk.bytes / KIB)} KiB, 23\\.2 versions per pack; 6 index files and run manifests$`, 'm'));
    // Three runs within a day are taken as 3 a day: 90 a month.
    expect(text).toMatch(/Assumes 3\.00 runs a day \(3 in the last 1\.0 days\), 90\.0 runs a 30-day month/);
    const rows = text.slice(text.indexOf('Estimated cost per month')).split('\n');
    expect(rows.slice(0, 10)).toEqual([
      'Estimated cost per month, group lake, stored in STANDARD_IA (USD)',
      '                        lakeguard  copy per object',
      'objects stored                 11              116',
      'billable size            1.84 MiB         14.6 MiB',
      'storage (GB-month)          0.002            0.014',
      'storage per month        <$0.0001          $0.0002',
      // 90 runs: lakeguard (315 PUT × 0.01 + 765 GET × 0.0004 + 450 LIST × 0.005) / 1,000; copy (675 × 0.01 + 450 × 0.005) / 1,000.
      'requests per month        $0.0057          $0.0090',
      'total per month           $0.0057          $0.0092',
      'first full copy (once)    $0.0001          $0.0010',
      'lakeguard costs 62% of copying object by object ($0.0035 less per month)',
    ]);
  });

  it('prices another class on request: Standard has no minimum size', async () => {
    const e = summaryOf(ok(await cli(['cost', '--json', '--class', 'STANDARD', '--runs-per-day', '1']))).total;
    expect(e.storageClass).toBe('STANDARD');
    expect(e.lakeguard.billableBytes).toBe(packsOnDisk().bytes);
    expect(e.copy.billableBytes).toBe(115 * 4 * KIB + 200 * KIB);
    expect(e.copy.requestCostPerMonth).toBeCloseTo((225 * 0.005 + 150 * 0.005) / 1000, 6);
  });

  it('refuses an unknown group, class or schedule with exit 2', async () => {
    const group = await cli(['cost', '--group', 'nope']);
    expect(group.code).toBe(2);
    expect(group.stderr).toMatch(/no runs of group "nope" in the catalog\n {2}hint: groups with runs: lake/);
    const cls = await cli(['cost', '--class', 'ONEZONE_IA']);
    expect(cls.code).toBe(2);
    expect(cls.stderr).toMatch(/--class "ONEZONE_IA": no prices for this storage class\n {2}hint: known: STANDARD, STANDARD_IA, GLACIER_IR, INTELLIGENT_TIERING, GLACIER, DEEP_ARCHIVE/);
    const rate = await cli(['cost', '--runs-per-day', 'daily']);
    expect(rate.code).toBe(2);
    expect(rate.stderr).toMatch(/--runs-per-day "daily": expected a number of runs a day/);
  });
});

describe('lakeguard cost with two groups', { timeout: 180_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const cli = (args: string[]) => runCli(['--policy', policy, ...args], { LAKEGUARD_PASSWORD: 'cost-pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('cost-groups');
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: a\n    sources:\n      - path: ./a\n  - name: b\n    sources:\n      - path: ./b\n');
    for (let i = 0; i < 3; i++) writeTree(join(dir.path, 'a'), { [`x${i}.bin`]: prng(10 + i)(KIB) });
    for (let i = 0; i < 7; i++) writeTree(join(dir.path, 'b'), { [`y${i}.bin`]: prng(20 + i)(2 * KIB) });
    expect((await cli(['init'])).code).toBe(0);
    expect((await cli(['backup', '--quiet'])).code).toBe(0);
  }, 180_000);

  afterAll(() => dir.cleanup());

  it('reports each group, then all of them with the whole repository as storage', async () => {
    const r = await cli(['cost', '--json', '--runs-per-day', '2']);
    expect(r.code, r.stderr).toBe(0);
    const groups = r.messages.filter((m) => m.message_type === 'group') as Record<string, any>[];
    expect(groups.map((g) => [g.group, g.source, g.retained.versions])).toEqual([
      ['a', { objects: 3, bytes: 3 * KIB }, 3],
      ['b', { objects: 7, bytes: 14 * KIB }, 7],
    ]);
    const total = summaryOf(r).total;
    // Standard (the default): the copy stores the bytes as they are, lakeguard every pack once.
    let packBytes = 0;
    for (const sub of readdirSync(join(dir.path, 'repo', 'packs'))) for (const f of readdirSync(join(dir.path, 'repo', 'packs', sub))) packBytes += statSync(join(dir.path, 'repo', 'packs', sub, f)).size;
    expect(total).toMatchObject({ storageClass: 'STANDARD', copy: { objects: 10, billableBytes: 17 * KIB }, lakeguard: { bytes: packBytes, billableBytes: packBytes } });
    expect(total.schedule.runsPerDay).toBe(4);
    // One run each, both first copies: 3 + 7 COPYs once, nothing recurring yet.
    expect(total.copy.firstCopy.put).toBe(10);
    expect(total.copy.requestCostPerMonth).toBe(0);
    expect(groups[0]!.estimate.copy.firstCopy.put + groups[1]!.estimate.copy.firstCopy.put).toBe(10);

    const text = await cli(['cost']);
    expect(text.stdout).toMatch(/^Estimated cost per month, all 2 groups \(storage: the whole repository, .* in \d+ packs\), stored in STANDARD \(USD\)$/m);
    const one = await cli(['cost', '--group', 'b', '--json']);
    expect(one.messages.filter((m) => m.message_type === 'group').map((m) => m.group)).toEqual(['b']);
    expect(summaryOf(one).groups).toEqual(['b']);
  });
});
