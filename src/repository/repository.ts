import { timingSafeEqual } from 'node:crypto';
import { hostname } from 'node:os';
import { IntegrityError, LakeguardError, RepositoryMissingError, StorageError, UsageError, WrongPasswordError, isNotFound } from '../errors.js';
import { getBytes, type ObjectStore, type PutOptions } from '../storage/types.js';
import { DEFAULT_CHUNKER, type ChunkerParams } from './chunker.js';
import { compressBlob, decompressBlob } from './compress.js';
import {
  FORMAT_NAME,
  FORMAT_VERSION,
  REPOSITORY_ID_RE,
  canonicalJson,
  newRepositoryId,
  sha256Hex,
  type FormatVersion,
  type KeyFile,
  type RepositoryConfig,
} from './config.js';
import {
  blobId,
  defaultKdfParams,
  deriveKey,
  deriveSubkey,
  generateMasterKeys,
  hmacHex,
  open as openSealed,
  seal,
  unwrapMasterKeys,
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
import { isLockable, writeRetainUntil, type ObjectLockConfig } from './object-lock.js';
import { BlobType, decodePackHeader, packKey, splitPack, type PackEntry } from './pack.js';

const PACK_ID = /^[0-9a-f]{64}$/;

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
}

/** Told the retention date of each object the repository wrote with one (the catalog keeps them for `lock extend`). */
export type RetentionListener = (name: string, retainUntil: Date, versionId: string | null) => void;

export interface OpenOptions {
  /** Called only when the repository is encrypted, so unencrypted repositories need no password. */
  password: () => Promise<string>;
  /** Passed on every PUT the repository makes (the target bucket's SSE-KMS key). */
  sseKmsKeyId?: string;
  /** Told of each keys/ object that is skipped because it is not a usable key file. */
  onWarning?: (message: string) => void;
}

/** HKDF label of the version 2 config MAC key (docs/repository-format.md, "Subkeys"). */
const CONFIG_MAC_LABEL = 'lakeguard v2 config mac';

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

/**
 * The repository format (docs/repository-format.md) over an ObjectStore: config and keys,
 * blob encoding (compress → encrypt, authenticated by the blob id), pack headers, index files
 * and run manifests. It holds no run state; writers are in packer.ts and the engine.
 */
export class Repository {
  private constructor(
    readonly store: ObjectStore,
    readonly config: RepositoryConfig,
    private readonly keys: MasterKeys | null,
    private readonly putDefaults: PutOptions,
    /** A test-built version 1 repository writes version 1 documents; nothing else writes to version 1. */
    private readonly v1Writer = false,
  ) {}

  private retentionListener: RetentionListener | null = null;

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

  static async init(store: ObjectStore, opts: InitOptions, putDefaults: PutOptions = {}): Promise<Repository> {
    if (await Repository.exists(store)) {
      throw new UsageError(`a lakeguard repository already exists at ${store.location}`, {
        hint: 'use it as it is, or choose another repository.url; init never overwrites',
      });
    }
    if (opts.objectLock !== undefined) await requireObjectLock(store);
    const keys = opts.password === null ? null : generateMasterKeys();
    const base = {
      format: FORMAT_NAME,
      version: opts.formatVersion ?? FORMAT_VERSION,
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
      const wrappedKey = wrapMasterKeys(await deriveKey(opts.password, kdf), keys);
      config = { ...base, encryption: { algorithm: 'aes-256-gcm', kdf, wrappedKey, configMac: '' } };
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
    return new Repository(store, config, keys, putDefaults, config.version === 1);
  }

  static async open(store: ObjectStore, opts: OpenOptions): Promise<Repository> {
    let raw: Buffer;
    try {
      raw = await getBytes(store, 'config');
    } catch (err) {
      if (isNotFound(err)) throw new RepositoryMissingError(store.location, { cause: err });
      throw err;
    }
    const config = parseConfig(raw, store.location);
    const putDefaults: PutOptions = opts.sseKmsKeyId === undefined ? {} : { sseKmsKeyId: opts.sseKmsKeyId };
    if (config.encryption.algorithm === 'none') return new Repository(store, config, null, putDefaults);

    const password = await opts.password();
    const keys = await unlockKeys(store, config, password, opts.onWarning ?? (() => {}));
    if (keys === null) throw new WrongPasswordError(store.location);
    const expected = Buffer.from(configMac(keys, config), 'hex');
    const mac = config.encryption.configMac;
    const actual = Buffer.from(typeof mac === 'string' && /^[0-9a-f]{64}$/.test(mac) ? mac : '', 'hex');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
      throw new IntegrityError(`repository config at ${store.location} was altered (its MAC does not match)`, {
        hint: 'restore the original config object; lakeguard refuses a modified config',
      });
    }
    return new Repository(store, config, keys, putDefaults);
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
    for await (const item of this.store.list('keys/')) {
      if (item.kind === 'object') return `${item.key} exists (a password of an encrypted repository)`;
    }
    for (const dir of ['runs', 'index', 'forgets'] as const) {
      for await (const item of this.store.list(`${dir}/`)) {
        if (item.kind !== 'object') continue;
        const name = item.key.slice(dir.length + 1);
        const body = await getBytes(this.store, item.key);
        return isUnencryptedDocument(dir, name, body) ? null : `${item.key} is not an unencrypted document (it is sealed, or damaged)`;
      }
    }
    return null;
  }

