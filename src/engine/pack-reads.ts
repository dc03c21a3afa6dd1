/**
 * Reading object content out of packs, shared by restore and `serve`: ranged GETs of a pack
 * whose answer must be whole, read again when cut off or reset in flight, and blobs decoded
 * (decrypted, decompressed, checked against their id) before a byte of them is used.
 */
import type { BlobLocation } from '../catalog/types.js';
import { IntegrityError, StorageError, errorMessage } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { withRetry } from '../util/retry.js';

/**
 * Re-reads of a pack range after the store's own per-request retries: for bodies cut off or
 * altered in flight, which the store cannot see (it hands out the response once its headers
 * arrive).
 */
export const READ_RETRY = { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 5000 } as const;

/** Bytes `start` to `end` (exclusive) of a pack; a short answer is a retryable StorageError. */
export async function readPackRange(repo: Repository, pack: string, start: number, end: number, signal?: AbortSignal): Promise<Buffer> {
  const data = await repo.readPackRange(pack, start, end, signal === undefined ? {} : { signal });
  if (data.length !== end - start) {
    throw new StorageError('Network', `pack ${pack}: range ${start}-${end - 1} returned ${data.length} bytes (cut off, or the pack is truncated)`, {
      backendCode: 'TruncatedBody',
      retryable: true,
    });
  }
  return data;
}

/** readPackRange, read again while the failure is one of transport (throttling, resets, cut-off bodies). */
export function readPackRangeRetrying(repo: Repository, pack: string, start: number, end: number, signal?: AbortSignal): Promise<Buffer> {
  return withRetry(() => readPackRange(repo, pack, start, end, signal), { ...READ_RETRY, ...(signal === undefined ? {} : { signal }) });
}

/**
 * One blob's content from its stored bytes, authenticated; an IntegrityError saying `what`
 * could not be read (e.g. `cannot restore bucket/key`) and how to find the rest of the damage.
 */
export function decodeLocatedBlob(repo: Repository, stored: Buffer, blob: BlobLocation, what: string): Buffer {
  let raw: Buffer;
  try {
    raw = repo.decodeBlob(stored, { id: blob.hash, compressed: blob.compressed, rawLength: blob.rawLength }, `pack ${blob.pack}`);
  } catch (err) {
    throw new IntegrityError(`${what}: ${errorMessage(err)}`, { cause: err, hint: 'run `lakeguard verify --read-data` to find every affected object' });
  }
  if (raw.length !== blob.rawLength) {
    throw new IntegrityError(`${what}: blob ${blob.hash.toString('hex')} in pack ${blob.pack} holds ${raw.length} bytes, the catalog says ${blob.rawLength}`);
  }
  return raw;
}

/** Blobs `first` to `last` (exclusive) of a list, stored back to back in one pack: one GET reads them. */
export interface BlobRun {
  pack: string;
  /** Byte range of the run in its pack (end exclusive). */
  start: number;
  end: number;
  first: number;
  last: number;
}

/**
 * Splits an object's blobs (in content order) into runs that one ranged GET each reads:
 * consecutive blobs adjacent in the same pack, at most `maxBytes` stored bytes per run (a
 * single larger blob is a run of its own).
 */
export function* blobRuns(blobs: readonly BlobLocation[], maxBytes: number): Generator<BlobRun> {
  for (let i = 0; i < blobs.length; ) {
    const head = blobs[i]!;
    let end = head.offset + head.length;
    let j = i + 1;
    while (j < blobs.length && blobs[j]!.pack === head.pack && blobs[j]!.offset === end && end + blobs[j]!.length - head.offset <= maxBytes) {
      end += blobs[j]!.length;
      j++;
    }
    yield { pack: head.pack, start: head.offset, end, first: i, last: j };
    i = j;
  }
}
