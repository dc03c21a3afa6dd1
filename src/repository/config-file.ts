/**
 * The trust anchors of a repository, as it is opened: the `config` object (parsed and checked
 * field by field, its MAC), the `keys/` files a password may open, and what init requires of a
 * store for Object Lock. Repository.init/open/checkConfig use these; nothing else does.
 */
import { timingSafeEqual } from 'node:crypto';
import { IntegrityError, LakeguardError, UsageError } from '../errors.js';
import { getBytes, type ObjectStore } from '../storage/types.js';
import { CONFIG_KEY_ID, FORMAT_NAME, FORMAT_VERSION, REPOSITORY_ID_RE, canonicalJson, type KeyFile, type RepositoryConfig } from './config.js';
import { deriveSubkey, hmacHex, unwrapMasterKeys, type KdfParams, type MasterKeys } from './crypto.js';
import { KMS_FORMAT_VERSION, parseKmsWrap, passwordWrappingKey, type KeyService, type KmsWrap } from './kms.js';
import { fileName, listPrefix } from './layout.js';

/** HKDF label of the version 2 config MAC key (docs/repository-format.md, "Subkeys"). */
const CONFIG_MAC_LABEL = 'lakeguard v2 config mac';

/** Init with Object Lock needs a store that can lock, on a bucket created with Object Lock enabled. */
export async function requireObjectLock(store: ObjectStore): Promise<void> {
  if (!store.capabilities.objectLock) {
    throw new UsageError(`${store.location} cannot use S3 Object Lock: only S3 repositories can`, {
      hint: 'drop --object-lock, or put the repository in an S3 bucket created with Object Lock enabled',
    });
  }
  if (!(await store.objectLockEnabled())) {
    throw new UsageError(`the bucket of ${store.location} does not have S3 Object Lock enabled`, {
      hint: 'create a bucket with Object Lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket ...) and use it as repository.url, or drop --object-lock',
    });
  }
}

export function parseConfig(raw: Buffer, location: string): RepositoryConfig {
  let config: RepositoryConfig;
  try {
    config = JSON.parse(raw.toString('utf8')) as RepositoryConfig;
  } catch (err) {
    throw new IntegrityError(`repository config at ${location} is not valid JSON`, { cause: err });
  }
  if (config === null || typeof config !== 'object' || config.format !== FORMAT_NAME) {
    throw new LakeguardError(`${location}config is not a lakeguard repository config`);
  }
  if (config.version !== 1 && config.version !== FORMAT_VERSION && config.version !== KMS_FORMAT_VERSION) {
    throw new LakeguardError(`repository at ${location} has format version ${JSON.stringify(config.version)}; this lakeguard reads versions 1 to ${KMS_FORMAT_VERSION}`, {
      hint: 'upgrade lakeguard',
    });
  }
  // The id names the catalog's directory (~/.cache/lakeguard/<id>/): never a path of the config's choosing.
  if (typeof config.id !== 'string' || !REPOSITORY_ID_RE.test(config.id)) {
    throw new IntegrityError(`repository config at ${location} has an invalid id ${JSON.stringify(config.id)} (expected 32 lowercase hex digits)`, {
      hint: 'restore the original config object; lakeguard refuses a modified config',
    });
  }
  const algorithm = (config.encryption as { algorithm?: unknown } | undefined)?.algorithm;
  if (algorithm !== 'none' && algorithm !== 'aes-256-gcm') {
    throw new IntegrityError(`repository config at ${location} has an unknown encryption ${JSON.stringify(algorithm ?? null)}`, {
      hint: 'restore the original config object; lakeguard refuses a modified config',
    });
  }
  const removed = (config.encryption as { passwordRemoved?: unknown }).passwordRemoved;
  if (removed !== undefined && typeof removed !== 'string') {
    throw new IntegrityError(`repository config at ${location} has an invalid encryption.passwordRemoved ${JSON.stringify(removed)}`, {
      hint: 'restore the original config object; lakeguard refuses a modified config',
    });
  }
  checkKmsLayer(config, location);
  const lock = config.objectLock as unknown;
  if (lock !== undefined) {
    const l = lock as { mode?: unknown; retentionDays?: unknown };
    if ((l.mode !== 'COMPLIANCE' && l.mode !== 'GOVERNANCE') || !Number.isInteger(l.retentionDays) || (l.retentionDays as number) < 1) {
      throw new IntegrityError(`repository config at ${location} has an invalid objectLock ${JSON.stringify(lock)}`, {
        hint: 'restore the original config object',
      });
    }
  }
  return config;
}

/** Version 3 and a KMS layer go together: one without the other is a modified config. */
function checkKmsLayer(config: RepositoryConfig, location: string): void {
  const encryption = config.encryption as { algorithm: string; kms?: unknown };
  const hint = 'restore the original config object; lakeguard refuses a modified config';
  try {
    parseKmsWrap(encryption.kms, `repository config at ${location}`);
  } catch (err) {
    throw new IntegrityError((err as Error).message, { hint });
  }
  const hasKms = encryption.kms !== undefined;
  if (hasKms !== (config.version === KMS_FORMAT_VERSION) || (hasKms && encryption.algorithm !== 'aes-256-gcm')) {
    throw new IntegrityError(
      `repository config at ${location} has format version ${config.version} ${hasKms ? 'with' : 'without'} a KMS layer (version ${KMS_FORMAT_VERSION} and encryption.kms go together)`,
      { hint },
    );
  }
}

