import type { Catalog } from '../catalog/catalog.js';
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
 * Then the catalog remembers the encryption and format version this config has.
 */
export async function confirmRepositoryIdentity(repo: Repository, catalog: Catalog | null, expected: ExpectedEncryption | null): Promise<void> {
  const where = `${repo.location}config`;
  const encryption = repo.config.encryption.algorithm;
  const remembered = catalog?.rememberedRepository() ?? null;
  if (remembered?.encryption != null && remembered.encryption !== encryption) {
    throw configChanged(`${where} says encryption ${encryption}, but the catalog ${catalog?.path} knows the repository with encryption ${remembered.encryption}`, RESTORE_HINT);
  }
  if (remembered?.formatVersion != null && repo.formatVersion < remembered.formatVersion) {
    throw configChanged(
      `${where} says format version ${repo.formatVersion}, but the catalog ${catalog?.path} knows the repository at format version ${remembered.formatVersion}`,
      'an older config object was put back: restore the current one (lakeguard never downgrades a repository)',
    );
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
  if (catalog !== null && (remembered?.encryption !== encryption || remembered.formatVersion !== repo.formatVersion)) {
    catalog.rememberRepository({ encryption, formatVersion: repo.formatVersion });
  }
}

function configChanged(what: string, hint: string): LakeguardError {
  return new LakeguardError(`config changed: ${what}`, { hint });
}