  /** Adds another password (keys/<id>) that opens the same master key. */
  async addPassword(password: string, kdf: KdfParams = defaultKdfParams()): Promise<string> {
    if (this.keys === null) throw new UsageError('this repository is not encrypted; it has no passwords');
    const file: KeyFile = {
      created: new Date().toISOString(),
      host: hostname(),
      kdf,
      wrappedKey: wrapMasterKeys(await deriveKey(password, kdf), this.keys),
    };
    const body = Buffer.from(JSON.stringify(file, null, 2) + '\n');
    const id = sha256Hex(body);
    await this.put(`keys/${id}`, body, { ifNoneMatch: true });
    return id;
  }

  // ---- blobs -------------------------------------------------------------------------

  blobId(raw: Uint8Array): Buffer {
    return Buffer.from(blobId(this.keys?.macKey ?? null, raw), 'hex');
  }

  encodeBlob(raw: Uint8Array, type: BlobType, id: Buffer = this.blobId(raw)): EncodedBlob {
    const { data, compressed } = compressBlob(raw, this.config.compression.level);
    const stored = this.keys === null ? data : seal(this.keys.encKey, data, id);
    return { id, type, stored, compressed, rawLength: raw.length };
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

  async writeDocument(dir: DocumentDir, name: string | null, doc: unknown): Promise<string> {
    return this.writeDocumentJson(dir, name, JSON.stringify(doc));
  }

  /** `writeDocument` of a document already serialized as JSON text. */
  /**
   * Writes `dir/name` create-only; a null name (index files) gets a fresh time-ordered name.
   * Version 2 seals the document with its name (documents.ts); a test-built version 1
   * repository writes version 1 documents (index files named by the SHA-256 of their bytes).
   */
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
      await this.put(`${dir}/${id}`, body, { ifNoneMatch: true });
    } catch (err) {
      if (!(name === null && err instanceof StorageError && err.code === 'PreconditionFailed')) throw err;
      // A name this writer chose (content hash, or random): a retried PUT whose first attempt
      // landed. Accept it only if the stored bytes are ours.
      if (!(await getBytes(this.store, `${dir}/${id}`)).equals(body)) throw err;
    }
    return id;
  }

  /** Reads and authenticates `dir/name`; a document stored under another name than its own is refused. */
  async readDocument<T>(dir: DocumentDir, name: string): Promise<T> {
    const body = await getBytes(this.store, `${dir}/${name}`);
    const where = `${this.store.location}${dir}/${name}`;
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

  /** The objects of a directory, by name and size, as they are listed (one LIST, streamed). */
  async *listObjects(dir: DocumentDir | 'keys'): AsyncIterable<{ name: string; size: number }> {
    for await (const item of this.store.list(`${dir}/`)) if (item.kind === 'object') yield { name: item.key.slice(dir.length + 1), size: item.size };
  }

  /**
   * The packs in the repository, by id and size (one LIST of packs/, streamed). An object under
   * packs/ whose name is not `<aa>/<packId>` is yielded as a stray key: no pack, nothing refers to it.
   */
  async *listPacks(): AsyncIterable<{ id: string; size: number } | { stray: string; size: number }> {
    for await (const item of this.store.list('packs/')) {
      if (item.kind !== 'object') continue;
      const id = item.key.slice(item.key.lastIndexOf('/') + 1);
      if (PACK_ID.test(id) && item.key === packKey(id)) yield { id, size: item.size };
      else yield { stray: item.key, size: item.size };
    }
  }

  /** A whole pack (to check it end to end: its id, header and every blob). */
  async readPack(id: string): Promise<Buffer> {
    return getBytes(this.store, packKey(id));
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
    const where = `${this.store.location}keys/${name}`;
    const body = await getBytes(this.store, `keys/${name}`);
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
  }

  async listNames(dir: DocumentDir | 'keys' | 'locks'): Promise<string[]> {
    const names: string[] = [];
    for await (const item of this.store.list(`${dir}/`)) if (item.kind === 'object') names.push(item.key.slice(dir.length + 1));
    return names;
  }

  /**
   * The one write path of the repository. With Object Lock, every object but `locks/` (which
   * are rewritten and deleted) gets retainUntil = now + retention + slack (object-lock.ts); the date is computed per
   * PUT, just before it, so a slow upload never shortens the promised retention.
   */
  async put(key: string, body: Buffer, opts: PutOptions = {}): ReturnType<ObjectStore['put']> {
    // Locks are written by readers too (restore and verify of a version 1 repository).
    if (isLockable(key)) this.requireWritable();
    const lock = this.config.objectLock;
    if (lock === undefined || !isLockable(key)) return this.store.put(key, body, { ...this.putDefaults, ...opts });
    const retainUntil = writeRetainUntil(Date.now(), lock);
    const result = await this.store.put(key, body, { ...this.putDefaults, ...opts, objectLock: { mode: lock.mode, retainUntil } });
    this.retentionListener?.(key, retainUntil, result.versionId);
    return result;
  }
}

