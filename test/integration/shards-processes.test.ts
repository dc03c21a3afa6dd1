// Issue 20's "Done when", with the shards as a Kubernetes Indexed Job starts them: three plain
// lakeguard processes with JOB_COMPLETION_INDEX=0..2 and `--shards 3`, the run-set name in
// LAKEGUARD_RUN_SET (what deploy/kubernetes sets from the Job's name), each with its own empty
// HOME as a pod has, on a real Parquet lake in an unversioned bucket of the real S3 server.
//
// Shard 1 dies by SIGKILL the moment its first pack is in the repository (deterministic: the
// kill follows that PUT's answer, not a timer): the run set is `running` with index 1 missing.
// Its retry, a new process with another empty HOME as a retried pod, completes the run set; a
// fresh host then sees ONE run, complete 3/3, every key recorded exactly once, and restores
// the whole bucket byte-identical. A second retry finds its index complete and writes nothing.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, runCli, runCliKilledAfterFirstPack, summaryOf, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { createLake, type S3Lake } from '../helpers/parquet-lake.js';
import { createTestBucket, emptyAndDeleteBucket, testS3Client } from '../helpers/s3-env.js';
import { emptyHome, expectByteIdenticalRestore, hostEnv, listKeys, onHost, runsOf, writeShardsPolicy } from '../helpers/shard-hosts.js';

const s3 = testS3Client();
const RUN_SET = 'lakeguard-backup-29000000';

describe('three shard processes as an Indexed Job runs them, one killed and retried', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repo: string;
  let target: string;
  let policy: string;
  let lake: S3Lake;

  /** Shard I as a pod of the Job: JOB_COMPLETION_INDEX, --shards 3, the run set from the env, its own HOME. */
  const shardArgs = () => ['--policy', policy, 'backup', '--shards', '3', '--json'];
  const shardEnv = (index: number, home: string) => hostEnv(home, { JOB_COMPLETION_INDEX: String(index), LAKEGUARD_RUN_SET: RUN_SET });
  const shard = (index: number, pod: string): Promise<CliResult> => runCli(shardArgs(), shardEnv(index, emptyHome(dir.path, pod)));

  beforeAll(async () => {
    dir = tempDir('it-shards-proc');
    [source, repo, target] = await Promise.all([createTestBucket('lg-shards-lake'), createTestBucket('lg-shards-repo'), createTestBucket('lg-shards-restore')]);
    policy = writeShardsPolicy(join(dir.path, 'policy.yaml'), { repo, bucket: source });
    // About 150 objects, 5 MB of Parquet (and side files), in three ranges of a few packs each.
    lake = await createLake(s3, source, { seed: 20, days: 5 });
    const init = await onHost(policy, emptyHome(dir.path, 'admin'))('init');
    expect(init.code, init.stderr).toBe(0);
  });

  afterAll(async () => {
    await Promise.all([source, repo, target].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('makes one run, complete after the killed shard is retried, restorable byte for byte', async () => {
    const objects = lake.model.files.size;
    expect(objects).toBeGreaterThanOrEqual(120);

    // --- shards 0 and 2 run to their end; shard 1 is killed after its first pack ----------------
    const [first, killed, last] = await Promise.all([
      shard(0, 'pod-0'),
      runCliKilledAfterFirstPack(shardArgs(), shardEnv(1, emptyHome(dir.path, 'pod-1'))),
      shard(2, 'pod-2'),
    ]);
    expect(first.code, first.stderr).toBe(0);
    expect(last.code, last.stderr).toBe(0);
    expect(killed.code, `shard 1 was not killed: ${killed.stdout}\n${killed.stderr}`).toBe(-1);

    const fresh = () => onHost(policy, emptyHome(dir.path, `fresh-${Date.now()}`));
    const running = runsOf(await fresh()('runs', '--json'));
    expect(running).toHaveLength(1);
    expect(running[0]).toMatchObject({ runSet: RUN_SET, status: 'running', shards: { of: 3, complete: 2, missing: [1] } });
    const setId = running[0]!.id as string;

    // --- the engine retries index 1: a new pod, an empty HOME ----------------------------------
    const retry = await shard(1, 'pod-1-retry');
    expect(retry.code, retry.stderr).toBe(0);
    const copied = [first, retry, last].reduce((n, r) => n + (summaryOf(r).counters.objectsNew as number), 0);
    expect(copied).toBe(objects);

    // --- a fresh host: ONE run, complete 3/3 ----------------------------------------------------
    const host = fresh();
    const runs = runsOf(await host('runs', '--json'));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ id: setId, runSet: RUN_SET, status: 'complete', shards: { of: 3, complete: 3, missing: [] } });

    // Every key recorded exactly once over the attempts that count (the killed one has no manifest).
    const attempts = (runs[0]!.shards.attempts as Record<string, any>[]).filter((a) => a.counts);
    expect(attempts.map((a) => a.index).sort()).toEqual([0, 1, 2]);
    const perKey = new Map<string, number>();
    // `runs` read the manifests only (docs/catalog.md "On-demand catalogs"): the whole repository
    // once, then the three read the catalog side by side, offline.
    const whole = await host('catalog', 'sync', '--all', '--quiet');
    expect(whole.code, whole.stderr).toBe(0);
    for (const versions of await Promise.all(attempts.map((a) => host('runs', 'show', a.id as string, '--versions', '--offline', '--json')))) {
      expect(versions.code, versions.stderr).toBe(0);
      for (const v of messagesOf(versions, 'version')) perKey.set(v.key as string, (perKey.get(v.key as string) ?? 0) + 1);
    }
    expect(perKey.size).toBe(objects);
    expect([...perKey].filter(([, n]) => n !== 1)).toEqual([]);

    await expectByteIdenticalRestore(s3, host, { source, target, runId: setId, objects });

    // --- a late retry of a complete index writes nothing and exits 0 ----------------------------
    // (Its lock comes and goes: locks/ is left out.)
    const notLocks = (keys: string[]) => keys.filter((k) => !k.startsWith('lakeguard/locks/'));
    const repoBefore = notLocks(await listKeys(s3, repo));
    const again = await shard(1, 'pod-1-late');
    expect(again.code, again.stderr).toBe(0);
    expect(summaryOf(again).counters?.objectsNew ?? 0).toBe(0);
    expect(notLocks(await listKeys(s3, repo))).toEqual(repoBefore);
  });
});
