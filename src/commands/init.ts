import type { Command } from 'commander';
import { Catalog } from '../catalog/catalog.js';
import { LockDates } from '../catalog/lock-dates.js';
import { UsageError } from '../errors.js';
import { parseLockMode, parseRetentionDays, type ObjectLockConfig } from '../repository/object-lock.js';
import { Repository } from '../repository/repository.js';
import { envSetting } from '../util/env.js';
import { action } from './action.js';
import { defaultCatalogPath, globalOptions, readPassword, repositoryKeyService, repositoryStore, resolvePolicy } from './context.js';
import { mainOptionsOf } from './main-options.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('create a new repository at repository.url (never overwrites one)')
    .option('--object-lock <mode>', 'S3 Object Lock: put a COMPLIANCE or GOVERNANCE retention on every object written (bucket must have Object Lock enabled)')
    .option('--retention <duration>', 'with --object-lock: how long each object is retained at least, e.g. 90d, 12w, 1y')
    .addHelpText(
      'after',
      `
With --object-lock, nothing the repository writes (packs, index files, run manifests, config,
keys, forget documents) can be deleted or overwritten before its retention ends, not even with
the bucket owner's credentials under COMPLIANCE. Run \`lakeguard lock extend\` daily to keep
what is still needed retained.

New repositories have format version 2 (docs/repository-format.md), or 3 with
repository.encryption_kms_key_id: every password then needs that KMS key too (docs/keys.md). The encryption chosen
here is the repository's for good: a config that later says otherwise is refused.`,
    )
    .action(
      action(async ({ cmd, reporter }) => {
        const lockOpts = cmd.opts<{ objectLock?: string; retention?: string }>();
        const objectLock = objectLockOption(lockOpts);
        const opts = globalOptions(cmd);
        const policy = resolvePolicy(opts);
        const r = policy.repository;
        const store = repositoryStore(policy, mainOptionsOf(cmd));
        const password = r.encryption === 'none' ? null : readPassword(opts, policy, { forInit: true });
        const written: [string, Date, string | null][] = [];
        const repo = await Repository.init(
          store,
          {
            password,
            onRetention: (name, until, versionId) => written.push([name, until, versionId]),
            ...(r.packSize === undefined ? {} : { packSize: r.packSize }),
            ...(r.compressionLevel === undefined ? {} : { compressionLevel: r.compressionLevel }),
            ...(objectLock === undefined ? {} : { objectLock }),
            ...(r.encryptionKmsKeyId === undefined || password === null ? {} : { kms: { keyId: r.encryptionKmsKeyId, service: repositoryKeyService(policy) } }),
          },
          r.sseKmsKeyId === undefined ? {} : { sseKmsKeyId: r.sseKmsKeyId },
        );
        const catalogPath = opts.catalog ?? envSetting('LAKEGUARD_CATALOG') ?? defaultCatalogPath(repo.id);
        const catalog = Catalog.open(catalogPath, repo.id);
        try {
          // The catalog vouches for the repository's encryption from now on (engine/identity.ts).
          catalog.rememberRepository({ encryption: repo.config.encryption.algorithm, formatVersion: repo.formatVersion, location: repo.location });
          // So the first `lock extend` need not ask the server about config.
          const dates = written.length === 0 ? null : new LockDates(catalog);
          for (const [name, until, versionId] of written) dates?.record(name, until, versionId);
        } finally {
          catalog.close();
        }
        const lockText =
          objectLock === undefined ? '' : `\nObject Lock: ${objectLock.mode} retention of ${objectLock.retentionDays} days on every object written; run \`lakeguard lock extend\` daily`;
        const kmsKeyId = repo.config.encryption.algorithm === 'none' ? undefined : repo.config.encryption.kms?.keyId;
        const kmsText = kmsKeyId === undefined ? '' : ` (passwords wrapped with the KMS key ${kmsKeyId} too)`;
        reporter.summary(
          { repository: store.location, id: repo.id, encrypted: repo.encrypted, kmsKeyId: kmsKeyId ?? null, catalog: catalogPath, objectLock: repo.objectLock },
          `created ${repo.encrypted ? 'encrypted' : 'unencrypted'} repository ${repo.id} at ${store.location}${kmsText}\ncatalog: ${catalogPath}${lockText}`,
        );
      }),
    );
}

function objectLockOption(opts: { objectLock?: string; retention?: string }): ObjectLockConfig | undefined {
  if (opts.objectLock === undefined && opts.retention === undefined) return undefined;
  if (opts.objectLock === undefined) throw new UsageError('--retention needs --object-lock compliance|governance');
  const mode = parseLockMode(opts.objectLock);
  if (mode === null) {
    throw new UsageError(`--object-lock ${opts.objectLock}: expected compliance or governance`, {
      hint: 'compliance: nobody can delete before the date; governance: users with s3:BypassGovernanceRetention can',
    });
  }
  if (opts.retention === undefined) throw new UsageError('--object-lock needs --retention, e.g. --retention 90d');
  const retentionDays = parseRetentionDays(opts.retention);
  if (retentionDays === null) {
    throw new UsageError(`--retention ${opts.retention}: expected a duration in days, weeks or years such as 90d, 12w or 1y (at least 1d, at most 100y)`);
  }
  return { mode, retentionDays };
}
