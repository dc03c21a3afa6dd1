/**
 * Backup, part 2 of 3: reading source objects (restic's file saver). One GET per object (and
 * one GetObjectTagging for an object that has tags), chunked as it streams, its bytes checked
 * against the length and, when it is an MD5, the ETag.
 *
 * Who retries what: the source store retries each request up to its response headers (throttling,
 * 5xx, resets: src/storage, util/retry.ts). A body that is cut off or altered after that can
 * only be read again as a whole, so the reader retries the whole object (OBJECT_ATTEMPTS, with
 * util/retry.ts's withRetry); a request the store already gave up on is tried again here too,
 * with its own retries each time. An object that still fails is a failure of the run's, not fatal.
 */
import { createHash } from 'node:crypto';
import type { RunCounters } from '../catalog/types.js';
import { StorageError } from '../errors.js';
import { chunkStream, type ChunkerParams } from '../repository/chunker.js';
import type { GetResult, ObjectEntry, ObjectMeta } from '../storage/types.js';
import { ByteBudget } from '../util/byte-budget.js';
import { withRetry } from '../util/retry.js';
import { ContentSniffer, type ContentSample } from './anomaly-sniff.js';
import { ObjectBlobs, RepositoryFailure, type BlobSaver } from './backup-dedup.js';
import { InventoryStore } from './inventory-store.js';
import type { OpenedSource } from './sources.js';

/** Reads of one object (a body cut off or altered in flight is read again). */
const OBJECT_ATTEMPTS = 5;
/**
 * Objects up to this size are read in one piece where the store can (FsStore.getBytes: local
 * files) and handed to the encoder whole: no stream, no chunk copies, and on the encode threads
 * the chunker and blob ids run there too. Larger ones stream (memory: a chunk at a time).
 */
const WHOLE_OBJECT_BYTES = 16 * 1024 * 1024;
/** Whole objects' bytes in memory at once, across every transfer (32 in flight by default). */
const WHOLE_BYTES_IN_FLIGHT = 64 * 1024 * 1024;
/** Storage classes that cannot be read without a restore request. */
const ARCHIVED = new Set(['GLACIER', 'DEEP_ARCHIVE']);

/** One object as read: what it is, and its blobs on their way into packs. */
export interface ObjectRead {
  meta: ObjectMeta;
  size: number;
  tags: Record<string, string> | undefined;
  blobs: string[];
  stored: Promise<void>[];
  /** What anomaly detection needs of its bytes (docs/anomalies.md); only when asked to sniff. */
  sample?: ContentSample;
}

/** Errors that make one object, prefix or bucket unreadable without making the run pointless. */
export function isUnreadable(err: unknown): err is StorageError {
  return err instanceof StorageError && ['AccessDenied', 'NoSuchBucket', 'NotFound', 'InvalidObjectState'].includes(err.code);
}

export class ObjectReader {
  /** Bytes of whole objects read and not yet encoded, at most WHOLE_BYTES_IN_FLIGHT. */
  private readonly wholeBudget = new ByteBudget(WHOLE_BYTES_IN_FLIGHT);

