import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Scope } from '../catalog/catalog.js';
import type { RunRow } from '../catalog/types.js';
import { restore, type RestoreSummary } from '../engine/restore.js';
import { outermostPrefixes, sourceName } from '../engine/sources.js';
import { ExitCode, UsageError } from '../errors.js';
import type { Policy } from '../policy/types.js';
import { FsStore } from '../storage/fs-store.js';
import { openStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/types.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { action } from './action.js';
import { openAll, type Opened } from './context.js';

interface RestoreFlags {
  group?: string;
  bucket?: string;
  prefix?: string;
  key?: string;
  run?: string;
  to?: string;
  toDir?: string;
  toEndpoint?: string;
}

export function register(program: Command): void {
  program
    .command('restore')
    .description('restore objects as a run recorded them, into a bucket or a local directory')
    .option('-g, --group <name>', 'restore this protection group')
    .option('-b, --bucket <name>', 'restore this bucket (or local source name)')
    .option('-p, --prefix <prefix>', 'only keys under this prefix (with --bucket)')
    .option('-k, --key <key>', 'only this key (with --bucket)')
    .option('-r, --run <id>', 'the run to restore (id, unique id prefix or number); default: the latest complete or partial run')
    .option('--to <url>', 'target s3://bucket/prefix/: each key goes to prefix/<key> (prefix/<bucket>/<key> for several buckets)')
    .option('--to-dir <dir>', 'target local directory: never writes outside it')
    .option('--to-endpoint <url>', 'S3 endpoint of the --to bucket (default: the policy\'s s3.endpoint)')
    .addHelpText(
      'after',
      `
Exit status: 0 restored, 1 error, 2 bad usage, 3 some objects could not be restored (listed),
10 repository missing, 12 wrong password.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const flags = cmd.opts<RestoreFlags>();
        if ((flags.to === undefined) === (flags.toDir === undefined)) throw new UsageError('give exactly one target: --to s3://bucket/prefix/ or --to-dir DIR');
        if ((flags.prefix !== undefined || flags.key !== undefined) && flags.bucket === undefined) throw new UsageError('--prefix and --key need --bucket');
        const ctx = await openAll(cmd);
        try {
          const run = pickRun(ctx, flags);
          const scopes = scopesFor(ctx, flags, run);
          const target = openTarget(ctx.policy, flags);
          const buckets = new Set(scopes.map((s) => s.bucket));
          const summary = await restore({
            repo: ctx.repo,
            catalog: ctx.catalog,
            scopes,
            cut: { runSeq: run.seq },
            target,
            bucketDirs: buckets.size > 1,
            concurrency: ctx.policy.concurrency.transfer,
            events: reporter.event,
            signal,
          });
          reporter.summary({ run: run.id, target: target.location, ...summary }, describe(summary, run, target));
          if (summary.objects === 0) reporter.info('nothing matched: check --bucket/--prefix/--key, or list runs with `lakeguard runs`');
          return summary.failed > 0 ? ExitCode.partial : ExitCode.ok;
        } finally {
          ctx.close();
        }
      }),
    );
}

function pickRun(ctx: Opened, flags: RestoreFlags): RunRow {
  if (flags.run !== undefined) {
    const run = ctx.catalog.findRun(flags.run);
    if (run === undefined) throw new UsageError(`no run ${JSON.stringify(flags.run)} in the catalog`, { hint: 'list runs with `lakeguard runs`' });
    return run;
  }
  const run = ctx.catalog.latestRun({ statuses: ['complete', 'partial'], ...(flags.group === undefined ? {} : { group: flags.group }) });
  if (run === undefined) throw new UsageError(`no complete run${flags.group === undefined ? '' : ` of group ${flags.group}`} to restore from`, { hint: 'run `lakeguard backup` first, or pick one with --run' });
  return run;
}

/** What to restore: --bucket (narrowed by --prefix/--key), else the group's sources. */
function scopesFor(ctx: Opened, flags: RestoreFlags, run: RunRow): Scope[] {
  if (flags.bucket !== undefined) {
    if (flags.key !== undefined) return [{ bucket: flags.bucket, key: flags.key }];
    return [{ bucket: flags.bucket, ...(flags.prefix === undefined ? {} : { prefix: flags.prefix }) }];
  }
  const groupName = flags.group ?? run.group;
  const group = ctx.policy.groups.find((g) => g.name === groupName);
  if (group !== undefined) return group.sources.flatMap((s) => outermostPrefixes(s.prefixes).map((prefix) => ({ bucket: sourceName(s), prefix })));
  // No policy for this group (e.g. a laptop with only --repo): every bucket its runs recorded.
  return ctx.catalog.bucketsOfGroup(groupName).map((bucket) => ({ bucket }));
}

function openTarget(policy: Policy, flags: RestoreFlags): ObjectStore {
  if (flags.toDir !== undefined) {
    const root = resolve(flags.toDir);
    mkdirSync(root, { recursive: true });
    // No fsync per restored file: a restore that dies is simply run again, and syncing every
    // file (and its directory) makes a restore of 200,000 files take many minutes.
    return new FsStore({ root, fsync: false });
  }
  const endpoint = flags.toEndpoint ?? policy.s3.endpoint ?? policy.repository.endpoint;
  const region = policy.s3.region ?? policy.repository.region;
  return openStore(flags.to!, { ...(endpoint === undefined ? {} : { endpoint }), ...(region === undefined ? {} : { region }), maxSockets: policy.concurrency.transfer * 2 });
}

function describe(s: RestoreSummary, run: RunRow, target: ObjectStore): string {
  const lines = [
    `restored ${s.restored} of ${s.objects} objects (${formatBytes(s.bytes)}) from run ${run.id} to ${target.location} in ${formatDuration(s.durationMs)}`,
    `  requests  ${s.requests.get} GET from the repository, ${s.requests.put} PUT to the target`,
  ];
  if (s.failed > 0) lines.push(`  ${s.failed} objects could not be restored (listed above)`);
  return lines.join('\n');
}
