/**
 * Backup, part 3 of 3: deduplication and packing (restic's blob saver). Each chunk of an object
 * becomes a blob id; a blob the catalog knows, one in a pack still being written, or one this
 * object already produced is not stored again. New blobs go to the run's Packer, which writes
 * full packs; `stored` promises settle when a blob's pack is written.
 */
import type { Catalog } from '../catalog/catalog.js';
import type { RunCounters } from '../catalog/types.js';
import { chunkViews } from '../repository/chunker.js';
import { BlobType } from '../repository/pack.js';
import type { Packer } from '../repository/packer.js';
import type { BlobEncoder } from '../repository/encode-pool.js';
import type { EncodedBlob, Repository } from '../repository/repository.js';

/** Objects whose new blobs fit in this many bytes are checksummed before anything is stored. */
const VERIFY_BEFORE_STORE = 32 * 1024 * 1024;

/** A failure writing to the repository while reading an object: fatal for the run, never an object failure. */
export class RepositoryFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('repository write failed');
  }
}

/** The run's blobs on their way into packs, shared by every transfer. */
export class BlobSaver {
  /** Blobs added to a pack that is not written yet: dedup against them too. */
  private readonly pendingBlobs = new Map<string, Promise<void>>();

  /** `encoder`: compresses and seals new blobs (encode-pool.ts: on the pool's threads, or in this one). */
  constructor(
    readonly repo: Repository,
    readonly catalog: Catalog,
    private readonly packer: Packer,
    readonly counters: RunCounters,
    readonly encoder: BlobEncoder,
  ) {}

  /** Settles when the pack of a blob that is not written yet is; undefined for any other blob. */
  pending(hex: string): Promise<void> | undefined {
    return this.pendingBlobs.get(hex);
  }

  /**
   * Adds a new blob to the open pack. `stored` settles when its pack is written (wrapped in an
   * object: awaiting a promise of a promise would wait for the pack).
   */
  async add(blob: EncodedBlob, hex: string): Promise<{ stored: Promise<void> }> {
    const pending = this.pendingBlobs.get(hex);
    if (pending !== undefined) {
      // Another object read the same bytes at the same time and its copy got here first.
      this.counters.blobsDeduplicated++;
      return { stored: pending };
    }
    if (this.catalog.hasBlob(blob.id)) {
      // Another object stored the same bytes since this one looked: its pack is written and catalogued.
      this.counters.blobsDeduplicated++;
      return { stored: Promise.resolve() };
    }
    this.counters.blobsNew++;
    this.counters.bytesStored += blob.stored.length;
    // Registered before the first await (the packer may wait for an upload slot): an object with
    // the same bytes that gets here meanwhile waits for this copy instead of storing a second one.
    const adding = this.packer.add(blob);
    const stored = adding.then((added) => added.stored);
    this.pendingBlobs.set(hex, stored);
    void stored.then(() => this.pendingBlobs.delete(hex), () => {});
    return await adding;
  }
}

/**
 * The blobs of one object as it is read. New blobs of objects up to VERIFY_BEFORE_STORE are
 * held until `flush`, which the reader calls only after checking the object's bytes, so a
 * damaged read stores nothing. Repository errors come out wrapped in RepositoryFailure.
 */
export class ObjectBlobs {
  /** The object's blob ids (hex), in order. */
  readonly ids: string[] = [];
  /** Settle when every blob the object needs is in a written pack. */
  readonly stored: Promise<void>[] = [];
  /**
   * New blobs on their way to the encoder, in content order: not awaited one by one, so the
   * chunks of one large object are encoded on several threads at once.
   */
  private held: { blob: Promise<EncodedBlob>; hex: string; rawLength: number }[] = [];
  private heldBytes = 0;

  /** `onNewBlob`: told the raw and stored size of each blob the object adds (anomaly detection's compressibility). */
  constructor(
    private readonly saver: BlobSaver,
    private readonly onNewBlob?: (rawLength: number, storedLength: number) => void,
  ) {}

  /** The next chunk of the object (read in order). */
  async add(chunk: Buffer): Promise<void> {
    const id = this.saver.repo.blobId(chunk);
    await this.note(id, chunk.length, () => this.saver.encoder.encode(chunk, BlobType.data, id));
  }

  /**
   * The whole object at once (its bytes already checked). On the encoder's threads the chunker,
   * the blob ids and the encoding all run there and only then are blobs already stored dropped;
   * in this thread it is `add` of each chunk (a view: no copy), which encodes only new blobs.
   * `bytes` must own its ArrayBuffer and is not usable afterwards (encodeObject moves it).
   * `dedupFirst`: always chunk and identify here, so only new blobs are encoded: for a changed
   * object, whose blobs are often stored already (a file touched, a copy: encoding those on a
   * thread cost 64 log files 0.9-1.2 CPU s more than hashing them here).
   */
  async addObject(bytes: Buffer, dedupFirst = false): Promise<void> {
    const encoded = dedupFirst ? null : this.saver.encoder.encodeObject(bytes, BlobType.data);
    if (encoded === null) {
      for (const chunk of chunkViews(bytes, this.saver.repo.chunker)) await this.add(chunk);
      return;
    }
    for (const blob of await encoded) await this.note(blob.id, blob.rawLength, () => Promise.resolve(blob));
  }

  /** One blob of the object: deduplicated, or held to be stored (`encode`d only if new). */
  private async note(id: Buffer, rawLength: number, encode: () => Promise<EncodedBlob>): Promise<void> {
    const { catalog, counters } = this.saver;
    const hex = id.toString('hex');
    this.ids.push(hex);
    const pending = this.saver.pending(hex);
    if (pending !== undefined) {
      this.stored.push(pending);
      counters.blobsDeduplicated++;
    } else if (catalog.hasBlob(id) || this.held.some((h) => h.hex === hex)) {
      counters.blobsDeduplicated++;
    } else {
      const blob = encode();
      // Settled in flush; until then a failure must not count as unhandled.
      blob.catch(() => {});
      this.held.push({ blob, hex, rawLength });
      // Raw bytes: the stored size is known only once encoded (at most the raw size, plus a seal).
      this.heldBytes += rawLength;
      if (this.heldBytes > VERIFY_BEFORE_STORE) await this.flush();
    }
  }

  /** Stores the held blobs, in content order. An encoding failure is fatal (thrown as is). */
  async flush(): Promise<void> {
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const h of held) {
      const blob = await h.blob;
      this.onNewBlob?.(blob.rawLength, blob.stored.length);
      try {
        this.stored.push((await this.saver.add(blob, h.hex)).stored);
      } catch (err) {
        throw new RepositoryFailure(err);
      }
    }
  }
}
