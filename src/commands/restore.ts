import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { sourceRunRefError } from '../catalog/copied-runs.js';
import type { Scope, StateCut } from '../catalog/catalog.js';
import { CatalogQueries } from '../catalog/queries.js';
import type { RunRow } from '../catalog/types.js';
import { OVERWRITE_POLICIES, restore, type OverwritePolicy, type RestoreSummary } from '../engine/restore.js';
import { openSource, outermostPrefixes, sourceName } from '../engine/sources.js';
import { compileExcludes } from '../policy/glob.js';
import type { EventSink } from '../engine/events.js';
import { forgottenGapAt } from '../catalog/forget.js';
import { describeRunSetCut, describeTimeCut, runOrRunSetCut } from '../catalog/instant.js';
import { runSet, runSetCut } from '../catalog/run-sets.js';
import { isRunSet, runsAndRunSets } from './runs-sets.js';
import { ExitCode, NothingFoundError, UsageError } from '../errors.js';
import { unreadableAsCause } from './unreadable.js';
import type { Policy } from '../policy/types.js';
import { endpointProblem } from '../policy/values.js';
import { FsStore } from '../storage/fs-store.js';
import { ROLE_ARN, type CredentialsSpec } from '../storage/credentials.js';
import { openStore } from '../storage/open.js';
import type { ThawWait } from '../engine/restore-archived.js';
import { THAW_TIERS, type ObjectStore, type ThawTier } from '../storage/types.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { printable } from '../util/printable.js';
import type { RepositoryLock } from '../repository/locks.js';
import { action } from './action.js';
import { releaseLock } from './release-lock.js';
import { requireGroupBucketsKnown, requireInScope, type KeySelection } from './catalog-scope-guard.js';
import { groupsCovering, isLastClean, lastCleanWhy, resolveLastClean } from './last-clean.js';
import { openAll, type Opened } from './context.js';
import { warnSuspectState } from './suspect-state.js';
import { warnPartialRun } from './partial-state.js';
import { drained, instantOption, plural, requireBucket } from './query-common.js';
import { NO_LOCK_FLAG, NO_LOCK_HELP, lockForReading } from './read-lock.js';
import { refuseTargetOverlappingRepository } from './repository-overlap.js';

export interface RestoreFlags {
  group?: string;
  bucket?: string;
  prefix?: string;
  key?: string;
  keysFrom?: string;
  versionId?: string;
  run?: string;
  at?: string;
  to?: string;
  toDir?: string;
  toEndpoint?: string;
  toProfile?: string;
  toRoleArn?: string;
  inPlace?: boolean;
  deleteExtra?: boolean;
  lock: boolean;
  overwrite?: string;
  dryRun?: boolean;
  thawDays?: string;
  wait?: boolean;
  tier?: string;
}

