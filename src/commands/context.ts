import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { Catalog } from '../catalog/catalog.js';
import { LockDates } from '../catalog/lock-dates.js';
import type { EngineEvent } from '../engine/events.js';
import { confirmRepositoryIdentity, type ExpectedEncryption } from '../engine/identity.js';
import { syncCatalog, type SyncOptions } from '../engine/sync.js';
import { LakeguardError, StorageError, UsageError, ExitCode } from '../errors.js';
import { defaultPolicyForRepository, loadPolicy, normalizeRepositoryUrl } from '../policy/load.js';
import { endpointProblem } from '../policy/values.js';
import { INLINE_POLICY_FILE, type Group, type Policy } from '../policy/types.js';
import { REPOSITORY_ID_RE } from '../repository/config.js';
import { Repository } from '../repository/repository.js';
import { AwsKeyService } from '../storage/aws-kms.js';
import { openStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/types.js';
import { cacheDir } from '../util/cache-dir.js';
import { envSetting } from '../util/env.js';
import { requireWholeCatalog, scopeIsOnDemand, type CatalogPrefix } from '../catalog/scope.js';
import { commandDemand, type KeySelection } from './catalog-scope-guard.js';
import { removeStaleShardCatalogs, shardUsesHostCatalog, shardCatalogFile, type ShardCatalogName } from '../catalog/shard-catalogs.js';
import { mainOptionsOf, type MainOptions } from './main-options.js';
import type { Reporter } from './reporter.js';

/** Options every command accepts (registered once on the program in cli.ts). */
export interface GlobalOptions {
  policy?: string;
  repo?: string;
  endpoint?: string;
  catalog?: string;
  passwordFile?: string;
  json?: boolean;
  quiet?: boolean;
  offline?: boolean;
  /** --metrics-file: the node-exporter textfile written after the command (metrics-file.ts). */
  metricsFile?: string;
  /**
   * Not a command-line option: the password comes from the policy's own sources only (not
   * --password-file or $LAKEGUARD_PASSWORD_FILE / _COMMAND, which name the command's main
   * repository), for a second repository such as copy's --to-policy.
   */
  passwordFromPolicyOnly?: boolean;
}

export function globalOptions(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

/**
 * The policy: --policy, else $LAKEGUARD_POLICY, else ./lakeguard.yaml; without any, a minimal
 * policy from --repo / $LAKEGUARD_REPOSITORY (enough for restore, verify and queries).
 */
export function resolvePolicy(opts: GlobalOptions): Policy {
  const file = opts.policy ?? envSetting('LAKEGUARD_POLICY') ?? (existsSync('lakeguard.yaml') ? 'lakeguard.yaml' : undefined);
  const repoUrl = opts.repo ?? envSetting('LAKEGUARD_REPOSITORY');
  let policy: Policy;
  if (file !== undefined) {
    policy =
      opts.policy === undefined && envSetting('LAKEGUARD_POLICY') !== undefined
        ? loadPolicyNamed(file, 'LAKEGUARD_POLICY', 'fix or unset LAKEGUARD_POLICY, or pass the policy with --policy PATH')
        : loadPolicy(resolve(file));
  } else if (repoUrl !== undefined) {
    policy = defaultPolicyForRepository(normalizeRepoUrl(repoUrl));
  } else {
    throw new UsageError('no policy and no repository given', {
      hint: 'pass --policy FILE (or set LAKEGUARD_POLICY), or --repo URL for commands that need only the repository',
    });
  }
  if (repoUrl === undefined && opts.endpoint === undefined) return policy;
  const problem = opts.endpoint === undefined ? undefined : endpointProblem(opts.endpoint);
  if (problem !== undefined) throw new UsageError(`--endpoint: ${problem}`, { hint: 'give the S3 server of the repository, e.g. --endpoint https://s3.example.com' });
  // Command-line overrides win over the file; the policy object is frozen, so copy.
  return {
    ...policy,
    repository: {
      ...policy.repository,
      ...(repoUrl === undefined || file === undefined ? {} : { url: normalizeRepoUrl(repoUrl) }),
      ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }),
    },
  };
}

/**
 * loadPolicy of a file given by something other than --policy (`$LAKEGUARD_POLICY`, copy's
 * `--to-policy`): one that cannot be read is named as given there (`as`), with `hint`, since
 * loadPolicy's own hint names --policy, which the user did not give (a stale variable in a cron
 * job's environment, or the source's policy).
 */
