/**
 * The Repository class: the one owner of the store under a repository, its master keys and its
 * layout. Over 500 lines on purpose: every method here needs the private store or the keys
 * (that is what keeps them private to src/repository/), and each is a few lines. What does not
 * need them lives apart: config-file.ts (config and key files on open), layout.ts, documents.ts,
 * pack.ts, packer.ts, remove.ts, locks.ts.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { IntegrityError, LakeguardError, RepositoryMissingError, StorageError, UsageError, WrongPasswordError, isNotFound } from '../errors.js';
import { getBytes, readAll, type ObjectEntry, type ObjectRetention, type ObjectStore, type PutOptions, type RequestStats, type ThawOptions, type ThawState } from '../storage/types.js';
import { DEFAULT_CHUNKER, type ChunkerParams } from './chunker.js';
import { checkKeyFileKms, configMac, configMacMatches, parseConfig, parseKeyFile, requireObjectLock, unlockKeys } from './config-file.js';
import { encodeRaw, type EncodeSettings } from './blob-encode.js';
import { decompressBlob } from './compress.js';
import {
  CONFIG_KEY_ID,
  FORMAT_NAME,
  FORMAT_VERSION,
  canonicalJson,
  newRepositoryId,
  sha256Hex,
  type FormatVersion,
  type KeyFile,
  type RepositoryConfig,
} from './config.js';
import {
  blobIdBytes,
  defaultKdfParams,
  deriveKey,
  generateMasterKeys,
  open as openSealed,
  seal,
  wrapMasterKeys,
  type KdfParams,
  type MasterKeys,
} from './crypto.js';
import {
  frameDocument,
  isUnencryptedDocument,
  newIndexName,
  openDocument,
  sealDocument,
  sealDocumentV1,
  unframeDocument,
  v1NameProblem,
  type DocumentDir,
} from './documents.js';
import { KMS_FORMAT_VERSION, combineWrappingKey, newKmsWrap, type KeyService } from './kms.js';
import { isLockable, writeRetainUntil, type ObjectLockConfig } from './object-lock.js';
import { fileName, listPrefix, objectKey, type FileType } from './layout.js';
import { BlobType, decodePackHeader, splitPack, type PackEntry } from './pack.js';
import { versionsOf } from './remove.js';

export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;
export const DEFAULT_COMPRESSION_LEVEL = 3;

export interface InitOptions {
  /** null: `encryption: none`. */
  password: string | null;
  chunker?: ChunkerParams;
  packSize?: number;
  compressionLevel?: number;
  /** Tests use a cheap KDF; production keeps the default. */
  kdf?: KdfParams;
  /** Put an S3 Object Lock retention on every object the repository writes (the bucket must have Object Lock enabled). */
  objectLock?: ObjectLockConfig;
  /** Told the retention date of `config` (the repository's listener does not exist yet). */
  onRetention?: RetentionListener;
  /**
   * Only tests create a version 1 repository (with a writer of version 1 documents), to prove
   * that lakeguard reads and migrates the repositories earlier releases wrote.
   */
  formatVersion?: 1;
  /** Wrap every password with this KMS key too (format version 3; kms.ts). */
  kms?: { keyId: string; service: KeyService };
}

/** Told the retention date of each object the repository wrote with one (the catalog keeps them for `lock extend`). */
export type RetentionListener = (name: string, retainUntil: Date, versionId: string | null) => void;

export interface OpenOptions {
  /** Called only when the repository is encrypted, so unencrypted repositories need no password. */
  password: () => Promise<string>;
  /** Passed on every PUT the repository makes (the target bucket's SSE-KMS key). */
  sseKmsKeyId?: string;
  /**
   * S3 storage class of the packs this repository writes (policy `storage_class`); every other
   * object stays in the bucket's default class so sync and queries never wait for a thaw.
   */
  packStorageClass?: string;
  /** Told of each keys/ object that is skipped because it is not a usable key file. */
  onWarning?: (message: string) => void;
  /** Asked to decrypt the passwords' data keys when the config has a KMS layer (format version 3), and for `addPassword`. */
  keyService?: KeyService;
  /**
   * Told the repository's id once its config is read (from a later turn of the event loop, so
   * while the key files are listed and read and the password's scrypt runs on a helper thread):
   * a command opens its catalog meanwhile. The id is checked for its form but not authenticated
   * yet: the config's MAC is checked once the keys are derived, and open fails if it does not match.
   */
  onConfig?: (id: string) => void;
}

