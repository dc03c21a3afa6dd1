/**
 * Which shard of which run set this backup is (docs/scale-out.md "Shards"): from --shards,
 * --shard and --run-set, else from the variables of the engine that started the process
 * (Kubernetes Indexed Jobs, AWS Batch array jobs, Slurm job arrays). Flags win over the
 * environment. Every bad combination is a usage error (exit 2) naming the flag or variable.
 */
import { UsageError } from '../errors.js';
import { isRunSetName, type ShardIdentity } from '../engine/shards.js';

/** The backup command's shard flags, as commander hands them over (strings). */
export interface ShardFlags {
  shards?: string;
  shard?: string;
  runSet?: string;
}

/** Most shards of one run set: the plan holds N-1 boundaries, each up to two 1 KiB keys. */
export const MAX_SHARDS = 10_000;

type Env = Readonly<Record<string, string | undefined>>;

/** A value and where it came from (a flag or a variable), for messages. */
interface Sourced<T> {
  value: T;
  from: string;
}

/**
 * This process's shard, or null when nothing asks for sharding (no flag, no engine index
 * variable): the ordinary single-process backup.
 */
export function shardIdentity(flags: ShardFlags, env: Env): ShardIdentity | null {
  const index = shardIndex(flags, env);
  const count = shardCount(flags, env);
  const named = flags.runSet !== undefined ? '--run-set' : env.LAKEGUARD_RUN_SET ? 'LAKEGUARD_RUN_SET' : null;
  if (index === null) {
    if (count !== null) {
      throw new UsageError(`${count.from}=${count.value} gives a shard count but no shard index`, {
        hint: `pass --shard I (0 to ${count.value - 1}), or run it as an engine's array job (JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX or SLURM_ARRAY_TASK_ID)`,
      });
    }
    if (named !== null) throw new UsageError(`${named} names a run set, but this backup is not a shard`, { hint: 'pass --shards N and --shard I too, or drop it' });
    return null;
  }
  if (count === null) {
    throw new UsageError(`${index.from}=${index.value} gives a shard index but no shard count`, {
      hint: 'pass --shards N (the number of shards of the run), or set LAKEGUARD_SHARDS',
    });
  }
  refuseOtherArraySize(index, count, env);
  // `--shards 1 --shard 0` inside an array job (what a task that must not shard runs): the
  // array's id, which every task shares, would name one run set for them all, and every task
  // after the first would find it complete and back up nothing, exiting 0. Without a name of
  // its own it is an ordinary backup.
  if (index.from === '--shard' && count.value === 1 && index.value === 0 && named === null && arrayTask(env)) return null;
  if (index.value >= count.value) {
    throw new UsageError(`shard index ${index.value} (${index.from}) is not below the shard count ${count.value} (${count.from})`, {
      hint: `shards are numbered from 0 to ${count.value - 1}${index.from.startsWith('SLURM') ? '; submit the array as --array=0-' + (count.value - 1) : ''}`,
    });
  }
  return { index: index.value, of: count.value, runSet: runSetName(flags, env, index.from === '--shard' && count.value > 1) };
}

/**
 * An index from an AWS Batch or Slurm array with a count (--shards, LAKEGUARD_SHARDS) other than
 * the array's own size: with fewer children than shards, the last shards never run and every
 * child exits 0 (the run set stays `running`, the job shows success); with more, the extra
 * children fail. On Slurm it is also how a part of the shards gets run again by mistake
 * (`--array=4-7` with --shards 8 numbers its tasks 0 to 3: shards 0 to 3 again, complete already).
 * Kubernetes gives a pod no count to compare with (docs/scale-out.md).
 */
function refuseOtherArraySize(index: Sourced<number>, count: Sourced<number>, env: Env): void {
  const engine =
    index.from === 'AWS_BATCH_JOB_ARRAY_INDEX'
      ? { size: 'AWS_BATCH_JOB_ARRAY_SIZE', what: 'this AWS Batch array job has', unit: ['child', 'children'], fix: 'submit the array job with arrayProperties.size equal to the shard count (deploy/aws-batch/submit-job.json sets both), or drop --shards and LAKEGUARD_SHARDS to take the array size' }
      : index.from === 'SLURM_ARRAY_TASK_ID'
        ? { size: 'SLURM_ARRAY_TASK_COUNT', what: 'this Slurm array has', unit: ['task', 'tasks'], fix: `submit the shards as --array=0-${count.value - 1} (a %limit is fine); to re-run some shards, scontrol requeue <job>_<id>, or pass --shard I and --run-set NAME to each` }
        : null;
  if (engine === null || count.from === engine.size) return;
  const raw = env[engine.size];
  if (raw === undefined || raw === '') return;
  const size = integer(raw, engine.size, 1);
  if (size === count.value) return;
  const effect = size < count.value ? `shards ${size} to ${count.value - 1} would never run` : `its ${engine.unit[1]} ${count.value} to ${size - 1} would have no shard`;
  throw new UsageError(`${count.from}=${count.value}, but ${engine.what} ${size} ${engine.unit[size === 1 ? 0 : 1]} (${engine.size}=${size}): ${effect}`, { hint: engine.fix });
}