export function loadPolicyNamed(file: string, as: string, hint: string): Policy {
  try {
    return loadPolicy(resolve(file));
  } catch (err) {
    if (!(err instanceof UsageError) || !err.message.startsWith('cannot read policy file')) throw err;
    throw new UsageError(`${as}: ${err.message}`, { cause: err, hint });
  }
}

/** Checks a --repo / $LAKEGUARD_REPOSITORY URL as strictly as the policy's; a plain path means a directory. */
function normalizeRepoUrl(url: string): string {
  // An empty one would be the current directory.
  if (url.trim() === '') throw new UsageError('--repo: empty', { hint: 'give s3://bucket/prefix, file:///dir or a directory' });
  const result = normalizeRepositoryUrl(/^[a-z0-9]+:\/\//i.test(url) ? url : pathToFileURL(resolve(url)).href, process.cwd());
  if ('error' in result) throw new UsageError(`--repo: ${result.error}`);
  return result.url;
}

/** The policy's repository store, wrapped by `main()`'s `wrapStore` when one was given. */
export function repositoryStore(policy: Policy, options: MainOptions = {}): ObjectStore {
  const r = policy.repository;
  const store = openStore(r.url, {
    ...(r.endpoint === undefined ? {} : { endpoint: r.endpoint }),
    ...(r.region === undefined ? {} : { region: r.region }),
    credentialsFrom: { spec: r.credentials, label: 'the repository' },
    maxSockets: policy.concurrency.transfer * 2,
  });
  return options.wrapStore?.(store, 'repository') ?? store;
}

/**
 * The password, from the first of: --password-file, $LAKEGUARD_PASSWORD_FILE,
 * $LAKEGUARD_PASSWORD_COMMAND, the policy's password_file / password_command / password_env
 * (default $LAKEGUARD_PASSWORD). Never from the policy itself, never logged.
 */
export function readPassword(opts: GlobalOptions, policy: Policy, { forInit = false }: { forInit?: boolean } = {}): string {
  const r = policy.repository;
  // `init` refuses an empty password from every source (an empty environment variable is refused
  // always). Opening still tries one from a file or command: earlier releases let init take it.
  const nonEmpty = (password: string, source: string): string => {
    if (forInit && password === '') {
      throw new LakeguardError(`empty password from ${source}: an encrypted repository needs a password`, {
        exitCode: ExitCode.wrongPassword,
        hint: `put the password in ${source}, or create an unencrypted repository with \`encryption: none\` in the policy`,
      });
    }
    return password;
  };
  const fromFile = (path: string, what: string): string => nonEmpty(readPasswordFile(path, what), `the password file ${path} (${what})`);
  const fromCommand = (command: string, what: string): string => {
    let password: string;
    try {
      password = execFileSync('/bin/sh', ['-c', command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).replace(/\r?\n$/, '');
    } catch {
      // No password: exit 12 as for a missing one, so cron tells a secret problem from bad usage.
      throw new LakeguardError(`the password command (${what}) failed: no password`, { exitCode: ExitCode.wrongPassword, hint: 'run it by hand to see why' });
    }
    return nonEmpty(password, `the output of the password command (${what})`);
  };
  if (opts.passwordFromPolicyOnly !== true) {
    if (opts.passwordFile !== undefined) return fromFile(opts.passwordFile, '--password-file');
    if (process.env.LAKEGUARD_PASSWORD_FILE) return fromFile(process.env.LAKEGUARD_PASSWORD_FILE, 'LAKEGUARD_PASSWORD_FILE');
    if (process.env.LAKEGUARD_PASSWORD_COMMAND) return fromCommand(process.env.LAKEGUARD_PASSWORD_COMMAND, 'LAKEGUARD_PASSWORD_COMMAND');
  }
  if (r.passwordFile !== undefined) return fromFile(r.passwordFile, 'repository.password_file');
  if (r.passwordCommand !== undefined) return fromCommand(r.passwordCommand, 'repository.password_command');
  const env = r.passwordEnv ?? 'LAKEGUARD_PASSWORD';
  const value = process.env[env];
  if (value === undefined || value === '') {
    throw new LakeguardError(`no password: ${env} is ${value === undefined ? 'not set' : 'empty'}`, {
      exitCode: ExitCode.wrongPassword,
      hint: `set ${env}, or use --password-file, LAKEGUARD_PASSWORD_FILE or LAKEGUARD_PASSWORD_COMMAND`,
    });
  }
  return value;
}

/** A password file's content without its final line break; `what` names where the path came from (e.g. `--password-file`). */
export function readPasswordFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new LakeguardError(`cannot read the password file ${path} (${what}): ${(err as NodeJS.ErrnoException).code ?? err}`, {
      exitCode: ExitCode.wrongPassword,
      hint: 'check the path and that this user can read it (the file holds the password alone)',
    });
  }
}