export function register(program: Command): void {
  program
    .command('restore')
    .description('restore objects as they were at an instant (or as a run recorded them), into a bucket or a local directory')
    .option('-g, --group <name>', 'restore this protection group')
    .option('-b, --bucket <name>', 'restore this bucket (or local source name)')
    .option('-p, --prefix <prefix>', 'only keys starting with this prefix (with --bucket): a/b also takes a/bc; end it with / for a directory')
    .option('-k, --key <key>', 'only this key (with --bucket)')
    .option('--keys-from <file>', 'only the keys listed in this file, one per line: s3://bucket/key, or key with --bucket')
    .option('--version-id <id>', 'restore this exact S3 version (with --bucket and --key)')
    .option('--at <time>', 'the state at this instant: ISO 8601 (local time unless it has an offset), a run id, 2h / 3d / 1w ago, or last-clean (as rollback takes it)')
    .option('-r, --run <id>', 'the state a run recorded (id, unique id prefix or number); default: the latest complete or partial run')
    .option('--to <url>', 'target s3://bucket/prefix/: each key goes to prefix/<key> (prefix/<bucket>/<key> for several buckets)')
    .option('--to-dir <dir>', 'target local directory: never writes outside it')
    .option('--in-place', 'write each object back into its original bucket, as a new current version')
    .option('--delete-extra', 'afterwards delete keys in the restored scope that did not exist at that time (on a versioned bucket this adds delete markers)')
    .option('--to-endpoint <url>', 'S3 endpoint of the --to bucket (default: the policy\'s s3.endpoint)')
    .option('--to-profile <name>', 'AWS profile that writes the --to or --in-place buckets (default: the standard chain for --to, each source\'s credentials for --in-place)')
    .option('--to-role-arn <arn>', 'role to assume for writing the target buckets (with --to-profile: assumed with that profile)')
    .option(NO_LOCK_FLAG, NO_LOCK_HELP)
    .option('--overwrite <when>', 'keys the target already has: always, if-changed (skip identical content) or never', 'if-changed')
    .option('--dry-run', 'print what would be written, skipped and deleted (with --json: one line per key), and write nothing')
    .option('--thaw-days <days>', 'packs found archived (GLACIER, DEEP_ARCHIVE): ask S3 to thaw them for this many days (RestoreObject), then exit 5; run again when ready')
    .option('--wait', 'with --thaw-days: wait until the thawed packs are readable (checks every 1 to 15 minutes), then restore them too')
    .option('--tier <tier>', `retrieval tier of --thaw-days: ${THAW_TIERS.join(', ')} (default Standard)`)
    .addHelpText('after', '\nDetails: docs/restore.md.')
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const flags = cmd.opts<RestoreFlags>();
        checkFlags(flags);
        const thaw = thawOption(flags);
        const ctx = await openAll(cmd, { reporter, signal, selects: (policy) => restoreSelects(policy, flags) });
        let lock: RepositoryLock | null = null;
        try {
          refuseTargetInRepository(ctx.policy, flags);
          const { cut, label, group } = pickCut(ctx, flags, reporter.event);
          const scopes = scopesFor(ctx, flags, group);
          // Before the lock and the target: a refused restore writes nothing anywhere.
          requireInScope(ctx.catalog, 'restore', scopeSelections(scopes));
          if (flags.bucket !== undefined) requireBucket(new CatalogQueries(ctx.catalog), flags.bucket);
          if (flags.versionId === undefined) warnSuspectState(ctx, cut, scopes, reporter.event);
          if (flags.versionId === undefined) warnPartialRun(ctx, cut, scopes, reporter.event);
          // Shared: prune (exclusive) must not delete packs this restore reads.
          lock = await lockForReading(ctx.repo, 'restore', flags.lock, reporter.event);
          const gap = 'time' in cut && flags.versionId === undefined ? forgottenGapAt(ctx.catalog, cut.time) : null;
          if (gap !== null) {
            reporter.event({
              type: 'warning',
              qualifies: true,
              message: `${gap.forgotten} run${gap.forgotten === 1 ? ' was' : 's were'} forgotten between ${gap.before ?? 'the first run'} and ${gap.after ?? 'now'}: the ${label} is rebuilt from the kept runs around it, and versions that lived only in that gap are gone (README: Retention and forget)`,
            });
          }
          const buckets = new Set(scopes.map((s) => s.bucket));
          const target = flags.inPlace ? inPlaceTargets(ctx.policy, targetCredentials(flags)) : openTarget(ctx.policy, flags);
          const where = typeof target === 'function' ? 'the original buckets' : target.location;
          const summary = await restore({
            repo: ctx.repo,
            catalog: ctx.catalog,
            scopes,
            cut,
            target,
            bucketDirs: !flags.inPlace && buckets.size > 1,
            deleteExtra: flags.deleteExtra ?? false,
            backedUp: backedUpByPolicy(ctx.policy),
            ...(flags.inPlace && flags.versionId === undefined ? { instant: cutInstant(ctx, cut) } : {}),
            overwrite: flags.overwrite as OverwritePolicy,
            dryRun: flags.dryRun ?? false,
            concurrency: ctx.policy.concurrency.transfer,
            events: reporter.event,
            eventsDrained: drained,
            signal,
            ...thaw,
          });
          reporter.summary({ state: label, target: where, ...summary }, describe(summary, label, where));
          return restoreExitCode(summary);
        } catch (err) {
          // Nothing found while the sync could not read part of the repository: the damage may be why.
          throw err instanceof NothingFoundError ? unreadableAsCause(err, ctx.unreadable) : err;
        } finally {
          await releaseLock(lock, reporter);
          ctx.close();
        }
      }),
    );
}