function shardIndex(flags: ShardFlags, env: Env): Sourced<number> | null {
  if (flags.shard !== undefined) return { value: integer(flags.shard, '--shard', 0), from: '--shard' };
  for (const name of ['JOB_COMPLETION_INDEX', 'AWS_BATCH_JOB_ARRAY_INDEX'] as const) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') return { value: integer(raw, name, 0), from: name };
  }
  const task = env.SLURM_ARRAY_TASK_ID;
  if (task === undefined || task === '') return null;
  const id = integer(task, 'SLURM_ARRAY_TASK_ID', 0);
  const min = env.SLURM_ARRAY_TASK_MIN ? integer(env.SLURM_ARRAY_TASK_MIN, 'SLURM_ARRAY_TASK_MIN', 0) : 0;
  if (id < min) throw new UsageError(`SLURM_ARRAY_TASK_ID=${id} is below SLURM_ARRAY_TASK_MIN=${min}`, { hint: 'submit the shards as one array job, --array=0-(N-1)' });
  // The index is the task id less the minimum: only an array of consecutive ids numbers its
  // shards 0..N-1. With steps or gaps (--array=0-6:2, or --array=2,5 to re-run two shards) some
  // tasks would back up the wrong shard's range and some shards none, every task exiting 0.
  const max = env.SLURM_ARRAY_TASK_MAX ? integer(env.SLURM_ARRAY_TASK_MAX, 'SLURM_ARRAY_TASK_MAX', 0) : null;
  const count = env.SLURM_ARRAY_TASK_COUNT ? integer(env.SLURM_ARRAY_TASK_COUNT, 'SLURM_ARRAY_TASK_COUNT', 1) : null;
  if (max !== null && count !== null && max - min + 1 !== count) {
    throw new UsageError(
      `the Slurm array's task ids are not consecutive (${count} tasks from ${min} to ${max}): task ids less the minimum do not number its shards 0 to N-1`,
      { hint: 'submit the shards as --array=0-(N-1) (a %limit is fine); to re-run some shards, scontrol requeue <job>_<id>, or pass --shard I and --run-set NAME to each' },
    );
  }
  return { value: id - min, from: 'SLURM_ARRAY_TASK_ID' };
}

function shardCount(flags: ShardFlags, env: Env): Sourced<number> | null {
  const from = (value: string, name: string): Sourced<number> => {
    const n = integer(value, name, 1);
    if (n > MAX_SHARDS) throw new UsageError(`${name}=${n}: at most ${MAX_SHARDS} shards`, { hint: `pass a count of 1 to ${MAX_SHARDS}` });
    return { value: n, from: name };
  };
  if (flags.shards !== undefined) return from(flags.shards, '--shards');
  for (const name of ['LAKEGUARD_SHARDS', 'AWS_BATCH_JOB_ARRAY_SIZE', 'SLURM_ARRAY_TASK_COUNT'] as const) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') return from(raw, name);
  }
  return null;
}

/**
 * --run-set, else LAKEGUARD_RUN_SET, else derived from the engine's job id (Slurm, Batch). Not
 * derived for an index given by --shard (of a run set of several shards): the job then is not
 * the one array whose tasks are the run set's shards, and its id would name a run set of its
 * own that its siblings never join (shards re-run in a new Slurm array with --shard, or N
 * separate Batch jobs), every one of them exiting 0 while no run set completes.
 */
function runSetName(flags: ShardFlags, env: Env, indexFromFlag: boolean): string {
  const named = flags.runSet !== undefined ? { value: flags.runSet, from: '--run-set' } : env.LAKEGUARD_RUN_SET ? { value: env.LAKEGUARD_RUN_SET, from: 'LAKEGUARD_RUN_SET' } : null;
  const derived = named === null ? derivedRunSet(env) : null;
  if (derived !== null && indexFromFlag) {
    throw new UsageError(`--shard gives this shard's index, so ${derived.from} does not name its run set: this job's id would start a run set of its own (${derived.value}) that the other shards do not join`, {
      hint: 'pass --run-set NAME, the same for every shard of the run (to re-run shards of an array job: its run set, e.g. slurm-<cluster>-<array job id>), or set LAKEGUARD_RUN_SET',
    });
  }
  const given = named ?? derived;
  if (given === null) {
    throw new UsageError('a shard needs a run-set name, and no engine job id was found to derive one from', {
      hint: 'pass --run-set NAME (the same for every shard of the run), or set LAKEGUARD_RUN_SET',
    });
  }
  if (!isRunSetName(given.value)) {
    throw new UsageError(`${given.from}: ${JSON.stringify(given.value)} is not a run-set name`, {
      hint: 'use 1 to 100 letters, digits, ".", "_" or "-" (not "." or ".."), or pass --run-set NAME',
    });
  }
  return given.value;
}

/** Whether this process is one task of a Slurm or AWS Batch array, whose job id (derivedRunSet) its sibling tasks share. */
function arrayTask(env: Env): boolean {
  return Boolean(env.SLURM_ARRAY_JOB_ID) || (Boolean(env.AWS_BATCH_JOB_ID) && Boolean(env.AWS_BATCH_JOB_ARRAY_INDEX));
}

function derivedRunSet(env: Env): Sourced<string> | null {
  const job = env.SLURM_ARRAY_JOB_ID;
  if (job) {
    const cluster = env.SLURM_CLUSTER_NAME;
    return { value: `slurm-${cluster ? `${cluster}-` : ''}${job}`, from: 'SLURM_ARRAY_JOB_ID' };
  }
  const batch = env.AWS_BATCH_JOB_ID;
  if (batch) return { value: `batch-${batch.split(':')[0]}`, from: 'AWS_BATCH_JOB_ID' };
  return null;
}

/** A non-negative decimal integer of at least `min`, else a usage error naming `name`. */
function integer(raw: string, name: string, min: number): number {
  const value = /^\d{1,9}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (Number.isNaN(value) || value < min) {
    throw new UsageError(`${name}=${JSON.stringify(raw)}: expected a whole number${min > 0 ? ` of at least ${min}` : ' (0 or more)'}`, {
      hint: name.startsWith('--') ? `pass ${name} with a number` : `check how the job sets ${name}`,
    });
  }
  return value;
}
