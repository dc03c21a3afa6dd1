// Issue 20's "Done when" on a real scheduler: a one-node Slurm cluster of our own
// (scripts/slurm.sh) runs the shards of one backup as an array job, `sbatch --array=0-3`, each
// task a plain `lakeguard backup`. lakeguard takes the shard index
// (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN), the count (SLURM_ARRAY_TASK_COUNT) and the
// run-set name (slurm-<cluster>-<array job id>) from the environment Slurm gives the task, on
// a real Parquet lake in a versioned bucket of the real S3 server. The tasks share one HOME, as
// a cluster's HOME over NFS is shared: each keeps its key range in its own catalog file beside
// the HOME's catalog.db, which no shard makes or narrows. A fresh host then sees ONE run,
// complete 4/4, and restores the whole bucket byte-identical.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.js';
import { createLake, type S3Lake } from '../helpers/parquet-lake.js';
import { createTestBucket, emptyAndDeleteBucket, testS3Client } from '../helpers/s3-env.js';
import { emptyHome, expectByteIdenticalRestore, hostEnv, onHost, runsOf, writeShardsPolicy } from '../helpers/shard-hosts.js';
import { startSlurm, type SlurmCluster } from '../helpers/slurm.js';

const s3 = testS3Client();
const BIN = fileURLToPath(new URL('../../bin/lakeguard', import.meta.url));

describe('the shards of one backup as a Slurm array job', () => {
  let dir: ReturnType<typeof tempDir>;
  let cluster: SlurmCluster;
  let source: string;
  let repo: string;
  let target: string;
  let policy: string;
  let lake: S3Lake;

  beforeAll(async () => {
    dir = tempDir('it-shards-slurm');
    [cluster, source, repo, target] = await Promise.all([
      startSlurm(),
      createTestBucket('lg-slurm-lake', { versioning: true }),
      createTestBucket('lg-slurm-repo'),
      createTestBucket('lg-slurm-restore'),
    ]);
    policy = writeShardsPolicy(join(dir.path, 'policy.yaml'), { repo, bucket: source });
    lake = await createLake(s3, source, { seed: 2020, days: 4 });
    const init = await onHost(policy, emptyHome(dir.path, 'admin'))('init');
    expect(init.code, init.stderr).toBe(0);
  });

  afterAll(async () => {
    await cluster?.stop();
    await Promise.all([source, repo, target].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('makes one run of four shards that a fresh host restores byte for byte', async () => {
    const objects = lake.model.files.size;
    expect(objects).toBeGreaterThanOrEqual(100);

    // The job script: every task of the array has the same HOME, empty at first (a cluster's
    // shared HOME). No shard flag and no run-set name: both come from Slurm's variables.
    const homes = join(dir.path, 'homes');
    const script = [
      '#!/bin/sh',
      `export HOME="${homes}/shared"`,
      'mkdir -p "$HOME"',
      `exec "${process.execPath}" --expose-gc "${BIN}" --policy "${policy}" backup --json`,
    ].join('\n');
    // Everything else a task gets is the submitter's environment: keys, password, PATH.
    const { HOME: _, ...env } = hostEnv(homes);
    const jobId = await cluster.submitArray(script, { array: '0-3', outputDir: dir.path, env });
    const tasks = await cluster.waitForJob(jobId);
    const outputs = tasks.map((t) => readFileSync(join(dir.path, `task-${t.index}.out`), 'utf8'));
    expect(tasks.map((t) => [t.index, t.state, t.exitCode]), outputs.join('\n---\n')).toEqual([
      [0, 'COMPLETED', 0],
      [1, 'COMPLETED', 0],
      [2, 'COMPLETED', 0],
      [3, 'COMPLETED', 0],
    ]);
    // Every object copied by exactly one task.
    const summaries = outputs.map((o) => o.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>).findLast((m) => m.message_type === 'summary')!);
    expect(summaries.reduce((n, s) => n + (s.counters.objectsNew as number), 0)).toBe(objects);
    // One catalog file per task in the shared HOME, and no catalog.db: no shard made or narrowed the host's catalog.
    const cache = join(homes, 'shared', '.cache', 'lakeguard');
    const [repoDir] = readdirSync(cache);
    expect(readdirSync(join(cache, repoDir!)).filter((n) => n.endsWith('.db')).sort()).toEqual([0, 1, 2, 3].map((i) => `shard-${i}-of-4.db`));

    // --- a fresh host sees ONE run: the run set named after the cluster and the array job -----
    const host = onHost(policy, emptyHome(dir.path, 'fresh'));
    const runs = runsOf(await host('runs', '--json'));
    const clusterName = /^ClusterName=(\S+)$/m.exec(readFileSync(cluster.env.SLURM_CONF, 'utf8'))![1];
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ runSet: `slurm-${clusterName}-${jobId}`, status: 'complete', shards: { of: 4, complete: 4, missing: [] } });

    await expectByteIdenticalRestore(s3, host, { source, target, runId: runs[0]!.id as string, objects });
  });
});
