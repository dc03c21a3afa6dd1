/**
 * A thread of the encode pool (encode-pool.ts): encodes batches of jobs with the same code as
 * the main thread (blob-encode.ts), so a blob's id and stored form do not depend on which
 * thread made them. A whole object is chunked and its blob ids computed here too.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { encodeObjectBlobs, encodeRaw } from './blob-encode.js';
import { ownedArrayBuffer, type EncodeBatch, type EncodeReply, type EncodeWorkerData } from './encode-pool.js';

const settings = workerData as EncodeWorkerData;
const keys = { encKey: settings.encKey === null ? null : Buffer.from(settings.encKey), macKey: settings.macKey === null ? null : Buffer.from(settings.macKey) };

parentPort!.on('message', (batch: EncodeBatch) => {
  const reply: EncodeReply = { seq: batch.seq, results: [], error: null };
  const transfer: ArrayBuffer[] = [];
  /** A blob's bytes as an ArrayBuffer of their own, moved to the main thread. */
  const moved = (b: Uint8Array): ArrayBuffer => {
    const buffer = ownedArrayBuffer(b);
    transfer.push(buffer);
    return buffer;
  };
  try {
    for (const job of batch.jobs) {
      const raw = Buffer.from(job.raw);
      if (job.id === null) {
        reply.results.push(encodeObjectBlobs(raw, keys, settings).map((b) => ({ id: moved(b.id), stored: moved(b.stored), compressed: b.compressed, rawLength: b.rawLength })));
      } else {
        const { stored, compressed } = encodeRaw(raw, new Uint8Array(job.id), keys.encKey, settings.level);
        reply.results.push([{ id: job.id, stored: moved(stored), compressed, rawLength: raw.length }]);
      }
    }
  } catch (err) {
    reply.results = [];
    reply.error = err instanceof Error ? err.message : String(err);
    transfer.length = 0;
  }
  parentPort!.postMessage(reply, transfer);
});
