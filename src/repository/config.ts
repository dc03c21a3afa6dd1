import { createHash, randomBytes } from 'node:crypto';
import type { ChunkerParams } from './chunker.js';
import type { KdfParams } from './crypto.js';
import type { KmsWrap } from './kms.js';
import type { ObjectLockConfig } from './object-lock.js';

export const FORMAT_NAME = 'lakeguard-repository';
/** The version `init` writes and every writer requires (docs/repository-format.md). */
export const FORMAT_VERSION = 2;
/**
 * Versions a reader opens. Version 1 stays readable (restore, ls, verify) so that nobody is
 * locked out of their backups mid-incident; writing to it needs `lakeguard migrate`. Version 3
 * is version 2 with KMS-wrapped passwords (kms.ts): init writes it only with a KMS key, so that
 * a lakeguard that does not know KMS refuses it by version ("upgrade lakeguard") instead of
 * calling every password wrong.
 */
export type FormatVersion = 1 | 2 | 3;

/** A repository id: 16 random bytes as lowercase hex. Checked before it is used in a path. */
export const REPOSITORY_ID_RE = /^[0-9a-f]{32}$/;

/** The plaintext `config` object at the repository root (docs/repository-format.md). */
export interface RepositoryConfig {
  format: typeof FORMAT_NAME;
  version: FormatVersion;
  id: string;
  created: string;
  chunker: ChunkerParams;
  pack: { targetSize: number };
  compression: { algorithm: 'zstd'; level: number };
  encryption: EncryptionConfig;
  /** Present when every object the repository writes carries an S3 Object Lock retention. */
  objectLock?: ObjectLockConfig;
}

export type EncryptionConfig =
  | {
      algorithm: 'aes-256-gcm';
      kdf: KdfParams;
      /** The master keys sealed with the password-derived key. */
      wrappedKey: string;
      /**
       * HMAC-SHA-256 of the canonical config with this field empty, under the config-MAC subkey
       * (version 2; version 1 used the blob-id key itself): an altered config (e.g. a swapped
       * chunker, a weakened KDF, a removed Object Lock) is refused on open.
       */
      configMac: string;
      /**
       * When the password of `config` was removed (`key remove config`, `key passwd`): no password
       * opens `wrappedKey` any more (it is sealed under a random key that was thrown away), so
       * readers go straight to keys/. Covered by the config MAC like every other field.
       */
      passwordRemoved?: string;
      /** Version 3: the KMS layer of the config's password; every keys/ file then has one too. */
      kms?: KmsWrap;
    }
  | { algorithm: 'none' };

/** A password in a key file: keys/<id>, where id is the SHA-256 of the file. */
export interface KeyFile {
  created: string;
  host?: string;
  kdf: KdfParams;
  wrappedKey: string;
  /** The password's KMS layer: present exactly when the config has one (format version 3). */
  kms?: KmsWrap;
}

/** The id `key list` and `key remove` give the password whose wrapped key is in `config`. */
export const CONFIG_KEY_ID = 'config';

export function newRepositoryId(): string {
  return randomBytes(16).toString('hex');
}

/** Stable JSON (sorted keys) so that a MAC over it does not depend on property order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
