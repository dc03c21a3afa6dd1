// Proves the scheduler the shard tests rely on: scripts/slurm.sh starts a real one-node Slurm
// cluster of our own, and an array job gets the variables lakeguard reads (the shard contract:
// I = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, N = SLURM_ARRAY_TASK_COUNT, the run-set name
// from SLURM_CLUSTER_NAME and SLURM_ARRAY_JOB_ID). If this fails, the scheduler set-up broke,
// not lakeguard.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSlurm, type SlurmCluster } from '../helpers/slurm.js';

let cluster: SlurmCluster;
const work = mkdtempSync(join(tmpdir(), 'lg-slurm-test-'));
beforeAll(async () => {
  cluster = await startSlurm();
});
afterAll(async () => {
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('a private Slurm cluster', () => {
  it('runs `sbatch --array=0-3` as four tasks with the array variables and the given environment', async () => {
    const script = [
      'echo "id=$SLURM_ARRAY_TASK_ID min=$SLURM_ARRAY_TASK_MIN count=$SLURM_ARRAY_TASK_COUNT"',
      'echo "job=$SLURM_ARRAY_JOB_ID cluster=$SLURM_CLUSTER_NAME given=$GIVEN"',
      // Exit codes are reported per task: task 3 fails on purpose.
      'exit $((SLURM_ARRAY_TASK_ID == 3 ? 7 : 0))',
    ].join('\n');
    const jobId = await cluster.submitArray(script, { array: '0-3', outputDir: work, env: { GIVEN: 'from-the-submitter' } });
    const tasks = await cluster.waitForJob(jobId);

    expect(tasks.map((t) => [t.index, t.state, t.exitCode])).toEqual([
      [0, 'COMPLETED', 0],
      [1, 'COMPLETED', 0],
      [2, 'COMPLETED', 0],
      [3, 'FAILED', 7],
    ]);
    const clusterName = /^ClusterName=(\S+)$/m.exec(readFileSync(cluster.env.SLURM_CONF, 'utf8'))![1];
    for (const i of [0, 1, 2, 3]) {
      const out = readFileSync(join(work, `task-${i}.out`), 'utf8');
      expect(out).toBe(`id=${i} min=0 count=4\njob=${jobId} cluster=${clusterName} given=from-the-submitter\n`);
    }
  });
});
