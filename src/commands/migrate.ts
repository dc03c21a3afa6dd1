import type { Command } from 'commander';
import { Catalog } from '../catalog/catalog.js';
import { LockDates } from '../catalog/lock-dates.js';
import { FORMAT_VERSION, type RepositoryConfig } from '../repository/config.js';
import { RepositoryLock } from '../repository/locks.js';
import { formatBytes } from '../util/format.js';
import { action } from './action.js';
import { openRepository } from './open-repository.js';

export function register(program: Command): void {
  program
    .command('migrate')
    .description(`upgrade a repository of an earlier format version to version ${FORMAT_VERSION} (rewrites only config)`)
    .addHelpText(
      'after',
      `
Version 1 repositories (lakeguard before format version 2) can be restored, listed and verified
as they are; backup, forget and prune need version 2. migrate checks the config with the
password, then writes it again as version 2, authenticated with a key of its own, under an
exclusive lock. Run it once, from a host you trust, and check the settings it prints: it signs
the config as it finds it. Packs, index files and run manifests stay as they are (version 2
reads them); one PUT replaces config, so a crash leaves the old or the new one. With Object
Lock the old config version stays below the new one until its retention ends.`,
    )
    .action(
      action(async ({ cmd, reporter }) => {
        const { repo, catalogPath } = await openRepository(cmd, reporter);
        const settings = describeSettings(repo.config);
        if (repo.formatVersion >= FORMAT_VERSION) {
          reporter.summary(
            { repository: repo.location, id: repo.id, version: repo.formatVersion, migrated: false },
            `repository ${repo.id} at ${repo.location} is already at format version ${repo.formatVersion}; nothing to do`,
          );
          return;
        }
        const catalog = Catalog.open(catalogPath, repo.id);
        try {
          // The new config version gets a retention date: `lock extend` must extend it, not the old one.
          if (repo.objectLock !== null) {
            const dates = new LockDates(catalog);
            repo.onRetention((name, until, versionId) => dates.record(name, until, versionId));
          }
          const from = repo.formatVersion;
          const lock = await RepositoryLock.acquire(repo, 'exclusive', 'migrate');
          let migrated;
          try {
            migrated = await repo.migrateToCurrentVersion();
          } finally {
            await lock.release().catch(() => {});
          }
          catalog.rememberRepository({ encryption: migrated.config.encryption.algorithm, formatVersion: migrated.formatVersion, location: migrated.location });
          reporter.summary(
            { repository: repo.location, id: repo.id, from, version: migrated.formatVersion, migrated: true, settings },
            `migrated repository ${repo.id} at ${repo.location} from format version ${from} to ${migrated.formatVersion}\n` +
              `signed settings: ${settings}`,
          );
        } finally {
          catalog.close();
        }
      }),
    );
}

/** The config settings migrate signs, in words, so the operator can check them. */
function describeSettings(config: RepositoryConfig): string {
  const c = config.chunker;
  const lock = config.objectLock === undefined ? 'no Object Lock' : `Object Lock ${config.objectLock.mode} ${config.objectLock.retentionDays} days`;
  return [
    config.encryption.algorithm === 'none' ? 'unencrypted' : `encrypted (${config.encryption.algorithm}, scrypt N=${config.encryption.kdf.N})`,
    `chunks ${formatBytes(c.minSize)}/${formatBytes(c.avgSize)}/${formatBytes(c.maxSize)}`,
    `packs ${formatBytes(config.pack.targetSize)}`,
    `zstd level ${config.compression.level}`,
    lock,
  ].join(', ');
}
