/**
 * Prune's writes before anything is deleted: the used blobs of mostly-empty packs copied into
 * new packs (as stored: blobs are sealed with their own id, not their position), and index files
 * for the new packs and for what obsolete index files still list. prune.ts orders these steps
 * and the deletions after them.
 */
import type { Catalog } from '../catalog/catalog.js';
import { clearWrittenPacks, recordWrittenPack, usedBlobsOfPack, writtenBlobs } from '../catalog/prune-queries.js';
import { blobLocator } from '../catalog/version-records.js';
import { IntegrityError, errorMessage, isNotFound } from '../errors.js';
import { blobFlags, flagsCompressed, flagsType } from '../repository/pack.js';
import { Packer, type WrittenPack } from '../repository/packer.js';
import type { EncodedBlob, Repository } from '../repository/repository.js';
import type { EventSink } from './events.js';
import { INDEX_PAGE, type IndexDocument } from './finalize.js';
import type { PlannedPack } from './prune-plan.js';

/** Packs read while earlier ones are copied into new packs. */
const READ_AHEAD = 3;

/** What the repack steps need of the prune run. */
export interface RepackRun {
  repo: Repository;
  catalog: Catalog;
  events: EventSink;
  signal: AbortSignal | undefined;
  /** Reports a pack (or file) left as it is, and why. */
  damage(what: string, problem: string): void;
  progress(phase: string, done: number, total: number): void;
  /** Used bytes copied out of repacked packs. */
  rewritten(bytes: number): void;
  checkSignal(): void;
}

/**
 * A pack the repack wrote: its name and size. Its entries (one per blob copied into it) are
 * kept in the temporary table temp.prune_written of the catalog's connection, not in memory:
 * a prune that repacks millions of blobs held them all until the catalog was updated (about
 * 400 bytes of heap a blob; 200,000 objects, 60 % rewritten and `--max-unused 0%`: 25 MB more
 * live heap than 50,000). `writtenBlobs` (prune-queries.ts) reads them back one pack at a time.
 */
export interface RepackedPack {
  id: string;
  size: number;
  blobs: number;
}

/**
 * Copies the used blobs of each pack into new packs, as stored (they are sealed with their
 * own id, not their position). Each blob is authenticated first, as restore does; a pack
 * with a blob that fails is reported and kept whole.
 */
export async function repack(run: RepackRun, packs: readonly PlannedPack[]): Promise<{ written: RepackedPack[]; repacked: PlannedPack[]; keptDamaged: PlannedPack[] }> {
  const written: RepackedPack[] = [];
  const repacked: PlannedPack[] = [];
  const keptDamaged: PlannedPack[] = [];
  clearWrittenPacks(run.catalog, true);
  if (packs.length === 0) return { written, repacked, keptDamaged };
  run.events({ type: 'phase', phase: 'repack' });
  const at = new Map<string, number>();
  const keep = (p: WrittenPack): void => {
    // The same content written twice is one pack (its name is its hash): listed once.
    const seen = at.get(p.id) ?? -1;
    recordWrittenPack(
      run.catalog,
      p.id,
      p.entries.map((e) => ({ hash: e.id, offset: e.offset, length: e.length, rawLength: e.rawLength, flags: blobFlags(e.compressed, e.type) })),
    );
    const light = { id: p.id, size: p.size, blobs: p.entries.length };
    if (seen >= 0) written[seen] = light;
    else at.set(p.id, written.push(light) - 1);
  };
  const packer = new Packer(run.repo, { onPackWritten: keep });
  // A few packs are read ahead (each is held whole in memory until its blobs are copied out).
  const reads: Promise<EncodedBlob[] | null>[] = [];
  let next = 0;
  const readAhead = (): void => {
    while (next < packs.length && reads.length < READ_AHEAD) {
      const read = readUsedBlobs(run, packs[next++]!);
      read.catch(() => {}); // awaited in order below; must not be an unhandled rejection meanwhile
      reads.push(read);
    }
  };
  readAhead();
  let done = 0;
  for (const p of packs) {
    run.checkSignal();
    const blobs = await reads.shift()!;
    readAhead();
    if (blobs === null) {
      keptDamaged.push(p);
    } else {
      for (const blob of blobs) await packer.add(blob);
      repacked.push(p);
      run.rewritten(blobs.reduce((n, b) => n + b.stored.length, 0));
    }
    run.progress('repack', ++done, packs.length);
  }
  await packer.flush();
  return { written, repacked, keptDamaged };
}

