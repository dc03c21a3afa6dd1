import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { Catalog } from '../catalog/catalog.js';
import { pendingDeletions, setPendingDeletion } from '../catalog/forget.js';
import { LockDates } from '../catalog/lock-dates.js';
import { LakeguardError, UsageError } from '../errors.js';
import { CONFIG_KEY_ID } from '../repository/config.js';
import { MIN_KEY_ID_PREFIX, removeKey, type KeyRemoval } from '../repository/keys.js';
import { fileName, objectKey } from '../repository/layout.js';
import { RepositoryLock } from '../repository/locks.js';
import type { Repository } from '../repository/repository.js';
import { table } from '../util/format.js';
import { action } from './action.js';
import { readNewPassword } from './new-password.js';
import { openRepository } from './open-repository.js';
import type { Reporter } from './reporter.js';

const NEW_PASSWORD_HELP = `
The new password comes from --new-password-file, else $LAKEGUARD_NEW_PASSWORD, else it is
typed twice at a terminal; the repository is opened with the usual password
(--password-file, LAKEGUARD_PASSWORD, ...). See docs/keys.md.`;

export function register(program: Command): void {
  const key = program.command('key').description('passwords of an encrypted repository: list, add, remove, change (docs/keys.md)');
  key
    .command('list')
    .description('list the passwords (keys) of the repository, with the host and time each was added')
    .addHelpText(
      'after',
      `
The key named "config" is the password given to init (its wrapped key is in the repository's
config); the others are keys/ files, named by the SHA-256 of their content. "*" marks the key
this command opened the repository with. A damaged key file is listed with its problem.`,
    )
    .action(
      action(async ({ cmd, reporter }) => {
        const { repo, catalogPath } = await openRepository(cmd, reporter);
        requireEncrypted(repo);
        const pending = existsSync(catalogPath) ? await withCatalog(repo, catalogPath, async (catalog) => pendingKeyRemovals(catalog)) : new Set<string>();
        const keys = (await repo.listKeys()).map((k) => ({ ...k, current: k.id === repo.openedWithKey, removalPending: pending.has(k.id) }));
        const note = (k: (typeof keys)[number]): string =>
          k.problem !== null ? `unusable: ${k.problem}` : k.removalPending ? 'removal pending (Object Lock): run `key remove` again once its retention ends' : '';
        const rows = keys.map((k) => [k.current ? '*' : '', shortId(k.id), k.created ?? '-', k.host ?? '-', note(k)]);
        const kmsKeyId = repo.config.encryption.algorithm === 'none' ? null : (repo.config.encryption.kms?.keyId ?? null);
        const kmsText = kmsKeyId === null ? '' : `\nevery password also needs the KMS key ${kmsKeyId}`;
        reporter.answer({ repository: repo.location, kmsKeyId, keys }, table(['', 'ID', 'CREATED', 'HOST', ''], rows) + kmsText);
      }),
    );
  key
    .command('add')
    .description('add a password that opens the repository (a new keys/ file recording this host and the time)')
    .option('--new-password-file <path>', 'read the new password from this file')
    .addHelpText('after', NEW_PASSWORD_HELP)
    .action(
      action(async ({ cmd, reporter }) => {
        const { repo, catalogPath } = await openRepository(cmd, reporter);
        requireEncrypted(repo);
        const password = await readNewPassword(cmd.opts<{ newPasswordFile?: string }>().newPasswordFile, 'key add');
        const id = await withCatalog(repo, catalogPath, async (catalog) => {
          recordRetentionDates(repo, catalog);
          return repo.addPassword(password);
        });
        reporter.summary({ repository: repo.location, added: id }, `added key ${shortId(id)} (${id}) to ${repo.location}`);
      }),
    );
  key
    .command('remove')
    .description('remove a password: it no longer opens the repository (the last one is never removed)')
    .argument('<id>', `"config", or a key id (at least ${MIN_KEY_ID_PREFIX} characters, as key list shows it)`)
    .option('--force', 'also remove the key this command opened the repository with')
    .addHelpText(
      'after',
      `
Removing "config" rewrites the repository's config once (under an exclusive lock) so that no
password opens the wrapped key in it. A key file under Object Lock retention cannot be deleted
before its retain-until date: nothing is removed, the date is named (exit 1).
Removing a password does not change the master keys: whoever read them with it can still
decrypt the repository. docs/keys.md says what to do about a leaked password.`,
    )
    .action(
      action(async ({ cmd, reporter }, given: string) => {
        const { repo, catalogPath } = await openRepository(cmd, reporter);
        requireEncrypted(repo);
        const force = cmd.opts<{ force?: boolean }>().force ?? false;
        await underExclusiveLock(repo, 'key remove', () =>
          withCatalog(repo, catalogPath, async (catalog) => {
            recordRetentionDates(repo, catalog);
            const removal = await removeKey(repo, given, { force, pending: pendingKeyRemovals(catalog) });
            reportRemoval(reporter, repo, catalog, removal, null);
          }),
        );
      }),
    );
  key
    .command('passwd')
    .description('change the password this command opened the repository with: add the new one, then remove the old one')
    .option('--new-password-file <path>', 'read the new password from this file')
    .addHelpText(
      'after',
      `${NEW_PASSWORD_HELP}
In that order: a crash in between leaves both passwords working (run \`key remove\` on the
old one). Under Object Lock an old key file stays until its retention ends (exit 1, named).`,
    )
    .action(
      action(async ({ cmd, reporter }) => {
        const { repo, catalogPath } = await openRepository(cmd, reporter);
        requireEncrypted(repo);
        const password = await readNewPassword(cmd.opts<{ newPasswordFile?: string }>().newPasswordFile, 'key passwd');
        const old = repo.openedWithKey!;
        await underExclusiveLock(repo, 'key passwd', () =>
          withCatalog(repo, catalogPath, async (catalog) => {
            recordRetentionDates(repo, catalog);
            const added = await repo.addPassword(password);
            const removal = await removeKey(repo, old, { force: true, pending: pendingKeyRemovals(catalog) });
            reportRemoval(reporter, repo, catalog, removal, added);
          }),
        );
      }),
    );
}