export function defaultCatalogPath(repositoryId: string): string {
  // Repository.open checks the id already; this path must never leave the cache directory.
  if (!REPOSITORY_ID_RE.test(repositoryId)) throw new LakeguardError(`invalid repository id ${JSON.stringify(repositoryId)}`);
  return join(cacheDir(), repositoryId, 'catalog.db');
}

/** A shard's own catalog beside the host's default one (src/catalog/shard-catalogs.ts). */
export function shardCatalogPath(repositoryId: string, shard: ShardCatalogName): string {
  return join(dirname(defaultCatalogPath(repositoryId)), shardCatalogFile(shard));
}

/** Everything a command needs, opened once; `close` releases it. */
export interface Opened {
  policy: Policy;
  repo: Repository;
  catalog: Catalog;
  /** Repository objects this command's sync could not read (damaged, tampered, planted: each was warned about); 0 offline. */
  unreadable: number;
  close(): void;
}

export interface OpenAllOptions {
  /** The command's reporter (from action()): warnings and the sync's progress go to it. */
  reporter: Reporter;
  /**
   * The command writes the repository from what the catalog holds (backup, forget, prune, lock
   * extend): it never runs on a catalog that was not synced, so --offline is refused.
   */
  writes?: boolean;
  /**
   * The command decides from every version of the repository (backup, forget, prune, verify,
   * cost, lock extend): a scoped catalog is refused before it is synced or anything is written.
   */
  wholeCatalog?: boolean;
  /**
   * Called after the identity check, before the sync: the scope the sync gives the catalog
   * (a shard's key range: SyncOptions.scopeTo); undefined leaves it as it is.
   */
  scopeBeforeSync?: (opened: { repo: Repository; catalog: Catalog; policy: Policy }) => Promise<readonly CatalogPrefix[] | undefined>;
  /**
   * A shard of N > 1 (docs/scale-out.md "A shard on a fresh host syncs only its key range"):
   * unless a catalog was named (--catalog, $LAKEGUARD_CATALOG), it uses the host's default
   * catalog only when that one holds the whole repository, else its own file beside it
   * (`shard-<I>-of-<N>.db`), so that shards sharing a cache directory never narrow the host's
   * catalog nor each other's.
   */
  shardCatalog?: ShardCatalogName;
  /**
   * The keys the command selects, from its flags and the policy, asked before the sync
   * (docs/catalog.md "On-demand catalogs"): a fresh catalog imports only them, one scoped on
   * demand adds what it lacks. []: it reads no key (`runs`); null: it cannot say before the sync
   * (then an on-demand catalog becomes whole); absent: it does not say (a fresh catalog syncs whole).
   */
  selects?: (policy: Policy) => readonly KeySelection[] | null;
  signal?: AbortSignal;
}

/** --offline or $LAKEGUARD_OFFLINE (1, true or yes): answer from the catalog without syncing it. */
export function isOffline(opts: GlobalOptions): boolean {
  return opts.offline === true || /^(1|true|yes)$/i.test(process.env.LAKEGUARD_OFFLINE ?? '');
}

/**
 * KMS, asked with the repository's identity and region, for a repository whose passwords have a
 * KMS layer. Nothing is loaded or sent unless the repository has one.
 */
export function repositoryKeyService(policy: Policy): AwsKeyService {
  const r = policy.repository;
  return new AwsKeyService({ credentials: r.credentials, region: r.region ?? policy.s3.region, stsEndpoint: r.endpoint ?? policy.s3.endpoint });
}

/**
 * Opens the policy's repository; keys/ objects that are skipped are reported as warnings, and so
 * is a policy whose encryption_kms_key_id is not the repository's (it applies at init only).
 */
export async function openPolicyRepository(opts: GlobalOptions, policy: Policy, reporter: Reporter, options: MainOptions = {}, onConfig?: (id: string) => void): Promise<Repository> {
  const warn = (message: string) => reporter.event({ type: 'warning', message });
  const repo = await Repository.open(repositoryStore(policy, options), {
    ...(onConfig === undefined ? {} : { onConfig }),
    password: async () => readPassword(opts, policy),
    onWarning: warn,
    keyService: repositoryKeyService(policy),
    ...(policy.repository.sseKmsKeyId === undefined ? {} : { sseKmsKeyId: policy.repository.sseKmsKeyId }),
    ...(policy.repository.storageClass === undefined ? {} : { packStorageClass: policy.repository.storageClass }),
  });
  const wanted = policy.repository.encryptionKmsKeyId;
  const actual = repo.config.encryption.algorithm === 'none' ? undefined : repo.config.encryption.kms?.keyId;
  if (wanted !== undefined && wanted !== actual) {
    warn(
      `repository.encryption_kms_key_id is ${wanted}, but the passwords of ${repo.location} are ${actual === undefined ? 'not KMS-wrapped' : `wrapped with ${actual}`}: ` +
        'the setting applies at init only (docs/keys.md, "KMS")',
    );
  }
  return repo;
}