/** A blob ready to go into a pack. */
export interface EncodedBlob {
  id: Buffer;
  type: BlobType;
  stored: Buffer;
  compressed: boolean;
  rawLength: number;
}

const AAD_HEADER = Buffer.from('lakeguard pack header v1');

export type { DocumentDir } from './documents.js';
export type { FileType } from './layout.js';

/** A password of the repository as `key list` shows it (docs/keys.md). */
export interface RepositoryKey {
  /** CONFIG_KEY_ID for the password in `config`, else the key file's name (its SHA-256). */
  id: string;
  /** When it was added (for `config`, when the repository was created); null when unreadable. */
  created: string | null;
  /** The host it was added on; null for `config` (which does not record one) and unreadable files. */
  host: string | null;
  /** Why no password can open this key file (not JSON, fields missing), or null. */
  problem: string | null;
}

/** A file of the repository as listed: its name (a pack's id) and size in bytes. */
export interface RepositoryFile {
  name: string;
  size: number;
  /** When the object was written, as the store lists it. */
  lastModified: Date;
}

/**
 * The repository format (docs/repository-format.md) over an ObjectStore: config and keys,
 * blob encoding (compress → encrypt, authenticated by the blob id), pack headers, index files
 * and run manifests. It holds no run state; writers are in packer.ts and the engine.
 */
export class Repository {
  private constructor(
    /** The store under the repository; private: nothing outside src/repository/ knows the layout. */
    private readonly store: ObjectStore,
    readonly config: RepositoryConfig,
    private readonly keys: MasterKeys | null,
    private readonly putDefaults: PutOptions,
    /** A test-built version 1 repository writes version 1 documents; nothing else writes to version 1. */
    private readonly v1Writer = false,
  ) {}

  private retentionListener: RetentionListener | null = null;
  /** The key the password opened (CONFIG_KEY_ID or a key file's name); null when unencrypted or just created. */
  private openedKeyId: string | null = null;
  /** KMS, for a repository with a KMS layer: new passwords need a data key of their own. */
  private keyService: KeyService | null = null;

  /** The Object Lock setting, or null when objects are written without retention. */
  get objectLock(): ObjectLockConfig | null {
    return this.config.objectLock ?? null;
  }

  /** Registers the one listener told of every retention date this repository puts. */
  onRetention(listener: RetentionListener | null): void {
    this.retentionListener = listener;
  }

  get id(): string {
    return this.config.id;
  }
  /** Where the repository is, e.g. `s3://bucket/prefix/` (never secrets): messages name objects as location + key. */
  get location(): string {
    return this.store.location;
  }
  /** A snapshot of the requests made to the repository so far (subtract two with statsDelta). */
  requestCounts(): RequestStats {
    return { ...this.store.stats };
  }
  get formatVersion(): FormatVersion {
    return this.config.version;
  }
  get encrypted(): boolean {
    return this.keys !== null;
  }
  get packSize(): number {
    return this.config.pack.targetSize;
  }
  get chunker(): ChunkerParams {
    return this.config.chunker;
  }