/** The used blobs of a pack, authenticated; null (reported) when the pack cannot be read or a blob fails. */
async function readUsedBlobs(run: RepackRun, p: PlannedPack): Promise<EncodedBlob[] | null> {
  let body: Buffer;
  try {
    body = await run.repo.readPack(p.name, run.signal === undefined ? {} : { signal: run.signal });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    run.damage(`pack ${p.name}`, 'disappeared from the repository; not repacked');
    return null;
  }
  const out: EncodedBlob[] = [];
  for (const b of usedBlobsOfPack(run.catalog, p.name)) {
    const compressed = flagsCompressed(b.flags);
    try {
      if (b.offset + b.length > body.length) throw new IntegrityError(`blob ${b.hash.toString('hex')} lies past the end of pack ${p.name}`);
      const stored = body.subarray(b.offset, b.offset + b.length);
      run.repo.decodeBlob(stored, { id: b.hash, compressed, rawLength: b.rawLength }, `pack ${p.name}`);
      out.push({ id: b.hash, type: flagsType(b.flags), stored: Buffer.from(stored), compressed, rawLength: b.rawLength });
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      run.damage(`pack ${p.name}`, `${errorMessage(err)}; the pack is kept as it is (run \`lakeguard verify --read-data\`)`);
      return null;
    }
  }
  return out;
}

/**
 * Writes index files for the new packs and for every pack of an obsolete index file that is
 * not gone (entries copied from the old file). Returns their names and which one lists each pack.
 */
export async function writeIndexes(run: RepackRun, written: readonly RepackedPack[], obsolete: readonly string[], gone: Set<string>): Promise<{ names: string[]; packIndex: Map<string, string> }> {
  const names: string[] = [];
  const packIndex = new Map<string, string>();
  let batch = new Map<string, IndexDocument['packs'][number]>();
  let entries = 0;
  const emit = async (): Promise<void> => {
    if (batch.size === 0) return;
    const name = await run.repo.writeDocument('index', null, { version: 1, packs: [...batch.values()] } satisfies IndexDocument);
    names.push(name);
    for (const pack of batch.keys()) packIndex.set(pack, name);
    batch = new Map();
    entries = 0;
  };
  const add = async (pack: IndexDocument['packs'][number]): Promise<void> => {
    const have = batch.get(pack.id);
    if (have === undefined) {
      batch.set(pack.id, pack);
    } else {
      // The same pack in two old index files: list each blob once.
      const ids = new Set(have.blobs.map((b) => b[0]));
      have.blobs.push(...pack.blobs.filter((b) => !ids.has(b[0])));
    }
    entries += pack.blobs.length;
    if (entries >= INDEX_PAGE) await emit();
  };
  for (const p of written) {
    const blobs = writtenBlobs(run.catalog, p.id).map((b): IndexDocument['packs'][number]['blobs'][number] => [b.hash.toString('hex'), flagsType(b.flags), b.offset, b.length, b.rawLength, flagsCompressed(b.flags) ? 1 : 0]);
    await add({ id: p.id, size: p.size, blobs });
  }
  const locate = blobLocator(run.catalog);
  for (const name of obsolete) {
    run.checkSignal();
    const doc = await run.repo.readDocument<IndexDocument>('index', name);
    for (const pack of doc.packs) {
      if (!gone.has(pack.id)) {
        await add(pack);
        continue;
      }
      // A second copy of a blob (two backups stored the same content at once) goes with its pack.
      // Another host's catalog, or a run's record lines (`locs`, which a scoped catalog follows),
      // may locate the blob at this copy: listing the kept copy here lets them move it there when
      // they apply this prune, as they move repacked blobs (docs/retention.md "Second copies").
      for (const entry of pack.blobs) {
        const kept = locate(Buffer.from(entry[0], 'hex'));
        if (kept !== undefined && !gone.has(kept[0])) {
          const [pack, packSize, offset, length, rawLength, compressed] = kept;
          await add({ id: pack, size: packSize, blobs: [[entry[0], entry[1], offset, length, rawLength, compressed]] });
        }
      }
    }
  }
  await emit();
  return { names, packIndex };
}
