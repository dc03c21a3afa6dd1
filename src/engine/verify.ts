import { randomInt } from 'node:crypto';
import pLimit from 'p-limit';
import type { Catalog } from '../catalog/catalog.js';
import { IntegrityError, StorageError, errorMessage } from '../errors.js';
import { sha256Hex } from '../repository/config.js';
import { flagsCompressed, packKey } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import { getBytes } from '../storage/types.js';
import { noEvents, type EventSink } from './events.js';
import type { IndexDocument } from './finalize.js';

export interface VerifyOptions {
  repo: Repository;
  catalog: Catalog;
  /** Fraction of referenced packs to download and check (0: structure only, 1: everything). */
  readData: number;
  concurrency: number;
  events?: EventSink;
}

export interface Damage {
  /** What is damaged: a pack, an index file, or a missing piece. */
  what: string;
  problem: string;
  /** Object versions that can no longer be restored because of it. */
  affected: { bucket: string; key: string; versionId: string | null; run: string }[];
}

export interface VerifyReport {
  packsChecked: number;
  packsRead: number;
  blobsRead: number;
  bytesRead: number;
  indexFiles: number;
  damage: Damage[];
  durationMs: number;
}

/**
 * Proves the backup is restorable: every blob a catalogued version needs is in a pack that
 * exists with the recorded size and in some index file; with read-data, packs are downloaded
 * and every blob is authenticated, decompressed and re-hashed against its id.
 */
export async function verify(opts: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const events = opts.events ?? noEvents;
  const { repo, catalog } = opts;
  const report: VerifyReport = { packsChecked: 0, packsRead: 0, blobsRead: 0, bytesRead: 0, indexFiles: 0, damage: [], durationMs: 0 };

  const dangling = catalog.danglingBlobReferences();
  if (dangling > 0) report.damage.push({ what: 'catalog', problem: `${dangling} blob references point to no pack`, affected: [] });

  // Packs in the repository, by name and size (one listing).
  events({ type: 'phase', phase: 'list packs' });
  const present = new Map<string, number>();
  for await (const item of repo.store.list('packs/')) if (item.kind === 'object') present.set(item.key.slice(item.key.lastIndexOf('/') + 1), item.size);

  // Index files must together list every blob the catalog relies on.
  events({ type: 'phase', phase: 'read index' });
  const indexed = new Map<string, Set<string>>();
  for (const name of await repo.listNames('index')) {
    report.indexFiles++;
    try {
      const doc = await repo.readDocument<IndexDocument>('index', name);
      for (const p of doc.packs) {
        let set = indexed.get(p.id);
        if (set === undefined) indexed.set(p.id, (set = new Set()));
        for (const b of p.blobs) set.add(b[0]);
      }
    } catch (err) {
      if (!(err instanceof IntegrityError || err instanceof StorageError)) throw err;
      report.damage.push({ what: `index/${name}`, problem: errorMessage(err), affected: [] });
    }
  }

  const packs = catalog.referencedPacks();
  const toRead = new Set(sample(packs.map((p) => p.name), opts.readData));
  const limit = pLimit(Math.max(1, Math.min(8, opts.concurrency)));
  let done = 0;
  await Promise.all(
    packs.map((pack) =>
      limit(async () => {
        report.packsChecked++;
        const blobs = catalog.blobsOfPack(pack.name);
        const problems: string[] = [];
        const bad: Buffer[] = [];
        const size = present.get(pack.name);
        if (size === undefined) {
          problems.push('missing from the repository');
          bad.push(...blobs.map((b) => b.hash));
        } else if (size !== pack.size) {
          problems.push(`size is ${size} bytes, catalog recorded ${pack.size}`);
        }
        const inIndex = indexed.get(pack.name);
        const unindexed = blobs.filter((b) => !inIndex?.has(b.hash.toString('hex')));
        if (unindexed.length > 0) problems.push(`${unindexed.length} blobs are in no index file (run a backup to write the missing index)`);
        if (size !== undefined && toRead.has(pack.name)) bad.push(...(await readPack(opts, pack.name, blobs, problems, report)));
        if (problems.length > 0) {
          const damage = { what: `pack ${pack.name}`, problem: problems.join('; '), affected: catalog.versionsUsingBlobs(bad) };
          report.damage.push(damage);
          events({ type: 'warning', message: `${damage.what}: ${damage.problem}` });
        }
        events({ type: 'progress', phase: 'verify', done: ++done, total: packs.length, bytes: report.bytesRead, failed: report.damage.length });
      }),
    ),
  );
  report.durationMs = Date.now() - started;
  return report;
}

/** Downloads a pack and checks it end to end; returns the ids of blobs that are unreadable. */
async function readPack(
  opts: VerifyOptions,
  name: string,
  blobs: ReturnType<Catalog['blobsOfPack']>,
  problems: string[],
  report: VerifyReport,
): Promise<Buffer[]> {
  let body: Buffer;
  try {
    body = await getBytes(opts.repo.store, packKey(name));
  } catch (err) {
    problems.push(`cannot be read: ${errorMessage(err)}`);
    return blobs.map((b) => b.hash);
  }
  report.packsRead++;
  report.bytesRead += body.length;
  if (sha256Hex(body) !== name) problems.push('content does not match its name (corrupted)');
  let header: Set<string> | null = null;
  try {
    header = new Set(opts.repo.readPackHeader(body, name).entries.map((e) => `${e.id.toString('hex')}:${e.offset}:${e.length}`));
  } catch (err) {
    problems.push(errorMessage(err));
  }
  const bad: Buffer[] = [];
  for (const b of blobs) {
    report.blobsRead++;
    try {
      if (header !== null && !header.has(`${b.hash.toString('hex')}:${b.offset}:${b.length}`)) {
        throw new IntegrityError(`blob ${b.hash.toString('hex')} is not in the pack header at offset ${b.offset}`);
      }
      if (b.offset + b.length > body.length) throw new IntegrityError(`blob ${b.hash.toString('hex')} lies past the end of the pack`);
      opts.repo.decodeBlob(body.subarray(b.offset, b.offset + b.length), { id: b.hash, compressed: flagsCompressed(b.flags), rawLength: b.rawLength }, `pack ${name}`);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      bad.push(b.hash);
    }
  }
  if (bad.length > 0) problems.push(`${bad.length} of ${blobs.length} blobs failed authentication or their hash check`);
  return bad;
}

function sample<T>(items: T[], fraction: number): T[] {
  if (fraction >= 1) return items;
  if (fraction <= 0) return [];
  const want = Math.max(1, Math.round(items.length * fraction));
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, want);
}
