/**
 * A thread of the encode pool (encode-pool.ts): compresses and seals batches of blobs, exactly
 * as Repository.encodeBlob does in the main thread (the same compressBlob and seal), so a
 * blob's stored form does not depend on which thread encoded it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compressBlob } from './compress.js';
import { seal } from './crypto.js';
import { ownedArrayBuffer, type EncodeBatch, type EncodeReply, type EncodeWorkerData } from './encode-pool.js';

const { encKey, level } = workerData as EncodeWorkerData;
const key = encKey === null ? null : Buffer.from(encKey);

parentPort!.on('message', (batch: EncodeBatch) => {
  const reply: EncodeReply = { seq: batch.seq, results: [], error: null };
  const transfer: ArrayBuffer[] = [];
  try {
    for (const job of batch.jobs) {
      const raw = new Uint8Array(job.raw);
      const { data, compressed } = compressBlob(raw, level);
      const stored = key === null ? data : seal(key, data, new Uint8Array(job.id));
      const buffer = ownedArrayBuffer(stored);
      transfer.push(buffer);
      reply.results.push({ stored: buffer, compressed });
    }
  } catch (err) {
    reply.results = [];
    reply.error = err instanceof Error ? err.message : String(err);
    transfer.length = 0;
  }
  parentPort!.postMessage(reply, transfer);
});
