// Which shard a backup is: flags, then each engine's variables; every bad combination is a
// usage error (exit 2) that names the flag or variable and says what to do.
import { describe, expect, it } from 'vitest';
import { shardIdentity } from '../../src/commands/shard-options.js';
import { ExitCode, UsageError } from '../../src/errors.js';

function usageError(f: () => unknown): UsageError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(ExitCode.usage);
    expect((err as UsageError).message).not.toContain('\n');
    return err as UsageError;
  }
  throw new Error('expected a usage error');
}

describe('shard identity', () => {
  it('is null without flags or engine variables (an ordinary backup)', () => {
    expect(shardIdentity({}, {})).toBeNull();
    expect(shardIdentity({}, { SLURM_JOB_ID: '7', HOME: '/root' })).toBeNull();
  });

  it('takes --shards, --shard and --run-set', () => {
    expect(shardIdentity({ shards: '4', shard: '0', runSet: 'nightly-2026-12-06' }, {})).toEqual({ index: 0, of: 4, runSet: 'nightly-2026-12-06' });
    expect(shardIdentity({ shards: '4', shard: '3', runSet: 'a.b_c' }, {})).toEqual({ index: 3, of: 4, runSet: 'a.b_c' });
  });

  it('Kubernetes: JOB_COMPLETION_INDEX with --shards or LAKEGUARD_SHARDS, the name from LAKEGUARD_RUN_SET', () => {
    const env = { JOB_COMPLETION_INDEX: '2', LAKEGUARD_RUN_SET: 'lake-backup-29001' };
    expect(shardIdentity({ shards: '3' }, env)).toEqual({ index: 2, of: 3, runSet: 'lake-backup-29001' });
    expect(shardIdentity({}, { ...env, LAKEGUARD_SHARDS: '5' })).toEqual({ index: 2, of: 5, runSet: 'lake-backup-29001' });
    // Flags win over the environment.
    expect(shardIdentity({ shards: '8', shard: '7', runSet: 'x' }, { ...env, LAKEGUARD_SHARDS: '5' })).toEqual({ index: 7, of: 8, runSet: 'x' });
  });

  it('AWS Batch: AWS_BATCH_JOB_ARRAY_INDEX and _SIZE, the name from the parent job id', () => {
    const env = { AWS_BATCH_JOB_ARRAY_INDEX: '1', AWS_BATCH_JOB_ARRAY_SIZE: '4', AWS_BATCH_JOB_ID: '0b4f8e2c-1d2e-4f5a-9b8c-7d6e5f4a3b2c:1' };
    expect(shardIdentity({}, env)).toEqual({ index: 1, of: 4, runSet: 'batch-0b4f8e2c-1d2e-4f5a-9b8c-7d6e5f4a3b2c' });
    expect(shardIdentity({ shards: '4' }, env)).toEqual({ index: 1, of: 4, runSet: 'batch-0b4f8e2c-1d2e-4f5a-9b8c-7d6e5f4a3b2c' });
  });

  it('refuses a count other than the AWS Batch or Slurm array size: shards that never run, or children without a shard', () => {
    // An array of 4 children with --shards 8: every child exits 0, shards 4 to 7 never run.
    const batch = { AWS_BATCH_JOB_ARRAY_INDEX: '1', AWS_BATCH_JOB_ARRAY_SIZE: '4', AWS_BATCH_JOB_ID: 'j:1' };
    const fewer = usageError(() => shardIdentity({ shards: '8' }, batch));
    expect(fewer.message).toBe('--shards=8, but this AWS Batch array job has 4 children (AWS_BATCH_JOB_ARRAY_SIZE=4): shards 4 to 7 would never run');
    expect(fewer.hint).toMatch(/arrayProperties\.size/);
    expect(usageError(() => shardIdentity({}, { ...batch, LAKEGUARD_SHARDS: '2' })).message).toMatch(/^LAKEGUARD_SHARDS=2, .* 4 children .*: its children 2 to 3 would have no shard$/);
    // --array=4-7 with --shards 8, meant to run the second half: the tasks would be shards 0 to 3 again.
    const slurm = { SLURM_ARRAY_JOB_ID: '9', SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '4', SLURM_ARRAY_TASK_MAX: '7', SLURM_ARRAY_TASK_COUNT: '4' };
    const half = usageError(() => shardIdentity({ shards: '8' }, slurm));
    expect(half.message).toBe('--shards=8, but this Slurm array has 4 tasks (SLURM_ARRAY_TASK_COUNT=4): shards 4 to 7 would never run');
    expect(half.hint).toMatch(/--array=0-7.*scontrol requeue/);
    // A one-task array to re-run shard 3 (--array=3): task 3 less the minimum 3 would be shard 0.
    expect(usageError(() => shardIdentity({}, { ...slurm, SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '3', SLURM_ARRAY_TASK_MAX: '3', SLURM_ARRAY_TASK_COUNT: '1', LAKEGUARD_SHARDS: '8', LAKEGUARD_RUN_SET: 'n' })).message).toMatch(
      /^LAKEGUARD_SHARDS=8, but this Slurm array has 1 task \(SLURM_ARRAY_TASK_COUNT=1\): shards 1 to 7 would never run$/,
    );
    // The same count, or an index from --shard: fine.
    expect(shardIdentity({ shards: '4' }, slurm)).toEqual({ index: 1, of: 4, runSet: 'slurm-9' });
    expect(shardIdentity({ shards: '8', shard: '5', runSet: 'n' }, slurm)).toEqual({ index: 5, of: 8, runSet: 'n' });
  });

  it('Slurm: the task id less the array minimum, the count, the name from cluster and job id', () => {
    const env = { SLURM_ARRAY_TASK_ID: '13', SLURM_ARRAY_TASK_MIN: '10', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_JOB_ID: '4242', SLURM_CLUSTER_NAME: 'hpc' };
    expect(shardIdentity({}, env)).toEqual({ index: 3, of: 4, runSet: 'slurm-hpc-4242' });
    const { SLURM_ARRAY_TASK_MIN: _min, SLURM_CLUSTER_NAME: _cluster, ...plain } = env;
    expect(shardIdentity({}, { ...plain, SLURM_ARRAY_TASK_ID: '3' })).toEqual({ index: 3, of: 4, runSet: 'slurm-4242' });
    expect(shardIdentity({ runSet: 'mine' }, env)).toEqual({ index: 3, of: 4, runSet: 'mine' });
  });

  it('refuses an index at or past the count', () => {
    expect(usageError(() => shardIdentity({ shards: '4', shard: '4', runSet: 'x' }, {})).message).toMatch(/shard index 4 \(--shard\) is not below the shard count 4 \(--shards\)/);
    const slurm = usageError(() => shardIdentity({}, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_JOB_ID: '9' }));
    expect(slurm.message).toMatch(/SLURM_ARRAY_TASK_ID/);
    expect(slurm.hint).toMatch(/--array=0-2/);
    expect(usageError(() => shardIdentity({}, { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '2', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_JOB_ID: '9' })).message).toMatch(
      /below SLURM_ARRAY_TASK_MIN/,
    );
  });

  it('Slurm: refuses an array whose task ids are not consecutive (a step, or gaps), unless --shard says which shard', () => {
    const job = { SLURM_ARRAY_JOB_ID: '9', LAKEGUARD_RUN_SET: 'nightly', LAKEGUARD_SHARDS: '8' };
    // --array=2,5 to re-run shards 2 and 5: ids less the minimum would make them shards 0 and 3.
    const retry = usageError(() => shardIdentity({}, { ...job, SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '2', SLURM_ARRAY_TASK_MAX: '5', SLURM_ARRAY_TASK_COUNT: '2' }));
    expect(retry.message).toBe("the Slurm array's task ids are not consecutive (2 tasks from 2 to 5): task ids less the minimum do not number its shards 0 to N-1");
    expect(retry.hint).toMatch(/--array=0-\(N-1\).*scontrol requeue <job>_<id>, or pass --shard I and --run-set NAME/);
    // --array=0-6:2
    const stepped = { SLURM_ARRAY_JOB_ID: '9', SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '6', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_STEP: '2' };
    expect(usageError(() => shardIdentity({}, stepped)).message).toMatch(/not consecutive \(4 tasks from 0 to 6\)/);
    expect(shardIdentity({ shard: '5' }, { ...job, SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '2', SLURM_ARRAY_TASK_MAX: '5', SLURM_ARRAY_TASK_COUNT: '2' })).toEqual({ index: 5, of: 8, runSet: 'nightly' });
    expect(shardIdentity({}, { ...stepped, SLURM_ARRAY_TASK_MAX: '3', SLURM_ARRAY_TASK_STEP: '1' })).toEqual({ index: 2, of: 4, runSet: 'slurm-9' });
    expect(shardIdentity({}, { ...stepped, SLURM_ARRAY_TASK_MIN: '10', SLURM_ARRAY_TASK_ID: '12', SLURM_ARRAY_TASK_MAX: '13' })).toEqual({ index: 2, of: 4, runSet: 'slurm-9' });
  });

  it('does not name the run set after the job when --shard gives the index: the job would start a run set of its own', () => {
    // Shards 2 and 5 re-run in a new array (--array=0-1) with --shard: the new job id would name a
    // second run set holding only them, and the first would never complete.
    const rerun = usageError(() => shardIdentity({ shards: '8', shard: '5' }, { SLURM_ARRAY_JOB_ID: '77', SLURM_CLUSTER_NAME: 'hpc', SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2' }));
    expect(rerun.message).toBe(
      "--shard gives this shard's index, so SLURM_ARRAY_JOB_ID does not name its run set: this job's id would start a run set of its own (slurm-hpc-77) that the other shards do not join",
    );
    expect(rerun.hint).toMatch(/^pass --run-set NAME, the same for every shard of the run .*slurm-<cluster>-<array job id>/);
    // N separate AWS Batch jobs, each with --shards 4 --shard I: each job id would be a run set.
    expect(usageError(() => shardIdentity({ shards: '4', shard: '2' }, { AWS_BATCH_JOB_ID: 'single-job-id' })).message).toMatch(/^--shard gives .* AWS_BATCH_JOB_ID does not name its run set: .* \(batch-single-job-id\)/);
    // Named, it is fine.
    expect(shardIdentity({ shards: '4', shard: '2', runSet: 'slurm-hpc-70' }, { SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '1' })).toEqual({ index: 2, of: 4, runSet: 'slurm-hpc-70' });
  });

  it('--shards 1 --shard 0 inside an array job is an ordinary backup unless named: the job id is every task\'s', () => {
    // As a run set named after the array, the second task to back up would find it complete and copy nothing.
    expect(shardIdentity({ shards: '1', shard: '0' }, { SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' })).toBeNull();
    expect(shardIdentity({ shards: '1', shard: '0' }, { AWS_BATCH_JOB_ID: 'parent:2', AWS_BATCH_JOB_ARRAY_INDEX: '2', AWS_BATCH_JOB_ARRAY_SIZE: '4' })).toBeNull();
    // Named, a run set of one; a Batch job that is no array names its own run set of one (its retries join it).
    expect(shardIdentity({ shards: '1', shard: '0', runSet: 'mine' }, { SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' })).toEqual({ index: 0, of: 1, runSet: 'mine' });
    expect(shardIdentity({ shards: '1', shard: '0' }, { AWS_BATCH_JOB_ID: 'single' })).toEqual({ index: 0, of: 1, runSet: 'batch-single' });
  });

  it('refuses a count below 1, or one that is not a number', () => {
    expect(usageError(() => shardIdentity({ shards: '0', shard: '0', runSet: 'x' }, {})).message).toMatch(/--shards="0": expected a whole number of at least 1/);
    expect(usageError(() => shardIdentity({ shards: '-2', shard: '0', runSet: 'x' }, {})).message).toMatch(/--shards/);
    expect(usageError(() => shardIdentity({ shards: '2.5', shard: '0', runSet: 'x' }, {})).message).toMatch(/--shards/);
    expect(usageError(() => shardIdentity({ shards: '20000', shard: '0', runSet: 'x' }, {})).message).toMatch(/at most 10000 shards/);
    expect(usageError(() => shardIdentity({}, { JOB_COMPLETION_INDEX: '0', LAKEGUARD_SHARDS: 'four', LAKEGUARD_RUN_SET: 'x' })).message).toMatch(/^LAKEGUARD_SHARDS="four"/);
    expect(usageError(() => shardIdentity({ shards: '2', runSet: 'x' }, { JOB_COMPLETION_INDEX: 'x' })).message).toMatch(/^JOB_COMPLETION_INDEX="x"/);
    expect(usageError(() => shardIdentity({ shards: '2', shard: '', runSet: 'x' }, {})).message).toMatch(/^--shard=""/);
  });

  it('refuses an index without a count', () => {
    const k8s = usageError(() => shardIdentity({}, { JOB_COMPLETION_INDEX: '3', LAKEGUARD_RUN_SET: 'x' }));
    expect(k8s.message).toBe('JOB_COMPLETION_INDEX=3 gives a shard index but no shard count');
    expect(k8s.hint).toMatch(/--shards N.*LAKEGUARD_SHARDS/);
    expect(usageError(() => shardIdentity({ shard: '1', runSet: 'x' }, {})).message).toMatch(/^--shard=1 gives a shard index but no shard count/);
    expect(usageError(() => shardIdentity({}, { AWS_BATCH_JOB_ARRAY_INDEX: '0', AWS_BATCH_JOB_ID: 'j:0' })).message).toMatch(/^AWS_BATCH_JOB_ARRAY_INDEX=0/);
  });

  it('refuses a count, or a run-set name, without an index', () => {
    const count = usageError(() => shardIdentity({ shards: '4' }, {}));
    expect(count.message).toBe('--shards=4 gives a shard count but no shard index');
    expect(count.hint).toMatch(/--shard I \(0 to 3\)/);
    expect(usageError(() => shardIdentity({}, { LAKEGUARD_SHARDS: '4' })).message).toMatch(/^LAKEGUARD_SHARDS=4/);
    expect(usageError(() => shardIdentity({ runSet: 'x' }, {})).message).toMatch(/^--run-set names a run set, but this backup is not a shard/);
    expect(usageError(() => shardIdentity({}, { LAKEGUARD_RUN_SET: 'x' })).message).toMatch(/^LAKEGUARD_RUN_SET/);
  });

  it('needs a run-set name, and a valid one', () => {
    const none = usageError(() => shardIdentity({ shards: '2', shard: '0' }, {}));
    expect(none.hint).toMatch(/--run-set NAME/);
    usageError(() => shardIdentity({}, { JOB_COMPLETION_INDEX: '0', LAKEGUARD_SHARDS: '2' }));
    for (const bad of ['', '..', '.', 'a/b', 'a b', 'x'.repeat(101), 'nächtlich']) {
      expect(usageError(() => shardIdentity({ shards: '2', shard: '0', runSet: bad }, {})).message).toMatch(/^--run-set: .* is not a run-set name/);
    }
    expect(usageError(() => shardIdentity({}, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_JOB_ID: '1', SLURM_CLUSTER_NAME: 'my cluster' })).message).toMatch(
      /^SLURM_ARRAY_JOB_ID: "slurm-my cluster-1" is not a run-set name/,
    );
  });
});
