/**
 * A run's catalog row as RunRow: the one reader of `runs` joined with its run-set membership
 * (`run_shards`), for the catalog's run lookups and the run-set queries (run-sets.ts).
 */
import type { RunCounters, RunRow, RunShard, RunStatus, ShardRange } from './types.js';

type Row = Record<string, unknown>;

/** Runs with their run-set membership (run_shards; NULL columns for an ordinary run). */
export const RUN_SQL = `SELECT r.*, s.set_run AS set_run, s.set_name AS set_name, s.shard_index AS shard_index, s.shard_count AS shard_count, s.shard_range AS shard_range
  FROM runs r LEFT JOIN run_shards s ON s.run = r.seq`;

export function toRunRow(r: Row): RunRow {
  return {
    seq: r.seq as number,
    id: r.id as string,
    group: r.grp as string,
    started: r.started as number,
    finished: r.finished as number | null,
    status: r.status as RunStatus,
    host: r.host as string | null,
    counters: r.counters === null ? null : (JSON.parse(r.counters as string) as RunCounters),
    ...(r.set_run === null || r.set_run === undefined ? {} : { shard: toShard(r) }),
  };
}

/** The run-set membership in a row of `run_shards` (or of RUN_SQL, which names its columns alike). */
export function toShard(r: Row): RunShard {
  return {
    set: r.set_run as string,
    name: r.set_name as string,
    index: r.shard_index as number,
    of: r.shard_count as number,
    range: JSON.parse(r.shard_range as string) as ShardRange,
  };
}