  static async exists(store: ObjectStore): Promise<boolean> {
    try {
      await store.head('config');
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * The first object of a repository at this location besides `config` (under keys/, runs/,
   * index/ or packs/), or null: where config is missing, such an object says it was deleted.
   * Up to four LISTs, asked only when config is missing.
   */
  static async leftover(store: ObjectStore): Promise<string | null> {
    try {
      for (const type of ['keys', 'runs', 'index', 'packs'] as const) {
        for await (const item of store.list(listPrefix(type))) {
          if (item.kind === 'object') return item.key;
        }
      }
    } catch (err) {
      if (isNotFound(err)) return null; // no bucket (or directory) yet
      throw err;
    }
    return null;
  }

  static async init(store: ObjectStore, opts: InitOptions, putDefaults: PutOptions = {}): Promise<Repository> {
    if (await Repository.exists(store)) {
      throw new UsageError(`a lakeguard repository already exists at ${store.location}`, {
        hint: 'use it as it is, or choose another repository.url; init never overwrites',
      });
    }
    const leftover = await Repository.leftover(store);
    if (leftover !== null) {
      // A new config here would make a second repository (new keys) over the objects of the first.
      throw new UsageError(`${store.location} has no config, but holds ${leftover}: a repository whose config was deleted (or hidden by a delete marker)`, {
        hint: 'put config back from a copy of the repository (with versioning or Object Lock: its earlier object version), or choose another repository.url; init never writes over a repository',
      });
    }
    if (opts.objectLock !== undefined) await requireObjectLock(store);
    const keys = opts.password === null ? null : generateMasterKeys();
    const base = {
      format: FORMAT_NAME,
      version: opts.formatVersion ?? (opts.kms === undefined ? FORMAT_VERSION : KMS_FORMAT_VERSION),
      id: newRepositoryId(),
      created: new Date().toISOString(),
      chunker: opts.chunker ?? DEFAULT_CHUNKER,
      pack: { targetSize: opts.packSize ?? DEFAULT_PACK_SIZE },
      compression: { algorithm: 'zstd', level: opts.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL },
      ...(opts.objectLock === undefined ? {} : { objectLock: { mode: opts.objectLock.mode, retentionDays: opts.objectLock.retentionDays } }),
    } as const;
    let config: RepositoryConfig;
    if (keys === null || opts.password === null) {
      config = { ...base, encryption: { algorithm: 'none' } };
    } else {
      const kdf = opts.kdf ?? defaultKdfParams();
      const passwordKey = await deriveKey(opts.password, kdf);
      if (opts.kms === undefined) {
        config = { ...base, encryption: { algorithm: 'aes-256-gcm', kdf, wrappedKey: wrapMasterKeys(passwordKey, keys), configMac: '' } };
      } else {
        const { dataKey, wrap } = await newKmsWrap(opts.kms.service, opts.kms.keyId, base.id);
        const wrappedKey = wrapMasterKeys(combineWrappingKey(passwordKey, dataKey), keys);
        config = { ...base, encryption: { algorithm: 'aes-256-gcm', kdf, wrappedKey, configMac: '', kms: wrap } };
      }
      config.encryption = { ...config.encryption, configMac: configMac(keys, config) } as RepositoryConfig['encryption'];
    }
    // Create-only: two concurrent inits cannot both win. A retried PUT whose first attempt did
    // land (the response was lost) is refused too: then the stored config is ours, byte for byte.
    const body = Buffer.from(JSON.stringify(config, null, 2) + '\n');
    const lock = config.objectLock === undefined ? {} : { objectLock: { mode: config.objectLock.mode, retainUntil: writeRetainUntil(Date.now(), config.objectLock) } };
    let versionId: string | null = null;
    try {
      versionId = (await store.put('config', body, { ...putDefaults, ...lock, ifNoneMatch: true, contentType: 'application/json' })).versionId;
    } catch (err) {
      if (!(err instanceof StorageError && err.code === 'PreconditionFailed')) throw err;
      if (!(await getBytes(store, 'config')).equals(body)) {
        throw new UsageError(`a lakeguard repository was just created at ${store.location} by another init`, { hint: 'use that repository' });
      }
    }
    if (lock.objectLock !== undefined && versionId !== null) opts.onRetention?.('config', lock.objectLock.retainUntil, versionId);
    const repo = new Repository(store, config, keys, putDefaults, config.version === 1);
    repo.keyService = opts.kms?.service ?? null;
    return repo;
  }

  static async open(store: ObjectStore, opts: OpenOptions): Promise<Repository> {
    let raw: Buffer;
    try {
      raw = await getBytes(store, 'config');
    } catch (err) {
      if (isNotFound(err)) throw new RepositoryMissingError(store.location, { cause: err, leftover: await Repository.leftover(store).catch(() => null) });
      throw err;
    }
    const config = parseConfig(raw, store.location);
    const onConfig = opts.onConfig;
    if (onConfig !== undefined) setImmediate(() => onConfig(config.id));
    const putDefaults: PutOptions = {
      ...(opts.sseKmsKeyId === undefined ? {} : { sseKmsKeyId: opts.sseKmsKeyId }),
      ...(opts.packStorageClass === undefined ? {} : { storageClass: opts.packStorageClass }),
    };
    if (config.encryption.algorithm === 'none') return new Repository(store, config, null, putDefaults);

    const password = await opts.password();
    const unlocked = await unlockKeys(store, config, password, opts.onWarning ?? (() => {}), opts.keyService ?? null);
    if (unlocked === null) throw new WrongPasswordError(store.location);
    const keys = unlocked.keys;
    if (!configMacMatches(keys, config)) {
      throw new IntegrityError(`repository config at ${store.location} was altered (its MAC does not match)`, {
        hint: 'restore the original config object; lakeguard refuses a modified config',
      });
    }
    const repo = new Repository(store, config, keys, putDefaults);
    repo.openedKeyId = unlocked.keyId;
    repo.keyService = opts.keyService ?? null;
    return repo;
  }

  /** The key this repository was opened with: CONFIG_KEY_ID, a key file's name, or null (unencrypted, or created by init). */
  get openedWithKey(): string | null {
    return this.openedKeyId;
  }

  /**
   * Writers need format version 2: a version 1 config's MAC can be forged by anyone who knows a
   * blob id (both were HMAC-SHA-256 under the same key), so its settings (Object Lock, pack
   * size, chunker) cannot be trusted for writing. Reading stays possible.
   */
  requireWritable(): void {
    if (this.config.version >= FORMAT_VERSION || this.v1Writer) return;
    throw new LakeguardError(
      `repository at ${this.store.location} has format version ${this.config.version}; lakeguard writes only to version ${FORMAT_VERSION}`,
      { hint: 'run `lakeguard migrate` once (it rewrites only config); restore, ls, find and verify work without it' },
    );
  }

  /**
   * Rewrites a version 1 `config` as version 2 (same id, keys and settings; the MAC under the
   * config-MAC subkey) and returns the repository opened with it. One PUT: a crash leaves either
   * config. Documents are not rewritten: version 1 documents stay valid (documents.ts), which
   * also suits Object Lock, where they could not be replaced.
   */
  async migrateToCurrentVersion(): Promise<Repository> {
    if (this.config.version >= FORMAT_VERSION) return this;
    const base = { ...this.config, version: FORMAT_VERSION } as RepositoryConfig;
    let config: RepositoryConfig = base;
    if (this.keys !== null && base.encryption.algorithm !== 'none') {
      const unsigned: RepositoryConfig = { ...base, encryption: { ...base.encryption, configMac: '' } };
      config = { ...unsigned, encryption: { ...unsigned.encryption, configMac: configMac(this.keys, unsigned) } } as RepositoryConfig;
    }
    const migrated = new Repository(this.store, config, this.keys, this.putDefaults);
    migrated.retentionListener = this.retentionListener;
    // Not create-only: this is the one overwrite of config. Under Object Lock the old version stays
    // (retained) below the new one; the catalog remembers the version, so putting it back is refused.
    await migrated.put('config', Buffer.from(JSON.stringify(config, null, 2) + '\n'), { contentType: 'application/json' });
    return migrated;
  }

  /**
   * For a config that says `encryption: none`: what in the repository says it was encrypted
   * after all (a keys/ object, a sealed document), or null. Costs a LIST or two and one GET.
   */
  async encryptionEvidence(): Promise<string | null> {
    for await (const item of this.store.list(listPrefix('keys'))) {
      if (item.kind === 'object') return `${item.key} exists (a password of an encrypted repository)`;
    }
    for (const dir of ['runs', 'index', 'forgets'] as const) {
      for await (const item of this.store.list(listPrefix(dir))) {
        if (item.kind !== 'object') continue;
        const name = fileName(dir, item.key)!;
        const body = await getBytes(this.store, item.key);
        return isUnencryptedDocument(dir, name, body) ? null : `${item.key} is not an unencrypted document (it is sealed, or damaged)`;
      }
    }
    return null;
  }

  /**
   * What lies at the top of the repository besides `config` and the directories of the format
   * (an object, or a prefix ending in `/`): nothing reads it. One LIST with a delimiter.
   */
  async strangers(): Promise<string[]> {
    const types: FileType[] = ['packs', 'index', 'runs', 'forgets', 'acks', 'runsets', 'drills', 'checkpoints', 'keys', 'locks'];
    const known = new Set(['config', ...types.map(listPrefix)]);
    const found: string[] = [];
    for await (const item of this.store.list('', { delimiter: '/' })) {
      const key = item.kind === 'object' ? item.key : item.prefix;
      if (!known.has(key)) found.push(key);
    }
    return found;
  }

  /**
   * For an encrypted repository: the first object under runs/ and the first under index/ when
   * neither opens under the master keys the password opened, else none (one of them opens, or
   * there is neither). A config copied from another repository that the same password opens has valid MAC
   * and keys, but not this repository's: nothing here authenticates under them. Costs up to two
   * LISTs and two GETs.
   */
  async foreignKeysEvidence(): Promise<string[]> {
    if (this.keys === null) return [];
    const failed: string[] = [];
    for (const dir of ['runs', 'index'] as const) {
      for await (const item of this.store.list(listPrefix(dir))) {
        if (item.kind !== 'object') continue;
        try {
          openDocument(this.keys.encKey, dir, fileName(dir, item.key)!, await getBytes(this.store, item.key));
          return [];
        } catch (err) {
          if (isNotFound(err)) continue;
          if (!(err instanceof IntegrityError)) throw err;
          failed.push(item.key);
        }
        break;
      }
    }
    return failed;
  }

  /**
   * Every password of the repository: config's (unless it was removed), then each keys/ object,
   * an unusable one with its problem. keys/ holds a handful of small files: one LIST, a GET each.
   */
  async listKeys(): Promise<RepositoryKey[]> {
    const encryption = this.config.encryption;
    if (encryption.algorithm === 'none') return [];
    const keys: RepositoryKey[] = [];
    if (encryption.passwordRemoved === undefined) keys.push({ id: CONFIG_KEY_ID, created: this.config.created, host: null, problem: null });
    for await (const item of this.store.list(listPrefix('keys'))) {
      if (item.kind !== 'object') continue;
      const id = fileName('keys', item.key)!;
      try {
        const file = parseKeyFile(await getBytes(this.store, item.key));
        keys.push({ id, created: typeof file.created === 'string' ? file.created : null, host: typeof file.host === 'string' ? file.host : null, problem: null });
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        keys.push({ id, created: null, host: null, problem: err.message });
      }
    }
    return keys;
  }

  /**
   * Removes the password of `config` and returns the repository opened with the new config: its
   * wrappedKey is sealed again under a random key nobody keeps (so a reader of any version
   * still parses it, and no password opens it) and `passwordRemoved` says so; the MAC is
   * recomputed. One PUT, like migrate: a crash leaves the old or the new config. The caller
   * holds an exclusive lock and has checked that another password remains.
   */
  async removeConfigPassword(): Promise<Repository> {
    const encryption = this.config.encryption;
    if (this.keys === null || encryption.algorithm === 'none') throw new UsageError('this repository is not encrypted; it has no passwords');
    if (encryption.passwordRemoved !== undefined) return this;
    // Overwrites config: only the one this process checked on open, never one changed since.
    await this.checkConfig();
    const unsigned = {
      ...this.config,
      encryption: { ...encryption, wrappedKey: wrapMasterKeys(randomBytes(32), this.keys), passwordRemoved: new Date().toISOString(), configMac: '' },
    } as RepositoryConfig;
    const config = { ...unsigned, encryption: { ...unsigned.encryption, configMac: configMac(this.keys, unsigned) } } as RepositoryConfig;
    const next = new Repository(this.store, config, this.keys, this.putDefaults);
    next.retentionListener = this.retentionListener;
    next.openedKeyId = this.openedKeyId;
    // Under Object Lock the old config version stays (retained) below the new one: docs/keys.md.
    await next.put('config', Buffer.from(JSON.stringify(config, null, 2) + '\n'), { contentType: 'application/json' });
    return next;
  }

  /** Adds another password (keys/<id>, recording this host and the time) that opens the same master keys; returns its id. */
  async addPassword(password: string, kdf: KdfParams = defaultKdfParams()): Promise<string> {
    if (this.keys === null || this.config.encryption.algorithm === 'none') throw new UsageError('this repository is not encrypted; it has no passwords');
    const passwordKey = await deriveKey(password, kdf);
    const kmsKeyId = this.config.encryption.kms?.keyId;
    let file: KeyFile;
    if (kmsKeyId === undefined) {
      file = { created: new Date().toISOString(), host: hostname(), kdf, wrappedKey: wrapMasterKeys(passwordKey, this.keys) };
    } else {
      if (this.keyService === null) throw new UsageError(`a password of this repository needs the KMS key ${kmsKeyId}, and no KMS client was given`);
      const { dataKey, wrap } = await newKmsWrap(this.keyService, kmsKeyId, this.id);
      file = { created: new Date().toISOString(), host: hostname(), kdf, wrappedKey: wrapMasterKeys(combineWrappingKey(passwordKey, dataKey), this.keys), kms: wrap };
    }
    const body = Buffer.from(JSON.stringify(file, null, 2) + '\n');
    const id = sha256Hex(body);
    await this.put(objectKey('keys', id), body, { ifNoneMatch: true });
    return id;
  }

  // ---- blobs -------------------------------------------------------------------------

  blobId(raw: Uint8Array): Buffer {
    return blobIdBytes(this.keys?.macKey ?? null, raw);
  }

  encodeBlob(raw: Uint8Array, type: BlobType, id: Buffer = this.blobId(raw)): EncodedBlob {
    const { stored, compressed } = encodeRaw(raw, id, this.keys?.encKey ?? null, this.config.compression.level);
    return { id, type, stored, compressed, rawLength: raw.length };
  }

  /**
   * What encodeBlob and blobId need besides the blob, for the encode threads (encode-pool.ts):
   * copies of the keys (a thread cannot share this thread's Buffers).
   */
  encodeSettings(): EncodeSettings {
    const k = this.keys;
    return { encKey: k === null ? null : new Uint8Array(k.encKey), macKey: k === null ? null : new Uint8Array(k.macKey), level: this.config.compression.level, chunker: { ...this.config.chunker } };
  }

  /** Decodes one stored blob and checks that its content hashes to its id: every byte is authenticated. */
  decodeBlob(stored: Uint8Array, entry: { id: Buffer; compressed: boolean; rawLength: number }, where: string): Buffer {
    const hex = entry.id.toString('hex');
    let data: Buffer;
    try {
      data = this.keys === null ? Buffer.from(stored) : openSealed(this.keys.encKey, stored, entry.id);
    } catch (err) {
      throw new IntegrityError(`blob ${hex} in ${where}: ${err instanceof Error ? err.message : err}`, { cause: err });
    }
    let raw: Buffer;
    try {
      raw = decompressBlob(data, entry.compressed, entry.rawLength);
    } catch (err) {
      throw new IntegrityError(`blob ${hex} in ${where}: ${err instanceof Error ? err.message : err}`, { cause: err });
    }
    if (!this.blobId(raw).equals(entry.id)) throw new IntegrityError(`blob ${hex} in ${where}: content does not match its id`);
    return raw;
  }

  // ---- packs -------------------------------------------------------------------------

  sealHeader(header: Buffer): Buffer {
    return this.keys === null ? header : seal(this.keys.encKey, header, AAD_HEADER);
  }

  /** Parses a whole pack's header (authenticated when encrypted). */
  readPackHeader(pack: Buffer, packId: string): { entries: PackEntry[]; blobArea: Buffer } {
    const { blobArea, header } = splitPack(pack, packId);
    let plain: Buffer;
    try {
      plain = this.keys === null ? Buffer.from(header) : openSealed(this.keys.encKey, header, AAD_HEADER);
    } catch (err) {
      throw new IntegrityError(`pack ${packId}: header failed authentication`, { cause: err });
    }
    const entries = decodePackHeader(plain, packId);
    const last = entries.at(-1);
    if (last !== undefined && last.offset + last.length !== blobArea.length) {
      throw new IntegrityError(`pack ${packId}: blob area is ${blobArea.length} bytes, header says ${last.offset + last.length}`);
    }
    return { entries, blobArea };
  }

  // ---- index files and manifests: small documents, compressed and sealed ------------

  /**
   * Writes `dir/name` create-only; a null name (index files) gets a fresh time-ordered name.
   * Version 2 seals the document with its name (documents.ts); a test-built version 1
   * repository writes version 1 documents (index files named by the SHA-256 of their bytes).
   * Returns the name.
   */
  async writeDocument(dir: DocumentDir, name: string | null, doc: unknown): Promise<string> {
    return this.writeDocumentJson(dir, name, JSON.stringify(doc));
  }

  /** `writeDocument` of a document already serialized as JSON text. */
  async writeDocumentJson(dir: DocumentDir, name: string | null, text: string): Promise<string> {
    const framed = frameDocument(Buffer.from(text), this.config.compression.level);
    const encKey = this.keys?.encKey ?? null;
    let id: string;
    let body: Buffer;
    if (this.config.version === 1) {
      body = sealDocumentV1(encKey, dir, framed);
      id = name ?? sha256Hex(body);
    } else {
      id = name ?? newIndexName();
      body = sealDocument(encKey, dir, id, framed);
    }
    try {
      await this.put(objectKey(dir, id), body, { ifNoneMatch: true });
    } catch (err) {
      if (!(name === null && err instanceof StorageError && err.code === 'PreconditionFailed')) throw err;
      // A name this writer chose (content hash, or random): a retried PUT whose first attempt
      // landed. Accept it only if the stored bytes are ours.
      if (!(await getBytes(this.store, objectKey(dir, id))).equals(body)) throw err;
    }
    return id;
  }

  /** Reads and authenticates `dir/name`; a document stored under another name than its own is refused. */
  async readDocument<T>(dir: DocumentDir, name: string): Promise<T> {
    const body = await getBytes(this.store, objectKey(dir, name));
    const where = this.where(dir, name);
    let opened: { framed: Buffer; v1: boolean };
    try {
      opened = openDocument(this.keys?.encKey ?? null, dir, name, body);
    } catch (err) {
      throw new IntegrityError(`${where}: failed authentication (corrupted or tampered)`, { cause: err });
    }
    let doc: unknown;
    try {
      doc = unframeDocument(opened.framed);
    } catch (err) {
      throw new IntegrityError(`${where}: cannot be decoded (${err instanceof Error ? err.message : err})`, { cause: err });
    }
    const problem = opened.v1 ? v1NameProblem(dir, name, body, doc) : null;
    if (problem !== null) throw new IntegrityError(`${where}: ${problem}`);
    return doc as T;
  }

  // ---- files by type and name (layout.ts knows where they are) -----------------------

  /** `location` + the file's key: how messages name a repository object (`s3://b/p/index/<name>`). */
  where(type: FileType, name: string): string {
    return `${this.store.location}${objectKey(type, name)}`;
  }

  /**
   * The files of one type, by name (a pack's id) and size, as they are listed: one LIST, streamed.
   * Objects under packs/ that are not packs are left out (listPacks names them). `namePrefix`:
   * only the names that start with it (one LIST of that prefix).
   */
  async *list(type: FileType, opts: { after?: string; signal?: AbortSignal; namePrefix?: string } = {}): AsyncIterable<RepositoryFile> {
    const listing = this.store.list(listPrefix(type) + (opts.namePrefix ?? ''), {
      ...(opts.after === undefined ? {} : { startAfter: objectKey(type, opts.after) }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
    for await (const item of listing) {
      if (item.kind !== 'object') continue;
      const name = fileName(type, item.key);
      if (name !== null) yield { name, size: item.size, lastModified: item.lastModified };
    }
  }

  /** The names of the files of one type (one LIST), for the few callers that need them all at once. */
  async listNames(type: FileType): Promise<string[]> {
    const names: string[] = [];
    for await (const file of this.list(type)) names.push(file.name);
    return names;
  }

  /**
   * The packs in the repository, by id and size (one LIST of packs/, streamed). An object under
   * packs/ whose key is not a pack's (layout.ts) is yielded as a stray key: no pack, nothing refers to it.
   */
  async *listPacks(opts: { signal?: AbortSignal } = {}): AsyncIterable<{ id: string; size: number } | { stray: string; size: number }> {
    for await (const item of this.store.list(listPrefix('packs'), opts.signal === undefined ? {} : { signal: opts.signal })) {
      if (item.kind !== 'object') continue;
      const id = fileName('packs', item.key);
      if (id !== null) yield { id, size: item.size };
      else yield { stray: item.key, size: item.size };
    }
  }

  /** A whole pack (to check it end to end, or to copy its blobs out): one GET. */
  async readPack(id: string, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    return getBytes(this.store, objectKey('packs', id), opts.signal === undefined ? {} : { signal: opts.signal });
  }

  /**
   * Bytes `start` to `end` (exclusive) of a pack: one ranged GET. Not checked for length: a
   * short answer (a truncated pack, a cut-off body) is the caller's to judge.
   */
  async readPackRange(id: string, start: number, end: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    return getBytes(this.store, objectKey('packs', id), { range: { start, end: end - 1 }, ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
  }

  /** Asks the store for a temporary readable copy of an archived pack (S3 RestoreObject). */
  thawPack(id: string, opts: ThawOptions): Promise<ThawState> {
    if (this.store.thaw === undefined) {
      return Promise.reject(new UsageError(`${this.store.location} keeps no archived packs: nothing to thaw`));
    }
    return this.store.thaw(objectKey('packs', id), opts);
  }

  /** A plain (unsealed) file, `keys/` or `locks/`, with its last-modified time: one GET. */
  async readFile(type: 'keys' | 'locks', name: string): Promise<{ body: Buffer; lastModified: Date }> {
    const got = await this.store.get(objectKey(type, name));
    return { body: await readAll(got.body), lastModified: got.meta.lastModified };
  }

  // ---- single objects by key: deletion and Object Lock (remove.ts, `lock extend`) ------

  /** Deletes one object (one version of it, with versionId). */
  async deleteObject(key: string, opts: { versionId?: string } = {}): Promise<void> {
    await this.store.delete(key, opts);
  }

  /** Every version and delete marker of exactly this key, newest first (a version listing). */
  async objectVersions(key: string): Promise<ObjectEntry[]> {
    return versionsOf(this.store, key);
  }

  /** Whether the bucket keeps versions (false when the store cannot tell, or may not ask). */
  async bucketVersioned(): Promise<boolean> {
    return this.store.versioningEnabled().catch(() => false);
  }

  /** Whether the bucket keeps versions; null when the store may not ask (GetBucketVersioning refused). */
  async bucketVersioning(): Promise<boolean | null> {
    return this.store.versioningEnabled().catch(() => null);
  }

  /** Whether the store can read retention dates (S3; MemStore in tests). */
  get canReadRetention(): boolean {
    return this.store.capabilities.objectLock;
  }

  /** Whether the store can read and set retention dates (`lock extend` needs both). */
  get canSetRetention(): boolean {
    return this.store.capabilities.objectLock;
  }

  /** The retention of one object version; null when it has none, or the store cannot lock. */
  async getRetention(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<ObjectRetention | null> {
    return this.store.capabilities.objectLock ? this.store.getRetention(key, opts) : null;
  }

  /** Sets (extends) the retention of one object version. */
  async putRetention(key: string, retention: ObjectRetention, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<void> {
    if (!this.store.capabilities.objectLock) throw new LakeguardError(`${this.store.location} cannot set Object Lock retention`);
    await this.store.putRetention(key, retention, opts);
  }

  /**
   * Re-reads `config` and checks it is the one this repository was opened with (whose MAC was
   * checked then, when encrypted): a config replaced since is named.
   */
  async checkConfig(): Promise<void> {
    const raw = await getBytes(this.store, 'config');
    const now = parseConfig(raw, this.store.location);
    if (canonicalJson(now) !== canonicalJson(this.config)) {
      throw new IntegrityError(`${this.store.location}config: changed since it was opened (its MAC ${this.keys === null ? 'cannot be checked' : 'was checked on open'})`);
    }
  }

  /**
   * Checks one keys/ object: named by the SHA-256 of its content, and a well-formed key file
   * (its wrapped key is authenticated only by the password that opens it).
   */
  async checkKeyFile(name: string): Promise<void> {
    const where = this.where('keys', name);
    const body = await getBytes(this.store, objectKey('keys', name));
    if (sha256Hex(body) !== name) throw new IntegrityError(`${where}: content does not match its name (corrupted)`);
    let file: Partial<KeyFile>;
    try {
      file = JSON.parse(body.toString('utf8')) as Partial<KeyFile>;
    } catch {
      throw new IntegrityError(`${where}: not valid JSON`);
    }
    if (file === null || typeof file !== 'object' || typeof file.wrappedKey !== 'string' || file.kdf === null || typeof file.kdf !== 'object') {
      throw new IntegrityError(`${where}: not a key file (kdf or wrappedKey missing)`);
    }
    try {
      checkKeyFileKms(parseKeyFile(body), this.config);
    } catch (err) {
      if (err instanceof IntegrityError) throw new IntegrityError(`${where}: ${err.message}`);
      throw err;
    }
  }

  /**
   * The one write path of the repository. With Object Lock, every object but `locks/` (which
   * are rewritten and deleted) gets retainUntil = now + retention + slack (object-lock.ts); the date is computed per
   * PUT, just before it, so a slow upload never shortens the promised retention.
   */
  async put(key: string, body: Buffer, opts: PutOptions = {}): ReturnType<ObjectStore['put']> {
    // Locks are written by readers too (restore and verify of a version 1 repository).
    if (isLockable(key)) this.requireWritable();
    // The storage class is for packs only: config, keys, index, runs... stay readable without a thaw.
    const { storageClass, ...rest } = this.putDefaults;
    const defaults = storageClass === undefined || fileName('packs', key) === null ? rest : this.putDefaults;
    const lock = this.config.objectLock;
    if (lock === undefined || !isLockable(key)) return this.store.put(key, body, { ...defaults, ...opts });
    const retainUntil = writeRetainUntil(Date.now(), lock);
    const result = await this.store.put(key, body, { ...defaults, ...opts, objectLock: { mode: lock.mode, retainUntil } });
    this.retentionListener?.(key, retainUntil, result.versionId);
    return result;
  }
}
