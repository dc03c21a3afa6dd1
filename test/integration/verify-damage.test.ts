// verify of a damaged repository on the real S3 server, through the CLI: a byte flipped in the
// pack that holds the last run's records and a deleted manifest are each named, with the runs
// and the objects they affect (exit 1); `catalog rebuild` then keeps the working catalog, so a
// restore still returns the last run's data.
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IndexDocument, RunManifest } from '../../src/engine/finalize.js';
import { packKey } from '../../src/repository/pack.js';
import { Repository } from '../../src/repository/repository.js';
import { runCli, summaryOf } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy, testS3Store } from '../helpers/s3-env.js';

const s3 = testS3Client();
const PASSWORD = 'verify-damage-password';

describe('verify of a damaged repository on the real S3 server', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policy: string;
  let repo: Repository;
  let runs: string[];
  const cli = (...args: string[]) => runCli(['--policy', policy, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: PASSWORD, LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));

  beforeAll(async () => {
    dir = tempDir('it-verify-damage');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-vd-src'), createTestBucket('lg-vd-repo')]);
    for (let i = 0; i < 10; i++) await put(`t/${i}.json`, JSON.stringify({ i, v: 1 }));
    policy = writeS3Policy(join(dir.path, 'lakeguard.yaml'), { repo: `${repoBucket}/lg`, buckets: [source] });
    expect((await cli('init')).code).toBe(0);
    expect((await cli('backup')).code).toBe(0);
    await put('t/3.json', '{"i":3,"v":2}');
    expect((await cli('backup')).code).toBe(0);
    const store = testS3Store(repoBucket, 'lg/');
    repo = await Repository.open(store, { password: async () => PASSWORD });
    // In the order the runs started: two runs that start within one second have ids that sort
    // by their random part, not by time.
    const started = new Map<string, string>();
    for (const name of await repo.listNames('runs')) started.set(name, (await repo.readDocument<RunManifest>('runs', name)).started);
    runs = [...started.keys()].sort((a, b) => Date.parse(started.get(a)!) - Date.parse(started.get(b)!) || a.localeCompare(b));
    expect(runs).toHaveLength(2);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('names the records pack, the manifest and the objects; rebuild keeps the working catalog', async () => {
    // Flip one byte inside the last run's first record blob.
    const record = (await repo.readDocument<RunManifest>('runs', runs[1]!)).records[0]!;
    let where: { pack: string; offset: number; length: number } | undefined;
    for (const name of await repo.listNames('index')) {
      for (const p of (await repo.readDocument<IndexDocument>('index', name)).packs) {
        const b = p.blobs.find((e) => e[0] === record);
        if (b !== undefined) where = { pack: p.id, offset: b[2], length: b[3] };
      }
    }
    const key = `lg/${packKey(where!.pack)}`;
    const pack = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: repoBucket, Key: key }))).Body!.transformToByteArray());
    pack[where!.offset + (where!.length >> 1)]! ^= 0x01;
    await s3.send(new PutObjectCommand({ Bucket: repoBucket, Key: key, Body: pack }));
    // And delete the first run's manifest.
    await s3.send(new DeleteObjectCommand({ Bucket: repoBucket, Key: `lg/runs/${runs[0]}` }));

    const structure = await cli('verify', '--json');
    expect(structure.code).toBe(1);
    expect(summaryOf(structure).damage).toEqual([
      expect.objectContaining({ what: `runs/${runs[0]}`, runs: [runs[0]], affectedCount: 10, problem: expect.stringMatching(/^missing from the repository/) }),
    ]);

    const read = await cli('verify', '--read-data');
    expect(read.code).toBe(1);
    expect(read.stdout).toContain(`  pack ${where!.pack}: content does not match its name (corrupted); 1 of 1 blobs failed authentication`);
    expect(read.stdout).toMatch(new RegExp(`pack ${where!.pack}: .*\\n    affects runs ${runs[1]}\\n    affects s3://${source}/t/3.json`));
    expect(read.stdout).toContain(`  runs/${runs[0]}: missing from the repository`);

    // The path: a rebuild used to end with fewer versions and restore gave older data.
    const rebuild = await cli('catalog', 'rebuild');
    expect(rebuild.code).toBe(1);
    expect(rebuild.stdout).toMatch(/the new catalog was NOT installed/);
    const out = join(dir.path, 'out');
    const restored = await cli('restore', '--to-dir', out);
    expect(restored.code, restored.stderr).toBe(0);
    expect(readFileSync(join(out, 't/3.json'), 'utf8')).toBe('{"i":3,"v":2}');
  });
});