/**
 * The encryption the operator's input expects: the policy file's (encrypted unless it says
 * `encryption: none`); without one (--repo), encrypted when a password source was given
 * explicitly. $LAKEGUARD_PASSWORD alone says nothing: one variable often serves many repositories.
 */
export function expectedEncryption(opts: GlobalOptions, policy: Policy): ExpectedEncryption | null {
  if (policy.file !== INLINE_POLICY_FILE) {
    return {
      encryption: policy.repository.encryption,
      because: `the policy ${policy.file} says the repository is encrypted (${policy.repository.encryption})`,
      ifUnencrypted: 'if this repository was created unencrypted, set `encryption: none` under repository in the policy',
    };
  }
  const source =
    opts.passwordFile !== undefined ? '--password-file' : process.env.LAKEGUARD_PASSWORD_FILE ? 'LAKEGUARD_PASSWORD_FILE' : process.env.LAKEGUARD_PASSWORD_COMMAND ? 'LAKEGUARD_PASSWORD_COMMAND' : null;
  if (source === null) return null;
  return {
    encryption: 'aes-256-gcm',
    because: `a password was given (${source}), so the repository is expected to be encrypted`,
    ifUnencrypted: `if this repository was created unencrypted, run without ${source}`,
  };
}

export async function openAll(cmd: Command, how: OpenAllOptions): Promise<Opened> {
  const opts = globalOptions(cmd);
  const name = cmd.parent?.parent ? `${cmd.parent.name()} ${cmd.name()}` : cmd.name();
  if (how.writes && isOffline(opts)) {
    throw new UsageError(`${name} cannot run offline: it writes the repository from what the catalog holds, so the catalog must be synced first`, {
      hint: 'run it without --offline and without LAKEGUARD_OFFLINE',
    });
  }
  return openWithPolicy(opts, resolvePolicy(opts), name, how, mainOptionsOf(cmd));
}

/**
 * openAll for a policy already loaded: the repository, its catalog (--catalog, else the cache
 * path of its id), the identity check and the sync. copy opens its --to-policy with it.
 */
export async function openWithPolicy(opts: GlobalOptions, policy: Policy, name: string, how: OpenAllOptions, options: MainOptions = {}): Promise<Opened> {
  const reporter = how.reporter;
  // A group named for a shard's catalog file is one of the policy's (a usage error before anything is opened).
  if (how.shardCatalog?.group !== undefined) selectGroups(policy, how.shardCatalog.group);
  // The catalog opens while the repository's keys are derived (the password's scrypt takes ~0.25
  // s of a helper thread; the first open of a catalog ~0.1 s of this one). Its errors are told
  // after the repository's, as when it was opened after it.
  const early: { catalog?: Catalog; error?: unknown; done: boolean } = { done: false };
  const named = opts.catalog ?? envSetting('LAKEGUARD_CATALOG');
  const catalogPath = (id: string): string => named ?? defaultCatalogPath(id);
  const openCatalog = (id: string): Catalog => Catalog.open(catalogPath(id), id);
  const onConfig = (id: string): void => {
    if (early.done) return;
    early.done = true;
    // Only a catalog that exists opens early: the id is not authenticated yet (the config's MAC
    // is checked once the keys are derived), so a forged config must not make a new file.
    const path = catalogPath(id);
    if (path !== ':memory:' && !existsSync(path)) return;
    try {
      early.catalog = openCatalog(id);
    } catch (err) {
      early.error = err;
    }
  };
  const repo = await openPolicyRepository(opts, policy, reporter, options, onConfig).catch((err: unknown) => {
    early.done = true;
    early.catalog?.close();
    throw err;
  });
  if (early.error !== undefined) throw early.error;
  early.done = true;
  const catalog = how.shardCatalog !== undefined && named === undefined ? openShardCatalog(repo.id, how.shardCatalog, early.catalog) : (early.catalog ?? openCatalog(repo.id));
  let unreadable = 0;
  try {
    // Before anything is read or written (the sync too): a config swapped for `encryption: none` is refused here.
    await confirmRepositoryIdentity(repo, catalog, expectedEncryption(opts, policy));
    const offline = isOffline(opts);
    const selection = how.selects?.(policy);
    // An on-demand catalog is made whole by this command's sync; offline it stays as it is.
    if (how.wholeCatalog && (offline || !scopeIsOnDemand(catalog))) requireWholeCatalog(catalog, name);
    const demand = offline ? undefined : commandDemand(selection, how.wholeCatalog === true);
    const scopeTo = await how.scopeBeforeSync?.({ repo, catalog, policy });
    // The catalog is a cache of the repository: bring it up to date (what other hosts backed up,
    // forgot or pruned) before answering or writing anything. See docs/catalog.md "Sync".
    unreadable = await bringUpToDate(repo, catalog, policy, reporter, offline, how.signal, scopeTo === undefined ? (demand === undefined ? {} : { demand }) : { scopeTo });
    // Again after the sync: another process may have scoped this file meanwhile (a fresh host's
    // `ls` beside this `verify`), and its answer would read as the whole repository's.
    if (how.wholeCatalog) requireWholeCatalog(catalog, name);
  } catch (err) {
    catalog.close();
    throw err;
  }
  // Object Lock: remember the retention date of everything written, so `lock extend` need not ask.
  if (repo.objectLock !== null) {
    const dates = new LockDates(catalog);
    repo.onRetention((name, until, versionId) => dates.record(name, until, versionId));
  }
  return { policy, repo, catalog, unreadable, close: () => catalog.close() };
}