/** The master keys and the key that opened them: `config` (CONFIG_KEY_ID) or a keys/ file's name. */
export interface UnlockedKeys {
  keys: MasterKeys;
  keyId: string;
}

/**
 * The master keys, from the config's wrapped key (unless its password was removed) or any keys/
 * object the password opens. A keys/ object that is not a usable key file is named (warn) and
 * skipped: anyone who can write to keys/ must not be able to lock the owner out with one bad object.
 */
export async function unlockKeys(
  store: ObjectStore,
  config: RepositoryConfig,
  password: string,
  warn: (message: string) => void,
  keyService: KeyService | null = null,
): Promise<UnlockedKeys | null> {
  if (config.encryption.algorithm === 'none') return null;
  const encryption = config.encryption;
  const wrappingKey = (kdf: KdfParams, kms: KmsWrap | undefined): Promise<Buffer> => passwordWrappingKey(password, kdf, kms, keyService, config.id);
  const fromConfig = async (): Promise<UnlockedKeys | null> => {
    const keys = unwrapMasterKeys(await wrappingKey(encryption.kdf, encryption.kms), encryption.wrappedKey);
    return keys === null ? null : { keys, keyId: CONFIG_KEY_ID };
  };
  if (encryption.passwordRemoved === undefined) {
    const primary = await fromConfig();
    if (primary !== null) return primary;
  }
  // Master keys a key file opened that do not sign this config: the first is kept for the caller's
  // MAC check, so that an altered config (which no key file matches) is named as one.
  let foreign: UnlockedKeys | null = null;
  for await (const item of store.list(listPrefix('keys'))) {
    if (item.kind !== 'object') continue;
    try {
      const file = parseKeyFile(await getBytes(store, item.key));
      checkKeyFileKms(file, config);
      const keys = unwrapMasterKeys(await wrappingKey(file.kdf, file.kms), file.wrappedKey);
      if (keys === null) continue;
      const unlocked = { keys, keyId: fileName('keys', item.key)! };
      if (configMacMatches(keys, config)) return unlocked;
      // The password opens master keys, but not this repository's: a key file copied from another
      // repository that has the same password. Taking them would answer "config altered" (or,
      // with that repository's config copied too, open the wrong repository): go on to the next.
      warn(`${store.location}${item.key} skipped: the password opens it, but its master keys are not this repository's (a key file from another repository?); remove it`);
      foreign ??= unlocked;
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      warn(`${store.location}${item.key} skipped: not a usable key file (${err.message})`);
    }
  }
  // No password opens a removed config password's wrapped key (it is sealed under a discarded
  // random key). If this one does, `passwordRemoved` was added by someone else: the caller's MAC
  // check then names the altered config instead of answering "wrong password".
  return (encryption.passwordRemoved === undefined ? null : await fromConfig()) ?? foreign;
}

/** Whether `keys` sign `config` (its configMac), compared in constant time. */
export function configMacMatches(keys: MasterKeys, config: RepositoryConfig): boolean {
  if (config.encryption.algorithm === 'none') return false;
  const mac = config.encryption.configMac;
  const expected = Buffer.from(configMac(keys, config), 'hex');
  const actual = Buffer.from(typeof mac === 'string' && /^[0-9a-f]{64}$/.test(mac) ? mac : '', 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * A key file's KMS layer against the config's (IntegrityError naming the difference): in a KMS
 * repository a password alone must never open the master keys, and a key file naming another
 * KMS key is not asked for (KMS would be called with a key someone with write access chose).
 */
export function checkKeyFileKms(file: KeyFile, config: RepositoryConfig): void {
  const repoKms = config.encryption.algorithm === 'none' ? undefined : config.encryption.kms;
  if (file.kms === undefined && repoKms !== undefined) throw new IntegrityError('no KMS layer, in a repository whose passwords all need one');
  if (file.kms !== undefined && repoKms === undefined) throw new IntegrityError('a KMS layer, in a repository without one');
  if (file.kms !== undefined && repoKms !== undefined && file.kms.keyId !== repoKms.keyId) {
    throw new IntegrityError(`its KMS key ${file.kms.keyId} is not the repository's (${repoKms.keyId})`);
  }
}

/** A key file's JSON, checked for the fields a password needs (IntegrityError naming what is wrong). */
export function parseKeyFile(body: Buffer): KeyFile {
  let file: Partial<KeyFile> | null;
  try {
    file = JSON.parse(body.toString('utf8')) as Partial<KeyFile> | null;
  } catch {
    throw new IntegrityError('not JSON');
  }
  if (file === null || typeof file !== 'object' || typeof file.kdf !== 'object' || file.kdf === null || typeof file.wrappedKey !== 'string') {
    throw new IntegrityError('kdf or wrappedKey missing');
  }
  parseKmsWrap(file.kms, 'key file');
  return file as KeyFile;
}

/**
 * HMAC-SHA-256 of the canonical config with an empty configMac. Version 2 keys it with a subkey
 * (HKDF label CONFIG_MAC_LABEL): under version 1's key, the blob-id key, any blob id was a MAC of
 * its content, so someone who knew the id of a blob holding a config's canonical JSON held a
 * valid MAC for that config.
 */
export function configMac(keys: MasterKeys, config: RepositoryConfig): string {
  const unsigned = canonicalJson({ ...config, encryption: { ...config.encryption, configMac: '' } });
  const key = config.version === 1 ? keys.macKey : deriveSubkey(keys.macKey, CONFIG_MAC_LABEL);
  return hmacHex(key, unsigned);
}
