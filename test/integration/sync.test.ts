// Two hosts, one S3 repository on the real server: host B's catalog (an older cache) follows
// what host A backs up, forgets and prunes, before it answers; --offline answers from the
// stale cache and says so; a sync with nothing new costs at most four LIST requests.
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { hashTree, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();
const sha = (b: string) => createHash('sha256').update(b).digest('hex');

/** Run ids from `runs --json` (a JSON array, or line-delimited messages). */
function runIds(r: CliResult): string[] {
  const text = r.stdout.trim();
  const rows = (text.startsWith('[') ? JSON.parse(text) : r.messages.filter((m) => m.message_type === 'run')) as { id: string }[];
  return rows.map((x) => x.id);
}

describe('the catalog follows the repository (two hosts)', { timeout: 180_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  const env = (host: string, extra: Record<string, string> = {}) => ({ ...testEnv(), LAKEGUARD_PASSWORD: 'sync-it', LAKEGUARD_CACHE_DIR: join(dir.path, host), ...extra });
  const onA = (...args: string[]) => runCli(['--policy', policyFile, ...args], env('host-a'));
  const onB = (...args: string[]) => runCli(['--policy', policyFile, ...args], env('host-b'));
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));

  beforeAll(async () => {
    dir = tempDir('it-sync');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-sync'), createTestBucket('lg-sync-repo')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source], extra: ['    retention: { keep_last: 1 }'] });
    ok(await onA('init'));
  });
  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it("host B answers with host A's newest runs, offline says it is stale, and forget + prune on A reach B", async () => {
    await put('a.json', 'a1');
    await put('b.json', 'b1');
    const first = summaryOf(ok(await onA('backup', '--json'))).runId as string;
    // Host B's cache is filled by its first command (no `catalog rebuild` by hand).
    expect(runIds(ok(await onB('runs', '--json')))).toEqual([first]);

    await put('a.json', 'a2');
    await s3.send(new DeleteObjectCommand({ Bucket: source, Key: 'b.json' }));
    const second = summaryOf(ok(await onA('backup', '--json'))).runId as string;
    await put('c.json', 'c1');
    const third = summaryOf(ok(await onA('backup', '--json'))).runId as string;

    // Offline: the stale answer, and a warning saying so (text and --json); writers refuse.
    const stale = ok(await onB('--offline', 'runs', '--json'));
    expect(runIds(stale)).toEqual([first]);
    expect(JSON.parse(stale.stderr.trim())).toMatchObject({ message_type: 'warning', message: expect.stringMatching(/^offline: catalog .* was not synced with s3:\/\/.*; answers may be stale$/) });
    const staleText = ok(await runCli(['--policy', policyFile, 'runs'], env('host-b', { LAKEGUARD_OFFLINE: '1' })));
    expect(staleText.stderr).toMatch(/^warning: offline: catalog .*answers may be stale\n$/);
    expect(staleText.stdout).not.toContain(third);
    const refused = await onB('--offline', 'backup');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^lakeguard: backup cannot run offline/);

    // Online, B answers from A's newest run: runs, ls, find, restore.
    expect(runIds(ok(await onB('runs', '--json')))).toEqual([first, second, third]);
    const listed = ok(await onB('ls', `s3://${source}/`, '--json')).messages.filter((m) => m.message_type === 'entry');
    expect(listed.map((m) => m.name)).toEqual(['a.json', 'c.json']);
    const found = ok(await onB('find', 'c.json', '--json')).messages.filter((m) => m.key !== undefined);
    expect(found.map((m) => m.key)).toEqual(['c.json']);
    const out = join(dir.path, 'restored');
    ok(await onB('restore', '--to-dir', out, '--quiet'));
    expect(hashTree(out)).toEqual(new Map([['a.json', sha('a2')], ['c.json', sha('c1')]]));

    // Nothing new: at most four LIST requests (runs, forgets, acks, drills), and no GET.
    const idle = summaryOf(ok(await onB('catalog', 'sync', '--json')));
    expect(idle).toMatchObject({ runs: 0, indexFiles: 0, forgets: 0, prunes: 0 });
    expect(idle.requests.list).toBeLessThanOrEqual(4);
    expect(idle.requests.get).toBe(0);

    // Host A forgets (keep_last 1) and prunes; B drops the same runs and versions, and still restores.
    const forgot = summaryOf(ok(await onA('forget', '--json')));
    expect(forgot.runsRemoved).toBe(2);
    const pruned = summaryOf(ok(await onA('prune', '--max-unused', '0%', '--json')));
    expect(pruned.packs.removed + pruned.packs.repacked).toBeGreaterThan(0);
    const synced = summaryOf(ok(await onB('catalog', 'sync', '--json')));
    expect(synced).toMatchObject({ runs: 0, forgets: forgot.documents.length, prunes: 1, damage: [], ok: true });
    expect(runIds(ok(await onB('runs', '--json')))).toEqual([third]);
    const versionsOf = async (run: typeof onA) => ok(await run('versions', `s3://${source}/a.json`, '--json')).messages.filter((m) => m.message_type === 'version').length;
    expect(await versionsOf(onB)).toBe(await versionsOf(onA));
    const again = join(dir.path, 'restored-after-prune');
    ok(await onB('restore', '--to-dir', again, '--quiet'));
    expect(hashTree(again)).toEqual(hashTree(out));
  });
});
