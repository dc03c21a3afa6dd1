/**
 * Threads for the CPU of a backup, run on every core instead of one. Two kinds of job:
 * - a whole object (`encodeObject`: a file, or a small object's body, its bytes moved to the
 *   thread without a copy): the thread chunks it, computes the blob ids (keyed HMAC) and
 *   compresses and seals every chunk; the main thread then drops the blobs already stored
 *   (dedup needs the ids, which come back with the encoded blobs: a blob already stored was
 *   encoded for nothing, the price of taking the chunker and the HMAC off the main thread);
 * - a chunk of a large object (`encode`): chunked and identified in the main thread, which
 *   dedups first; the thread compresses and seals.
 * The main thread keeps the I/O, dedup, packs and the catalog. Jobs are batched (one message
 * per batch, not per blob: small objects are many) and a batch goes to the thread with the
 * fewest bytes outstanding.
 *
 * A blob's stored form is the same whichever thread encodes it (same compressBlob, same level;
 * only AES-GCM's random nonce differs, as it does between any two encodings), so packs and
 * records do not depend on the number of threads. One thread means no pool: encodeBlob in the
 * main thread, as before.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { encodeWorkerScript } from './encode-worker-path.js';
import type { EncodeSettings } from './blob-encode.js';
import type { BlobType } from './pack.js';
import type { EncodedBlob, Repository } from './repository.js';

/** More threads than this only add memory: with two per core the pipeline stays full. */
const MAX_THREADS = 8;
/** A batch is sent once it holds this many raw bytes (or at the next turn of the event loop). */
const BATCH_BYTES = 512 * 1024;
/**
 * Raw bytes a pool encodes in the main thread before it starts its threads: starting one costs
 * ~0.1 s of CPU (a Node isolate, zstd loaded again) and seconds of wall time on a loaded
 * machine, more than a small incremental run spends encoding (16 MiB: ~0.3 s of zstd).
 */
export const IN_THREAD_BYTES = 16 * 1024 * 1024;
/** Raw bytes handed to the threads and not yet back, beyond which `encode` callers wait. */
const MAX_OUTSTANDING_BYTES = 16 * 1024 * 1024;

export type EncodeWorkerData = EncodeSettings;
export interface EncodeBatch {
  seq: number;
  /** `id` null: `raw` is a whole object, to chunk and identify; else one blob with that id. */
  jobs: { raw: ArrayBuffer; id: ArrayBuffer | null }[];
}
export interface EncodeReply {
  seq: number;
  /** Per job, its blobs in content order (one for a blob job). */
  results: { id: ArrayBuffer; stored: ArrayBuffer; compressed: boolean; rawLength: number }[][];
  error: string | null;
}

/**
 * The bytes of `b` in an ArrayBuffer of their own that may be transferred to another thread: `b`'s
 * own when it spans all of it, else a copy (a small Buffer lives in Node's shared pool, which a
 * transfer would detach from under every other Buffer in it).
 */
export function ownedArrayBuffer(b: Uint8Array): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b.buffer;
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** Threads to use by default: the cores this process may use, at most MAX_THREADS. */
export function defaultEncodeThreads(): number {
  return Math.max(1, Math.min(MAX_THREADS, availableParallelism()));
}

interface Job {
  raw: Uint8Array;
  /** Its bytes, counted before `raw` is moved to a thread (which detaches it here). */
  rawLength: number;
  /** Null: a whole object. */
  id: Buffer | null;
  type: BlobType;
  resolve: (blobs: EncodedBlob[]) => void;
  reject: (err: unknown) => void;
}

interface Thread {
  worker: Worker;
  outstanding: number;
  batches: Map<number, Job[]>;
}

/** Encodes blobs (compress, then seal) for one backup run; `close` when the run is done. */
export interface BlobEncoder {
  /** The number of threads encoding (1: the main thread). */
  readonly threads: number;
  encode(raw: Uint8Array, type: BlobType, id: Buffer): Promise<EncodedBlob>;
  /**
   * A whole object's blobs (chunked, identified, encoded) on a thread; null when the caller is
   * to do it in its own thread (no pool, or the pool's first bytes: IN_THREAD_BYTES). `bytes`
   * must own its ArrayBuffer (Buffer.allocUnsafeSlow): it is moved to the thread, not copied,
   * and unusable here afterwards.
   */
  encodeObject(bytes: Buffer, type: BlobType): Promise<EncodedBlob[]> | null;
  close(): Promise<void>;
}

/**
 * A pool of `threads` workers, or the main thread when threads <= 1 or no worker script exists.
 * The pool encodes its first `inThreadBytes` (default IN_THREAD_BYTES) in the main thread.
 */
export function blobEncoder(repo: Repository, threads: number, inThreadBytes = IN_THREAD_BYTES): BlobEncoder {
  const script = threads > 1 ? encodeWorkerScript() : null;
  if (script === null) {
    return { threads: 1, encode: (raw, type, id) => Promise.resolve(repo.encodeBlob(raw, type, id)), encodeObject: () => null, close: () => Promise.resolve() };
  }
  return new EncodePool(script, repo, Math.min(threads, MAX_THREADS), inThreadBytes);
}

