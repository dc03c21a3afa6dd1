import { createHmac, timingSafeEqual } from 'node:crypto';
import { hostname } from 'node:os';
import { IntegrityError, LakeguardError, RepositoryMissingError, StorageError, UsageError, WrongPasswordError, isNotFound } from '../errors.js';
import { getBytes, type ObjectStore, type PutOptions } from '../storage/types.js';
import { DEFAULT_CHUNKER, type ChunkerParams } from './chunker.js';
import { compressBlob, decompressBlob } from './compress.js';
import {
  FORMAT_NAME,
  FORMAT_VERSION,
  canonicalJson,
  newRepositoryId,
  sha256Hex,
  type KeyFile,
  type RepositoryConfig,
} from './config.js';
import {
  blobId,
  defaultKdfParams,
  deriveKey,
  generateMasterKeys,
  open as openSealed,
  seal,
  unwrapMasterKeys,
  wrapMasterKeys,
  type KdfParams,
  type MasterKeys,
} from './crypto.js';
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
}

/** Told the retention date of each object the repository wrote with one (the catalog keeps them for `lock extend`). */
export type RetentionListener = (name: string, retainUntil: Date, versionId: string | null) => void;

export interface OpenOptions {
  /** Called only when the repository is encrypted, so unencrypted repositories need no password. */
  password: () => Promise<string>;
  /** Passed on every PUT the repository makes (the target bucket's SSE-KMS key). */
  sseKmsKeyId?: string;
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
const AAD_INDEX = Buffer.from('lakeguard index v1');
const AAD_MANIFEST = Buffer.from('lakeguard run manifest v1');
const AAD_FORGET = Buffer.from('lakeguard forget v1');

/** Directories of sealed documents, and the associated data that binds each to its kind. */
export type DocumentDir = 'index' | 'runs' | 'forgets';
const DOCUMENT_AAD: Record<DocumentDir, Buffer> = { index: AAD_INDEX, runs: AAD_MANIFEST, forgets: AAD_FORGET };

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
      version: FORMAT_VERSION,
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
    return new Repository(store, config, keys, putDefaults);
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
    const keys = await unlockKeys(store, config, password);
    if (keys === null) throw new WrongPasswordError(store.location);
    const expected = Buffer.from(configMac(keys, config), 'hex');
    const actual = Buffer.from(config.encryption.configMac, 'hex');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
      throw new IntegrityError(`repository config at ${store.location} was altered (its MAC does not match)`, {
        hint: 'restore the original config object; lakeguard refuses a modified config',
      });
    }
    return new Repository(store, config, keys, putDefaults);
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
  async writeDocumentJson(dir: DocumentDir, name: string | null, text: string): Promise<string> {
    const json = Buffer.from(text);
    const { data, compressed } = compressBlob(json, this.config.compression.level);
    const head = Buffer.alloc(5);
    head.writeUInt8(compressed ? 1 : 0, 0);
    head.writeUInt32LE(json.length, 1);
    const framed = Buffer.concat([head, data]);
    // Unencrypted documents carry a SHA-256 of the frame, so corruption is detected there too.
    const body =
      this.keys === null
        ? Buffer.concat([framed, Buffer.from(sha256Hex(framed), 'hex')])
        : seal(this.keys.encKey, framed, DOCUMENT_AAD[dir]);
    const id = name ?? sha256Hex(body);
    try {
      await this.put(`${dir}/${id}`, body, { ifNoneMatch: true });
    } catch (err) {
      // Index files are named by their content: one that exists already is this one.
      if (!(name === null && err instanceof StorageError && err.code === 'PreconditionFailed')) throw err;
    }
    return id;
  }

  async readDocument<T>(dir: DocumentDir, name: string): Promise<T> {
    const body = await getBytes(this.store, `${dir}/${name}`);
    const where = `${this.store.location}${dir}/${name}`;
    let framed: Buffer;
    try {
      framed = this.keys === null ? checkDigest(body) : openSealed(this.keys.encKey, body, DOCUMENT_AAD[dir]);
    } catch (err) {
      throw new IntegrityError(`${where}: failed authentication (corrupted or tampered)`, { cause: err });
    }
    if (dir === 'index' && sha256Hex(body) !== name) throw new IntegrityError(`${where}: content does not match its name`);
    try {
      const json = decompressBlob(framed.subarray(5), framed.readUInt8(0) === 1, framed.readUInt32LE(1));
      return JSON.parse(json.toString('utf8')) as T;
    } catch (err) {
      throw new IntegrityError(`${where}: cannot be decoded (${err instanceof Error ? err.message : err})`, { cause: err });
    }
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

/** Strips and checks the SHA-256 trailer of an unencrypted document. */
function checkDigest(body: Buffer): Buffer {
  const framed = body.subarray(0, body.length - 32);
  if (body.length < 37 || sha256Hex(framed) !== body.subarray(body.length - 32).toString('hex')) throw new Error('SHA-256 mismatch');
  return framed;
}

function parseConfig(raw: Buffer, location: string): RepositoryConfig {
  let config: RepositoryConfig;
  try {
    config = JSON.parse(raw.toString('utf8')) as RepositoryConfig;
  } catch (err) {
    throw new IntegrityError(`repository config at ${location} is not valid JSON`, { cause: err });
  }
  if (config.format !== FORMAT_NAME) throw new LakeguardError(`${location}config is not a lakeguard repository config`);
  if (config.version !== FORMAT_VERSION) {
    throw new LakeguardError(`repository at ${location} has format version ${config.version}; this lakeguard reads version ${FORMAT_VERSION}`, {
      hint: 'upgrade lakeguard',
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

async function unlockKeys(store: ObjectStore, config: RepositoryConfig, password: string): Promise<MasterKeys | null> {
  if (config.encryption.algorithm === 'none') return null;
  const primary = unwrapMasterKeys(await deriveKey(password, config.encryption.kdf), config.encryption.wrappedKey);
  if (primary !== null) return primary;
  for await (const item of store.list('keys/')) {
    if (item.kind !== 'object') continue;
    const file = JSON.parse((await getBytes(store, item.key)).toString('utf8')) as KeyFile;
    const keys = unwrapMasterKeys(await deriveKey(password, file.kdf), file.wrappedKey);
    if (keys !== null) return keys;
  }
  return null;
}

function configMac(keys: MasterKeys, config: RepositoryConfig): string {
  const unsigned = { ...config, encryption: { ...config.encryption, configMac: '' } };
  return createHmac('sha256', keys.macKey).update(canonicalJson(unsigned)).digest('hex');
}