/** Init with Object Lock needs a store that can lock, on a bucket created with Object Lock enabled. */
async function requireObjectLock(store: ObjectStore): Promise<void> {
  if (store.objectLockEnabled === undefined || store.putRetention === undefined) {
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

function parseConfig(raw: Buffer, location: string): RepositoryConfig {
  let config: RepositoryConfig;
  try {
    config = JSON.parse(raw.toString('utf8')) as RepositoryConfig;
  } catch (err) {
    throw new IntegrityError(`repository config at ${location} is not valid JSON`, { cause: err });
  }
  if (config === null || typeof config !== 'object' || config.format !== FORMAT_NAME) {
    throw new LakeguardError(`${location}config is not a lakeguard repository config`);
  }
  if (config.version !== 1 && config.version !== FORMAT_VERSION) {
    throw new LakeguardError(`repository at ${location} has format version ${JSON.stringify(config.version)}; this lakeguard reads versions 1 and ${FORMAT_VERSION}`, {
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

/**
 * The master keys, from the config's wrapped key or any keys/ object the password opens. A
 * keys/ object that is not a usable key file is named (warn) and skipped: anyone who can write
 * to keys/ must not be able to lock the owner out with one bad object.
 */
async function unlockKeys(store: ObjectStore, config: RepositoryConfig, password: string, warn: (message: string) => void): Promise<MasterKeys | null> {
  if (config.encryption.algorithm === 'none') return null;
  const primary = unwrapMasterKeys(await deriveKey(password, config.encryption.kdf), config.encryption.wrappedKey);
  if (primary !== null) return primary;
  for await (const item of store.list('keys/')) {
    if (item.kind !== 'object') continue;
    try {
      const file = parseKeyFile(await getBytes(store, item.key));
      const keys = unwrapMasterKeys(await deriveKey(password, file.kdf), file.wrappedKey);
      if (keys !== null) return keys;
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      warn(`${store.location}${item.key} skipped: not a usable key file (${err.message})`);
    }
  }
  return null;
}

function parseKeyFile(body: Buffer): KeyFile {
  let file: Partial<KeyFile> | null;
  try {
    file = JSON.parse(body.toString('utf8')) as Partial<KeyFile> | null;
  } catch {
    throw new IntegrityError('not JSON');
  }
  if (file === null || typeof file !== 'object' || typeof file.kdf !== 'object' || file.kdf === null || typeof file.wrappedKey !== 'string') {
    throw new IntegrityError('kdf or wrappedKey missing');
  }
  return file as KeyFile;
}

/**
 * HMAC-SHA-256 of the canonical config with an empty configMac. Version 2 keys it with a subkey
 * (HKDF label CONFIG_MAC_LABEL): under version 1's key, the blob-id key, any blob id was a MAC of
 * its content, so someone who knew the id of a blob holding a config's canonical JSON held a
 * valid MAC for that config.
 */
function configMac(keys: MasterKeys, config: RepositoryConfig): string {
  const unsigned = canonicalJson({ ...config, encryption: { ...config.encryption, configMac: '' } });
  const key = config.version === 1 ? keys.macKey : deriveSubkey(keys.macKey, CONFIG_MAC_LABEL);
  return hmacHex(key, unsigned);
}