/** The instant of a cut in ms: its time, or when its run (the first shard of a run set) started. */
function cutInstant(ctx: Opened, cut: StateCut): number {
  if ('time' in cut) return cut.time;
  const seqs = cut.runSet?.seqs ?? [cut.runSeq];
  return Math.min(...seqs.map((seq) => ctx.catalog.findRun(String(seq))?.started ?? Infinity));
}

/**
 * Whether the policy backs up a key of a bucket: inside one of its sources' prefixes and not
 * excluded. `--delete-extra` deletes nothing else (those keys are not in any backup, so their
 * absence from the state says nothing). A bucket the policy does not name: every key.
 */
function backedUpByPolicy(policy: Policy): (bucket: string, key: string) => boolean {
  const sources = new Map<string, { prefixes: string[]; isExcluded: (key: string) => boolean }[]>();
  for (const s of policy.groups.flatMap((g) => g.sources)) {
    const name = sourceName(s);
    sources.set(name, [...(sources.get(name) ?? []), { prefixes: outermostPrefixes(s.prefixes), isExcluded: compileExcludes(s.exclude) }]);
  }
  return (bucket, key) => {
    const covering = sources.get(bucket);
    return covering === undefined || covering.some((s) => s.prefixes.some((p) => key.startsWith(p)) && !s.isExcluded(key));
  };
}

function checkFlags(flags: RestoreFlags): void {
  const targets = [flags.to, flags.toDir, flags.inPlace].filter((t) => t !== undefined && t !== false).length;
  if (targets !== 1) throw new UsageError('give exactly one target: --to s3://bucket/prefix/, --to-dir DIR or --in-place');
  if ((flags.prefix !== undefined || flags.key !== undefined) && flags.bucket === undefined) throw new UsageError('--prefix and --key need --bucket');
  if (flags.versionId !== undefined && (flags.bucket === undefined || flags.key === undefined)) throw new UsageError('--version-id needs --bucket and --key');
  if (flags.at !== undefined && flags.run !== undefined) throw new UsageError('give --at or --run, not both');
  // The version is the state: an --at or --run beside it was ignored without a word.
  if (flags.versionId !== undefined && (flags.at !== undefined || flags.run !== undefined)) throw new UsageError('--version-id names one exact version: give it without --at or --run');
  if (flags.keysFrom !== undefined && (flags.key !== undefined || flags.prefix !== undefined)) throw new UsageError('--keys-from replaces --key and --prefix');
  if (flags.toDir !== undefined && (flags.toProfile !== undefined || flags.toRoleArn !== undefined)) {
    throw new UsageError('--to-profile and --to-role-arn name who writes an S3 target: use them with --to or --in-place, not --to-dir');
  }
  if (flags.toEndpoint !== undefined && flags.to === undefined) throw new UsageError('--to-endpoint is the S3 server of the --to bucket: give --to s3://bucket/prefix/ with it');
  if (flags.toRoleArn !== undefined && !ROLE_ARN.test(flags.toRoleArn)) {
    throw new UsageError(`--to-role-arn ${printable(flags.toRoleArn)}: not a role ARN`, { hint: 'expected arn:aws:iam::<account>:role/<name>' });
  }
  if (!OVERWRITE_POLICIES.includes(flags.overwrite as OverwritePolicy)) {
    throw new UsageError(`--overwrite ${JSON.stringify(flags.overwrite)}: expected ${OVERWRITE_POLICIES.join(', ')}`);
  }
}

/** Refuses a --group that neither the policy nor any catalogued run knows, naming those that exist. */
function requireGroup(ctx: Opened, group: string): void {
  const known = new Set([...ctx.policy.groups.map((g) => g.name), ...ctx.catalog.listRuns().map((r) => r.group)]);
  if (known.has(group)) return;
  throw new UsageError(`no group named ${JSON.stringify(group)} in the policy or the catalog`, {
    hint: known.size === 0 ? 'the catalog has no runs: run `lakeguard backup` first' : `groups: ${[...known].sort().join(', ')}`,
  });
}