  constructor(
    private readonly saver: BlobSaver,
    private readonly chunker: ChunkerParams,
    private readonly counters: RunCounters,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /**
   * Reads one object into blobs, or returns why it cannot be read (a StorageError: the object
   * failed). Repository errors are thrown: they are fatal. `newSniffer`: anomaly detection's
   * sniffer for each attempt, fed the bytes as they stream by (ObjectRead.sample). `changed`:
   * the key was backed up before (ObjectBlobs.addObject's dedupFirst).
   */
  async read(source: OpenedSource, entry: ObjectEntry, newSniffer?: () => ContentSniffer, changed = false): Promise<ObjectRead | StorageError> {
    // A LIST's storage class is S3's; a report's is whoever wrote it: a made-up GLACIER would keep
    // a changed object from being read. The GET of an archived object fails by itself.
    if (entry.storageClass !== undefined && ARCHIVED.has(entry.storageClass) && !(source.objectStore instanceof InventoryStore)) {
      return new StorageError('InvalidObjectState', `GET ${source.objectStore.location}${entry.key}: stored in ${entry.storageClass}; it must be restored (an S3 restore request) before it can be read`, {
        backendCode: 'ArchivedObject',
      });
    }
    try {
      return await withRetry(() => this.readOnce(source, entry, newSniffer, changed), {
        maxAttempts: OBJECT_ATTEMPTS,
        baseDelayMs: 200,
        maxDelayMs: 5000,
        stopRetrying: () => this.signal?.aborted === true,
      });
    } catch (err) {
      if (err instanceof RepositoryFailure) throw err.cause;
      if (!(err instanceof StorageError)) throw err;
      return err;
    }
  }

  /**
   * One read of an object. Its bytes are checked against the ETag when that is an MD5
   * (single-part, not SSE-KMS/SSE-C) and against its length; blobs of objects up to the
   * saver's verify limit are stored only after the check (ObjectBlobs).
   */
  private async readOnce(source: OpenedSource, entry: ObjectEntry, newSniffer: (() => ContentSniffer) | undefined, changed: boolean): Promise<ObjectRead> {
    const store = source.objectStore;
    // A file up to WHOLE_OBJECT_BYTES is read in one piece (FsStore.getBytes) and chunked at once;
    // getBytes answers null if it grew past that since it was listed (then it streams).
    if (store.getBytes === undefined || entry.size > WHOLE_OBJECT_BYTES) return this.readFrom(source, entry, newSniffer, null, changed);
    const getBytes = store.getBytes.bind(store);
    return this.wholeBudget.with(entry.size, async () => this.readFrom(source, entry, newSniffer, await getBytes(entry.key, WHOLE_OBJECT_BYTES), changed));
  }

  private async readFrom(source: OpenedSource, entry: ObjectEntry, newSniffer: (() => ContentSniffer) | undefined, whole: { bytes: Buffer; meta: ObjectMeta } | null, changed: boolean): Promise<ObjectRead> {
    const c = this.counters;
    const got =
      whole ??
      (await source.objectStore.get(entry.key, {
        ...versionToRead(source, entry),
        ...(this.signal === undefined ? {} : { signal: this.signal }),
        // A body up to the chunker's minimum (one chunk) may come whole (S3Store): no stream per small object.
        bufferUpTo: this.chunker.minSize,
      }));
    // Read whole (a small file, or a small S3 body): checked, then chunked and encoded at once.
    const bytes = whole?.bytes ?? (got as GetResult).bytes ?? null;
    const meta = got.meta;
    // Tags cost a request, so only for objects that have any (x-amz-tagging-count).
    const tags = meta.tagCount && source.objectStore.capabilities.tags ? await source.objectStore.getTags(entry.key, meta.versionId === null ? versionToRead(source, entry) : { versionId: meta.versionId }) : undefined;
    const md5 = /^[0-9a-f]{32}$/.test(meta.etag) && (meta.sse === undefined || meta.sse === 'AES256') ? createHash('md5') : null;
    // Each attempt sniffs afresh: a retried read must not mix two bodies' bytes.
    const sniffer = newSniffer?.() ?? null;
    const blobs = new ObjectBlobs(this.saver, sniffer === null ? undefined : (raw, stored) => sniffer.addBlob(raw, stored));
    let size = 0;
    if (bytes !== null) {
      size = bytes.length;
      c.bytesRead += size;
      md5?.update(bytes);
      sniffer?.update(bytes);
    } else {
      for await (const chunk of chunkStream((got as GetResult).body, this.chunker)) {
        size += chunk.length;
        c.bytesRead += chunk.length;
        md5?.update(chunk);
        sniffer?.update(chunk);
        await blobs.add(chunk);
      }
    }
    const where = (): string => `GET ${source.objectStore.location}${entry.key}${meta.versionId === null ? '' : ` (version ${meta.versionId})`}`;
    if (size !== meta.size) {
      throw new StorageError('Network', `${where()}: read ${size} bytes, expected ${meta.size} (truncated body)`, { backendCode: 'TruncatedBody', retryable: true });
    }
    if (md5 !== null && md5.digest('hex') !== meta.etag) {
      throw new StorageError('Network', `${where()}: content does not match its ETag (MD5): altered in transit`, { backendCode: 'ChecksumMismatch', retryable: true });
    }
    // Checked first: a damaged read is not even encoded.
    if (bytes !== null) await blobs.addObject(bytes, changed);
    await blobs.flush();
    return { meta, size, tags, blobs: blobs.ids, stored: blobs.stored, ...(sniffer === null ? {} : { sample: sniffer.sample() }) };
  }
}

/**
 * The version a GET of a listed entry asks for. A versioned source's entry names its version; the
 * "null" version (written before versioning was enabled, or while it was suspended) is asked
 * for as `null` once it is no longer current: without a version id S3 answers with the current
 * version, which would be recorded in its place and the null version never read. A current
 * null version is read without one (an inventory report without version ids lists current
 * objects as such).
 */
function versionToRead(source: OpenedSource, entry: ObjectEntry): { versionId?: string } {
  if (source.versioned !== true) return {};
  if (entry.versionId !== null) return { versionId: entry.versionId };
  return entry.isLatest ? {} : { versionId: 'null' };
}