function requireEncrypted(repo: Repository): void {
  if (!repo.encrypted) throw new UsageError(`the repository at ${repo.location} is not encrypted; it has no passwords`);
}

/** What `key list` prints of an id: `config`, or the first characters of a key file's name. */
function shortId(id: string): string {
  return id === CONFIG_KEY_ID ? id : id.slice(0, MIN_KEY_ID_PREFIX);
}

/** No other lakeguard process uses the repository while a key goes: two removals cannot each count on the other's key. */
async function underExclusiveLock<T>(repo: Repository, operation: string, body: () => Promise<T>): Promise<T> {
  const lock = await RepositoryLock.acquire(repo, 'exclusive', operation);
  try {
    return await body();
  } finally {
    await lock.release().catch(() => {});
  }
}

/**
 * This host's catalog, for what the key commands remember: the retention dates of what they
 * write (Object Lock) and the key files whose removal waits for their retention.
 */
async function withCatalog<T>(repo: Repository, catalogPath: string, body: (catalog: Catalog) => Promise<T>): Promise<T> {
  const catalog = Catalog.open(catalogPath, repo.id);
  try {
    return await body(catalog);
  } finally {
    repo.onRetention(null);
    catalog.close();
  }
}

/** Under Object Lock the catalog learns the retention of each key file and config written, as with migrate, so that `lock extend` need not ask. */
function recordRetentionDates(repo: Repository, catalog: Catalog): void {
  if (repo.objectLock === null) return;
  const dates = new LockDates(catalog);
  repo.onRetention((name, until, versionId) => dates.record(name, until, versionId));
}

/** The ids of the key files `key remove` found retained on this host (pending deletions of the catalog). */
function pendingKeyRemovals(catalog: Catalog): Set<string> {
  return new Set(pendingDeletions(catalog).flatMap((name) => fileName('keys', name) ?? []));
}

/**
 * The summary of a removal, or (a key file under retention) the error naming its date. That key
 * file becomes a pending deletion of this host's catalog, as a retained run manifest of forget:
 * `lock extend` here leaves it to expire. Only `key remove` deletes it then (forget does not: it
 * cannot tell whether another password remains).
 */
function reportRemoval(reporter: Reporter, repo: Repository, catalog: Catalog, result: KeyRemoval, added: string | null): void {
  const addedText = added === null ? '' : `added key ${shortId(added)} (${added}); `;
  if (!result.removed) {
    setPendingDeletion(catalog, objectKey('keys', result.id), result.lockedUntil.getTime());
    throw new LakeguardError(
      `${addedText}key ${result.id} is retained by Object Lock until ${result.lockedUntil.toISOString()}: it was not removed, and its password opens the repository until it is`,
      {
        hint: `\`lock extend\` on this host now leaves it to expire: run \`lakeguard key remove ${result.id}\` after that date; see docs/keys.md`,
      },
    );
  }
  if (result.id !== CONFIG_KEY_ID) setPendingDeletion(catalog, objectKey('keys', result.id), null);
  reporter.summary(
    { repository: repo.location, ...(added === null ? {} : { added }), removed: result.id },
    `${addedText}removed key ${result.id} from ${repo.location}`,
  );
}