/** Which state: --version-id, --at, --run, or by default the latest complete or partial run. */
export function pickCut(ctx: Opened, flags: RestoreFlags, events: EventSink = () => {}): { cut: StateCut; label: string; group: string | undefined } {
  if (flags.group !== undefined) requireGroup(ctx, flags.group);
  // --bucket of one group of the policy: the state (and a drill's RPO) is that group's latest
  // run, not the newest run of any group, which may not have read this bucket at all.
  const group = flags.group ?? (flags.bucket === undefined && flags.keysFrom === undefined ? onlyGroup(ctx.policy) : soleGroupCovering(ctx.policy, flags.bucket));
  if (flags.versionId !== undefined) return { cut: { time: Date.now() }, label: `version ${flags.versionId}`, group: flags.group };
  if (flags.at !== undefined && isLastClean(flags.at)) {
    // As rollback takes it: the groups of --group, or those covering --bucket (all without either).
    const last = resolveLastClean(ctx.catalog, flags.group !== undefined ? [flags.group] : groupsCovering(ctx.policy, flags.bucket), events, '--at');
    const group = flags.group ?? last.clean.group;
    return { cut: last.cut, label: `${'runSet' in last.cut && last.cut.runSet !== undefined ? describeRunSetCut(ctx.catalog, last.id) : last.what} (${lastCleanWhy(last)})`, group };
  }
  if (flags.at !== undefined) {
    const cut = instantOption(flags.at, ctx.catalog, '--at');
    return { cut, label: describeCut(ctx, cut, group), group };
  }
  let run: RunRow | undefined;
  if (flags.run !== undefined) {
    const cut = runOrRunSetCut(ctx.catalog, flags.run);
    if (cut === undefined) throw sourceRunRefError(ctx.catalog, flags.run) ?? new UsageError(`no run ${JSON.stringify(flags.run)} in the catalog`, { hint: 'list runs with `lakeguard runs`' });
    if ('runSeq' in cut && cut.runSet !== undefined) {
      // Its status and shards in the label: a running or partial run set's state is mixed.
      return { cut, label: describeRunSetCut(ctx.catalog, cut.runSet.id), group: flags.group ?? runSet(ctx.catalog, cut.runSet.id)?.group };
    }
    run = ctx.catalog.findRun(String((cut as { runSeq: number }).runSeq))!;
  } else {
    // The newest complete or partial run set counts as a run (not its newest shard attempt alone).
    const latest = runsAndRunSets(ctx.catalog, group).filter((r) => r.status === 'complete' || r.status === 'partial').at(-1);
    if (latest !== undefined && isRunSet(latest)) return { cut: runSetCut(ctx.catalog, latest), label: describeRunSetCut(ctx.catalog, latest.id), group: group ?? latest.group };
    run = latest;
    if (run === undefined) throw new NothingFoundError(`no complete run${group === undefined ? '' : ` of group ${group}`} to restore from`, { hint: 'run `lakeguard backup` first, or pick one with --run or --at' });
  }
  return { cut: { runSeq: run.seq }, label: `run ${run.id}`, group: flags.group ?? run.group };
}

/** The policy's group when it has one only (what restores without --group, --bucket or --keys-from; policyScopes). */
function onlyGroup(policy: Policy): string | undefined {
  return policy.groups.length === 1 ? policy.groups[0]!.name : undefined;
}

/** The one group of the policy that backs up `bucket`; undefined without --bucket, or when none or several do. */
function soleGroupCovering(policy: Policy, bucket: string | undefined): string | undefined {
  if (bucket === undefined) return undefined;
  const covering = groupsCovering(policy, bucket);
  return covering.length === 1 ? covering[0] : undefined;
}

function describeCut(ctx: Opened, cut: StateCut, group: string | undefined): string {
  if ('time' in cut) return describeTimeCut(ctx.catalog, cut.time, group);
  if (cut.runSet !== undefined) return describeRunSetCut(ctx.catalog, cut.runSet.id);
  const run = ctx.catalog.listRuns().find((r) => r.seq === cut.runSeq);
  return `run ${run?.id ?? cut.runSeq}`;
}

