import type { Catalog } from '../catalog/catalog.js';
import { catalogHoldsNothing } from '../catalog/sync.js';
import { LakeguardError } from '../errors.js';
import type { Repository } from '../repository/repository.js';

/** What the operator's own input says the repository's encryption is, and which input says it. */
export interface ExpectedEncryption {
  encryption: string;
  /** e.g. "the policy /etc/lakeguard.yaml says the repository is encrypted (aes-256-gcm)" */
  because: string;
  /** The next step when the repository really is unencrypted. */
  ifUnencrypted: string;
}

const RESTORE_HINT =
  'someone replaced the config object: put the original back (an earlier object version, or a copy); ' +
  'a repository keeps the encryption `lakeguard init` gave it';

/**
 * Refuses a repository whose `config` disagrees with what is known about it, before anything
 * is read or written. The dangerous case is a config swapped for one that says `encryption:
 * none`: it has no MAC to check, and the next backup would write plaintext. It is refused when
 * - the catalog remembers the repository as encrypted (or at a later format version);
 * - the policy file says the repository is encrypted (its default), or, without a policy file,
 *   a password source was given explicitly (--password-file, LAKEGUARD_PASSWORD_FILE or _COMMAND);
 * - the catalog remembers nothing yet, and the repository holds a keys/ object or a sealed
 *   document (Repository.encryptionEvidence).
 * It also refuses a config whose id names a catalog that knows the repository at another
 * location (another repository's config copied here), unless `rebuilding`.
 * Then the catalog remembers the encryption and format version this config has.
 */
export async function confirmRepositoryIdentity(
  repo: Repository,
  catalog: Catalog | null,
  expected: ExpectedEncryption | null,
  opts: { rebuilding?: boolean } = {},
): Promise<void> {
  const where = `${repo.location}config`;
  const encryption = repo.config.encryption.algorithm;
  const remembered = catalog?.rememberedRepository() ?? null;
  // The catalog's path follows the id in config, which another repository's config (opened by the
  // same password, its MAC valid) also has: this catalog would then answer for, and a backup
  // deduplicate against, packs of a repository elsewhere. A rebuild is the way to follow a move.
  const moved = remembered?.location != null && remembered.location !== repo.location;
  if (moved && opts.rebuilding !== true) {
    throw configChanged(
      `${where} names repository ${repo.id}, which the catalog ${catalog?.path} knows at ${remembered.location}`,
      'if someone copied another repository\'s config here, put the original back; if the repository moved here, ' +
        'run `lakeguard catalog rebuild` (or give this location a catalog of its own with --catalog)',
    );
  }
  if (remembered?.encryption != null && remembered.encryption !== encryption) {
    throw configChanged(`${where} says encryption ${encryption}, but the catalog ${catalog?.path} knows the repository with encryption ${remembered.encryption}`, RESTORE_HINT);
  }
  if (remembered?.formatVersion != null && repo.formatVersion < remembered.formatVersion) {
    throw configChanged(
      `${where} says format version ${repo.formatVersion}, but the catalog ${catalog?.path} knows the repository at format version ${remembered.formatVersion}`,
      'an older config object was put back: restore the current one (lakeguard never downgrades a repository)',
    );
  }
  // A host that knows nothing of this repository yet (no catalog of its id, or an empty one, that
  // remembers where it is): another repository's config would open with the same password and
  // make a fresh catalog, and nothing here would authenticate. One document that does is enough.
  if (encryption !== 'none' && remembered?.location == null && opts.rebuilding !== true && (catalog === null || catalogHoldsNothing(catalog))) {
    const foreign = await repo.foreignKeysEvidence();
    if (foreign.length > 0) {
      const objects = foreign.map((key) => `${repo.location}${key}`).join(' and ');
      throw configChanged(
        `${where} opens with this password, but ${objects} ${foreign.length > 1 ? 'do' : 'does'} not authenticate under its keys: the config of another repository?`,
        "if someone copied another repository's config here, put the original back; if that document is damaged, `lakeguard catalog rebuild --skip-damaged` builds this host's catalog without it",
      );
    }
  }
  if (encryption === 'none') {
    if (expected !== null && expected.encryption !== 'none') {
      throw configChanged(`${where} says encryption none, but ${expected.because}`, `${RESTORE_HINT}; ${expected.ifUnencrypted}`);
    }
    if (remembered?.encryption == null) {
      const evidence = await repo.encryptionEvidence();
      if (evidence !== null) throw configChanged(`${where} says encryption none, but ${evidence}`, RESTORE_HINT);
    }
  }
  // A rebuild for a new location leaves the old catalog as it is: the new one learns the location on its first command.
  if (catalog !== null && !moved && (remembered?.encryption !== encryption || remembered.formatVersion !== repo.formatVersion || remembered.location !== repo.location)) {
    catalog.rememberRepository({ encryption, formatVersion: repo.formatVersion, location: repo.location });
  }
}

function configChanged(what: string, hint: string): LakeguardError {
  return new LakeguardError(`config changed: ${what}`, { hint });
}