class EncodePool implements BlobEncoder {
  private pool: Thread[] | null = null;
  private queue: Job[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  private seq = 0;
  private outstandingBytes = 0;
  private roomWaiters: (() => void)[] = [];
  private failure: Error | null = null;

  /** Raw bytes still to encode in the main thread before the threads start. */
  private inThreadLeft: number;

  constructor(
    private readonly script: URL,
    private readonly repo: Repository,
    readonly threads: number,
    inThreadBytes: number,
  ) {
    this.inThreadLeft = inThreadBytes;
  }

  async encode(raw: Uint8Array, type: BlobType, id: Buffer): Promise<EncodedBlob> {
    if (this.inThread(raw.length)) return this.repo.encodeBlob(raw, type, id);
    const [blob] = await this.enqueue(raw, type, id);
    return blob!;
  }

  encodeObject(bytes: Buffer, type: BlobType): Promise<EncodedBlob[]> | null {
    return this.inThread(bytes.length) ? null : this.enqueue(bytes, type, null);
  }

  /** Whether these bytes are still to be encoded in the main thread (IN_THREAD_BYTES). */
  private inThread(bytes: number): boolean {
    if (this.inThreadLeft <= 0 || this.pool !== null) return false;
    this.inThreadLeft -= bytes;
    return true;
  }

  private async enqueue(raw: Uint8Array, type: BlobType, id: Buffer | null): Promise<EncodedBlob[]> {
    // Back-pressure: callers wait while the threads already have plenty to do.
    while (this.outstandingBytes >= MAX_OUTSTANDING_BYTES && this.failure === null) await new Promise<void>((r) => this.roomWaiters.push(r));
    if (this.failure !== null) throw this.failure;
    return new Promise<EncodedBlob[]>((resolve, reject) => {
      const rawLength = raw.length;
      this.queue.push({ raw, rawLength, id, type, resolve, reject });
      this.queuedBytes += rawLength;
      this.outstandingBytes += rawLength;
      if (this.queuedBytes >= BATCH_BYTES) this.send();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.send());
      }
    });
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    if (pool !== null) await Promise.all(pool.map((t) => t.worker.terminate()));
  }

  /** Threads start at the first blob: a run with nothing new to store starts none. */
  private start(): Thread[] {
    this.pool ??= Array.from({ length: this.threads }, () => {
      const workerData: EncodeWorkerData = this.repo.encodeSettings();
      const thread: Thread = { worker: new Worker(this.script, { workerData }), outstanding: 0, batches: new Map() };
      thread.worker.on('message', (reply: EncodeReply) => this.receive(thread, reply));
      thread.worker.on('error', (err) => this.fail(err));
      thread.worker.on('exit', (code) => {
        if (this.pool !== null) this.fail(new Error(`an encode thread exited (code ${code})`));
      });
      // An idle thread does not keep the process alive (a busy one must: its caller waits on it).
      thread.worker.unref();
      return thread;
    });
    return this.pool;
  }

  private send(): void {
    this.flushScheduled = false;
    if (this.queue.length === 0) return;
    const jobs = this.queue;
    const bytes = this.queuedBytes;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.failure !== null) {
      for (const j of jobs) j.reject(this.failure);
      return;
    }
    const pool = this.start();
    let thread = pool[0]!;
    for (const t of pool) if (t.outstanding < thread.outstanding) thread = t;
    const seq = this.seq++;
    if (thread.batches.size === 0) thread.worker.ref();
    thread.outstanding += bytes;
    thread.batches.set(seq, jobs);
    const batch: EncodeBatch = { seq, jobs: [] };
    const transfer: ArrayBuffer[] = [];
    for (const j of jobs) {
      if (j.id === null) {
        // A whole object: its caller gave up its buffer, moved without a copy.
        const raw = ownedArrayBuffer(j.raw);
        batch.jobs.push({ raw, id: null });
        transfer.push(raw);
        continue;
      }
      // Copies: the chunk's bytes may share a buffer with others the main thread still reads.
      const raw = j.raw.buffer.slice(j.raw.byteOffset, j.raw.byteOffset + j.raw.byteLength) as ArrayBuffer;
      const id = j.id.buffer.slice(j.id.byteOffset, j.id.byteOffset + j.id.byteLength) as ArrayBuffer;
      batch.jobs.push({ raw, id });
      transfer.push(raw, id);
    }
    thread.worker.postMessage(batch, transfer);
  }

  private receive(thread: Thread, reply: EncodeReply): void {
    const jobs = thread.batches.get(reply.seq);
    if (jobs === undefined) return;
    thread.batches.delete(reply.seq);
    let bytes = 0;
    jobs.forEach((job, i) => {
      bytes += job.rawLength;
      const result = reply.results[i];
      if (reply.error !== null || result === undefined) {
        const what = job.id === null ? `an object of ${job.rawLength} bytes` : `blob ${job.id.toString('hex')}`;
        job.reject(new Error(`an encode thread failed on ${what}: ${reply.error ?? 'no result'}`));
        return;
      }
      job.resolve(result.map((b) => ({ id: job.id ?? Buffer.from(b.id), type: job.type, stored: Buffer.from(b.stored), compressed: b.compressed, rawLength: b.rawLength })));
    });
    thread.outstanding -= bytes;
    if (thread.batches.size === 0) thread.worker.unref();
    this.outstandingBytes -= bytes;
    this.wake();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const t of this.pool ?? []) {
      for (const jobs of t.batches.values()) for (const j of jobs) j.reject(err);
      t.batches.clear();
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w();
  }
}