/** What to restore: --bucket (narrowed by --prefix/--key/--keys-from), else the group's sources. */
export function scopesFor(ctx: Opened, flags: RestoreFlags, groupName: string | undefined, command = 'restore'): Scope[] {
  const fromPolicy = policyScopes(ctx.policy, flags, groupName);
  if (Array.isArray(fromPolicy)) return fromPolicy;
  // No policy for this group (e.g. a laptop with only --repo): every bucket its runs recorded,
  // which only a whole catalog knows.
  const { unnamedGroup } = fromPolicy;
  requireGroupBucketsKnown(ctx.catalog, command, unnamedGroup);
  const buckets = ctx.catalog.bucketsOfGroup(unnamedGroup);
  if (buckets.length === 0) throw new UsageError(`nothing to restore: no run of group ${JSON.stringify(unnamedGroup)} recorded an object`, { hint: 'list runs with `lakeguard runs`' });
  return buckets.map((bucket) => ({ bucket }));
}

/** scopesFor from the flags and the policy alone, or the group the policy does not name. */
function policyScopes(policy: Policy, flags: RestoreFlags, groupName: string | undefined): Scope[] | { unnamedGroup: string } {
  if (flags.keysFrom !== undefined) return keysFromFile(flags.keysFrom, flags.bucket);
  if (flags.bucket !== undefined) {
    if (flags.key !== undefined) return [{ bucket: flags.bucket, key: flags.key, ...(flags.versionId === undefined ? {} : { versionId: flags.versionId }) }];
    return [{ bucket: flags.bucket, ...(flags.prefix === undefined ? {} : { prefix: flags.prefix }) }];
  }
  if (groupName === undefined) {
    groupName = onlyGroup(policy);
    if (groupName === undefined) throw new UsageError('say what to restore: --group, --bucket or --keys-from', { hint: `groups: ${policy.groups.map((g) => g.name).join(', ') || '(none in the policy)'}` });
  }
  const group = policy.groups.find((g) => g.name === groupName);
  return group === undefined ? { unnamedGroup: groupName } : group.sources.flatMap((s) => outermostPrefixes(s.prefixes).map((prefix) => ({ bucket: sourceName(s), prefix })));
}

/**
 * The keys a restore (or drill) selects, before the catalog is synced (OpenAllOptions.selects):
 * null when the group is the latest run's (no --group, --bucket or --keys-from) or one the policy
 * does not name, which only the catalog tells.
 */
export function restoreSelects(policy: Policy, flags: RestoreFlags): KeySelection[] | null {
  if (flags.keysFrom === undefined && flags.bucket === undefined && flags.group === undefined) return null;
  const scopes = policyScopes(policy, flags, flags.group);
  return Array.isArray(scopes) ? scopeSelections(scopes) : null;
}

/** What restore scopes select, as the scope guard takes it (a key exactly, a prefix as such). */
export function scopeSelections(scopes: readonly Scope[]): KeySelection[] {
  return scopes.map((s) => ({ bucket: s.bucket, prefix: s.key ?? s.prefix ?? '', exact: s.key !== undefined }));
}

/**
 * The text of each --keys-from that is no regular file (`/dev/stdin`, a shell's `<(…)`): it can be
 * read once, and a restore or drill reads its keys twice (what the catalog sync must import,
 * then the scopes). Read again, a pipe was empty: "lists no keys".
 */
const readOnce = new Map<string, string>();

/** `s3://bucket/key` lines, or plain keys with --bucket; blank lines and # comments are skipped. */
export function keysFromFile(file: string, bucket: string | undefined): Scope[] {
  let text = readOnce.get(file);
  try {
    if (text === undefined) {
      text = readFileSync(file, 'utf8');
      if (!statSync(file).isFile()) readOnce.set(file, text);
    }
  } catch (err) {
    throw new UsageError(`cannot read --keys-from ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const scopes: Scope[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(line);
    if (m !== null) scopes.push({ bucket: m[1]!, key: m[2]! });
    else if (bucket !== undefined) scopes.push({ bucket, key: line });
    else throw new UsageError(`${file}:${i + 1}: ${JSON.stringify(line)} is not s3://bucket/key (or give --bucket for plain keys)`);
  });
  if (scopes.length === 0) throw new UsageError(`--keys-from ${file} lists no keys`);
  return scopes;
}

/** Who writes an S3 target: `--to-profile` / `--to-role-arn`, or undefined (see openTarget, inPlaceTargets). */
function targetCredentials(flags: RestoreFlags): CredentialsSpec | undefined {
  if (flags.toProfile === undefined && flags.toRoleArn === undefined) return undefined;
  return { ...(flags.toProfile === undefined ? {} : { profile: flags.toProfile }), ...(flags.toRoleArn === undefined ? {} : { roleArn: flags.toRoleArn }) };
}

