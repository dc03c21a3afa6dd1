/**
 * Progress checkpoints of a backup run: every few packs, index files for the packs written so far
 * (writePendingIndexes), instead of all of them only when the run ends. A run killed with SIGKILL
 * writes no manifest, and its packs stay invisible to every other host unless an index file
 * lists them. A shard attempt also writes a checkpoint document (resume.ts) with the versions it
 * recorded since its previous checkpoint: a re-run of its shard on any host carries them over
 * instead of reading and storing those objects again. docs/scale-out.md "Re-runs, kills and resume".
 */
import type { Catalog } from '../catalog/catalog.js';
import { errorMessage } from '../errors.js';
import type { RepositoryLock } from '../repository/locks.js';
import type { Repository } from '../repository/repository.js';
import type { EventSink } from './events.js';
import { writePendingIndexes } from './finalize.js';
import type { CheckpointWriter } from './resume.js';

/** Packs between two checkpoints: with 16 MiB packs, at most ~128 MiB stored is uploaded again after a kill. */
export const CHECKPOINT_PACKS = 8;

export class IndexCheckpoints {
  private packs = 0;
  private chain: Promise<void> = Promise.resolve();
  /** Index files written by checkpoints, for the run's manifest (readers load the ones it names). */
  readonly written: string[] = [];

  constructor(
    private readonly repo: Repository,
    private readonly catalog: Catalog,
    private readonly lock: RepositoryLock,
    private readonly events: EventSink,
    private readonly every: number = CHECKPOINT_PACKS,
  ) {}

  /** A shard attempt's checkpoint documents, and how to get its records into the catalog first (the archiver's writer). */
  private documents: { writer: CheckpointWriter; flushRecords: () => void } | null = null;

  withDocuments(writer: CheckpointWriter, flushRecords: () => void): void {
    this.documents = { writer, flushRecords };
  }

  private closed = false;

  /** Counts a written pack; every `every` packs, queues a checkpoint (one at a time). */
  packWritten(): void {
    if (this.closed || ++this.packs % this.every !== 0) return;
    this.chain = this.chain.then(() => this.checkpoint());
  }

  /** Waits for the queued checkpoints. */
  async settled(): Promise<void> {
    await this.chain;
  }

  /** Queues no more checkpoints, and waits for those queued. */
  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
  }

  private async checkpoint(): Promise<void> {
    // Without the lock a prune may have deleted packs: no index file may name them.
    if (this.lock.signal.aborted) return;
    try {
      // The records so far, fixed before the index files: every pack their blobs are in is written
      // (records reach the writer only then), so the index files written next list them all.
      this.documents?.flushRecords();
      const upTo = this.documents?.writer.mark();
      const names = await writePendingIndexes(this.repo, this.catalog, { caughtUp: true });
      this.written.push(...names);
      if (this.lock.signal.aborted) return;
      if (upTo !== undefined) await this.documents!.writer.write(upTo, names);
    } catch (err) {
      // Only an optimisation: the run writes every pending index file when it ends.
      this.events({ type: 'warning', message: `could not write a progress checkpoint (index file or checkpoint document): ${errorMessage(err)}; the run goes on` });
    }
  }
}