/**
 * A shard's catalog when none was named: the host's default one if `catalog sync --all` made it
 * whole (src/catalog/shard-catalogs.ts shardUsesHostCatalog), else the shard's own file beside it; shard files
 * no process wrote for a week are removed on the way (src/catalog/shard-catalogs.ts).
 */
function openShardCatalog(id: string, shard: ShardCatalogName, opened: Catalog | undefined): Catalog {
  const hostPath = defaultCatalogPath(id);
  // Opened only when it exists: a shard never creates the host's catalog.
  const host = opened ?? (existsSync(hostPath) ? Catalog.open(hostPath, id) : undefined);
  const own = shardCatalogPath(id, shard);
  if (host !== undefined && shardUsesHostCatalog(host)) {
    // Files of shards this host ran before its catalog.db became whole go after a week all the same.
    removeStaleShardCatalogs(dirname(own), hostPath);
    return host;
  }
  host?.close();
  removeStaleShardCatalogs(dirname(own), own);
  return Catalog.open(own, id);
}

async function bringUpToDate(
  repo: Repository,
  catalog: Catalog,
  policy: Policy,
  reporter: Reporter,
  offline: boolean,
  signal: AbortSignal | undefined,
  scope: Pick<SyncOptions, 'scopeTo' | 'demand'>,
): Promise<number> {
  if (offline) {
    reporter.event({ type: 'warning', qualifies: true, message: `offline: catalog ${catalog.path} was not synced with ${repo.location}; answers may be stale` });
    return 0;
  }
  // With --json, stdout carries the command's own answer: only warnings (on stderr) from here.
  const events = (e: EngineEvent): void => {
    if (!reporter.json || e.type === 'warning') reporter.event(e);
  };
  try {
    const report = await syncCatalog({
      repo,
      catalog,
      concurrency: Math.min(16, policy.concurrency.transfer),
      events,
      ...(signal === undefined ? {} : { signal }),
      ...scope,
    });
    return report.damage.length;
  } catch (err) {
    if (!(err instanceof StorageError)) throw err;
    throw new LakeguardError(`cannot sync catalog ${catalog.path} with ${repo.location}: ${err.message}`, {
      cause: err,
      exitCode: err.exitCode,
      hint: 'nothing was half-applied; retry, or pass --offline to answer from the catalog as it is (possibly stale)',
    });
  } finally {
    reporter.close();
  }
}

export function selectGroups(policy: Policy, name: string | undefined): Group[] {
  if (name === undefined) {
    if (policy.groups.length === 0) throw new UsageError(`the policy ${policy.file} has no groups to back up`);
    return [...policy.groups];
  }
  const group = policy.groups.find((g) => g.name === name);
  if (group === undefined) {
    throw new UsageError(`no group named ${JSON.stringify(name)} in ${policy.file}`, {
      hint: `groups: ${policy.groups.map((g) => g.name).join(', ') || '(none)'}`,
    });
  }
  return [group];
}