/**
 * Each bucket's own store: the policy's source for it (S3 bucket or local directory), else an S3
 * bucket. Written with the source's own credentials (an in-place restore writes where the
 * backup read), or with `write`'s when given.
 */
function inPlaceTargets(policy: Policy, write: CredentialsSpec | undefined): (bucket: string) => ObjectStore {
  return (bucket) => {
    const source = policy.groups.flatMap((g) => g.sources).find((s) => sourceName(s) === bucket);
    const maxSockets = policy.concurrency.transfer * 2;
    if (source !== undefined) return openSource(source, policy, { maxSockets, ...(write === undefined ? {} : { writeCredentials: write }) }).objectStore;
    const endpoint = policy.s3.endpoint;
    return openStore(`s3://${bucket}`, {
      ...(endpoint === undefined ? {} : { endpoint }),
      ...(policy.s3.region === undefined ? {} : { region: policy.s3.region }),
      credentialsFrom: { spec: write, label: `restore target ${bucket}` },
      maxSockets,
    });
  };
}

/** Refuses (exit 2) a --to or --to-dir that overlaps the repository, before anything is read or written. */
export function refuseTargetInRepository(policy: Policy, flags: RestoreFlags): void {
  if (flags.toDir !== undefined) refuseTargetOverlappingRepository(policy, { dir: resolve(flags.toDir) }, '--to-dir');
  if (flags.to !== undefined) refuseTargetOverlappingRepository(policy, { url: flags.to, endpoint: flags.toEndpoint ?? policy.s3.endpoint ?? policy.repository.endpoint }, '--to');
}

export function openTarget(policy: Policy, flags: RestoreFlags): ObjectStore {
  refuseTargetInRepository(policy, flags);
  if (flags.toDir !== undefined) {
    // Created by the first write: a refused or dry restore leaves no empty directory behind.
    const root = resolve(flags.toDir);
    checkTargetDir(flags.toDir, root);
    // No fsync per restored file: a restore that dies is simply run again, and syncing every
    // file (and its directory) makes a restore of 200,000 files take many minutes.
    return new FsStore({ root, fsync: false, userFiles: true });
  }
  const problem = flags.toEndpoint === undefined ? undefined : endpointProblem(flags.toEndpoint);
  if (problem !== undefined) throw new UsageError(`--to-endpoint: ${problem}`, { hint: 'give the S3 server of the --to bucket, e.g. --to-endpoint https://s3.example.com' });
  const endpoint = flags.toEndpoint ?? policy.s3.endpoint ?? policy.repository.endpoint;
  const region = policy.s3.region ?? policy.repository.region;
  // Two parts per large object in flight: restore's memory budget counts on it (engine/restore.ts).
  return openStore(flags.to!, {
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(region === undefined ? {} : { region }),
    // Not the repository's nor a source's: a restore target is written by whoever restores.
    credentialsFrom: { spec: targetCredentials(flags), label: `restore target ${flags.to!}` },
    maxSockets: policy.concurrency.transfer * 2,
    uploadConcurrency: 2,
  });
}

/**
 * Refuses a --to-dir that no write could succeed in, before anything is read: otherwise every
 * object fails on its own and a restore of a million objects prints a million failures. Checks
 * without creating anything (the first write creates the directory): the target, or its nearest
 * existing ancestor, must be a directory this process may write in.
 */
function checkTargetDir(given: string, root: string): void {
  const refuse = (problem: string): never => {
    throw new UsageError(`--to-dir ${printable(given)}: ${problem}`, { hint: 'choose a directory you can write in (it is created when missing)' });
  };
  for (let dir = root; ; dir = dirname(dir)) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(dir).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && dirname(dir) !== dir) continue;
      if (code === 'ENOTDIR') continue; // a parent is a file: found on the way up
      return refuse(`cannot read ${printable(dir)} (${code ?? String(err)})`);
    }
    if (!isDirectory) refuse(dir === root ? 'exists and is not a directory' : `${printable(dir)} is not a directory`);
    try {
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch {
      refuse(dir === root ? 'not writable by this user' : `cannot create it: ${printable(dir)} is not writable by this user`);
    }
    return;
  }
}

/** --thaw-days, --tier and --wait, checked. */
export function thawOption(flags: Pick<RestoreFlags, 'thawDays' | 'tier' | 'wait'>): { thaw?: { days: number; tier: ThawTier; wait?: ThawWait } } {
  const tier = flags.tier ?? 'Standard';
  if (!(THAW_TIERS as readonly string[]).includes(tier)) throw new UsageError(`--tier ${printable(tier)}: expected ${THAW_TIERS.join(', ')}`);
  if (flags.thawDays === undefined) {
    if (flags.wait === true) throw new UsageError('--wait waits for the packs --thaw-days thaws: give --thaw-days N too');
    if (flags.tier !== undefined) throw new UsageError(`--tier ${printable(flags.tier)} chooses how --thaw-days thaws archived packs: give --thaw-days N too`);
    return {};
  }
  const days = Number(flags.thawDays);
  if (!/^\d+$/.test(flags.thawDays) || days < 1 || days > 30_000) {
    throw new UsageError(`--thaw-days ${printable(flags.thawDays)}: expected a whole number of days from 1 to 30000, such as 7`);
  }
  return { thaw: { days, tier: tier as ThawTier, ...(flags.wait === true ? { wait: {} } : {}) } };
}

/** 0, 3 (partial), or 5 (archived) only when thawing the archived packs and running again finishes the restore. */
export function restoreExitCode(s: RestoreSummary): ExitCode {
  if (s.archived.objects > 0 && s.archived.objects === s.failed && s.missing === 0) return ExitCode.archived;
  return s.failed + s.missing > 0 ? ExitCode.partial : ExitCode.ok;
}

function describe(s: RestoreSummary, label: string, where: string): string {
  const skipped = s.skippedIdentical + s.skippedExisting;
  const lines = s.dryRun
    ? [`dry run: would restore ${s.restored} of ${plural(s.objects, 'object')} (${formatBytes(s.bytes)}) from ${label} to ${where}; nothing was written`]
    : [
        `restored ${s.restored} of ${plural(s.objects, 'object')} (${formatBytes(s.bytes)}) from ${label} to ${where} in ${formatDuration(s.durationMs)}`,
        `  requests  ${s.requests.get} GET from the repository, ${s.requests.put} PUT to the target`,
      ];
  if (s.replaced !== null && s.replaced > 0) {
    lines.push(`  ${s.dryRun ? 'would replace' : 'replaced'} ${s.replaced} of them: the target held ${s.replaced === 1 ? 'that key' : 'those keys'} with other content (--overwrite never keeps it)`);
  }
  if (skipped > 0) {
    lines.push(`  skipped ${plural(skipped, 'object')} (${formatBytes(s.bytesSkipped)}) the target already has: ${s.skippedIdentical} with the same content, ${s.skippedExisting} kept by --overwrite never`);
  }
  if (s.deleted > 0) lines.push(`  ${s.dryRun ? 'would delete' : 'deleted'} ${plural(s.deleted, 'key')} that did not exist then (--delete-extra)`);
  if (s.missing > 0) lines.push(`  ${plural(s.missing, 'named key')} ${s.missing === 1 ? 'is' : 'are'} not in the backup (listed above)`);
  if (s.failed > 0) lines.push(`  ${plural(s.failed, 'object')} ${s.dryRun ? 'would fail: the target cannot hold them' : 'could not be restored'} (listed above)`);
  if (s.archived.objects > 0 && s.thaw === null) {
    lines.push(
      `  ${s.archived.objects} of them ${s.archived.objects === 1 ? 'is' : 'are'} in ${plural(s.archived.packs, 'archived pack')} (GLACIER or DEEP_ARCHIVE): run again with --thaw-days N to thaw them (S3 RestoreObject), then again once they are ready`,
    );
  } else if (s.archived.objects > 0 && s.thaw !== null) {
    const t = s.thaw;
    lines.push(
      `  ${s.archived.objects} of them ${s.archived.objects === 1 ? 'is' : 'are'} in ${plural(s.archived.packs, 'archived pack')}: thaw started for ${t.started}, already in progress for ${t['in-progress']}, ready for ${t.ready}; run this restore again once they are ready (hours)`,
    );
  }
  return lines.join('\n');
}

