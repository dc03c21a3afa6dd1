/**
 * Resuming a killed shard attempt on any host (docs/scale-out.md "Re-runs, kills and resume").
 *
 * A shard attempt writes, at each progress checkpoint (backup-checkpoints.ts), a sealed
 * checkpoint document `checkpoints/<set>.<index>.<run>.<seq>`: the version records it added
 * since its previous checkpoint and the index files that locate their blobs. A later attempt of
 * the same shard (same run set, same index), on whatever host, reads the checkpoint documents of
 * the attempts that left no manifest and, for each listed object whose state (version id, ETag,
 * size, Last-Modified) is the checkpointed record's, records that version as its own: no GET, no
 * upload. Its manifest then names the index files that locate those blobs, so it stands alone.
 *
 * Nothing a checkpoint says is trusted for locations: a carried version's blobs must be listed by
 * an index file of this repository (read and authenticated here, or known to the catalog); a
 * record whose blobs are not is simply read again.
 */
import type { Catalog } from '../catalog/catalog.js';
import { completeShardAttempt } from '../catalog/run-sets.js';
import { runIdTime } from '../catalog/forget.js';
import { carryLookup, dropCarryTable, lastVersionRowOfRun, newCarryTable } from '../catalog/resume-carry.js';
import type { RunRow, RunShard, VersionRecord } from '../catalog/types.js';
import { IntegrityError, errorMessage, isNotFound } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import type { ObjectEntry } from '../storage/types.js';
import type { EventSink } from './events.js';
import type { IndexDocument } from './finalize.js';
import { inOrder } from '../util/in-order.js';
import { checkIndex, packOfIndex } from './rebuild.js';

/** A version record as a checkpoint holds it: a manifest's record line without `t` and `locs`. */
export type CheckpointRecord = VersionRecord;

/** `checkpoints/<name>` (docs/repository-format.md "checkpoints/"). */
export interface CheckpointDocument {
  version: 1;
  /** Its own name (a version 1 repository's documents are bound to their names by it). */
  name: string;
  /** The attempt's run id (the manifest it would have written: `runs/<run>`). */
  run: string;
  group: string;
  host: string;
  started: string;
  shard: RunShard;
  /** 1 for the attempt's first checkpoint, then 2, 3, ... */
  seq: number;
  /** Index files that locate the blobs of `records` (written by this checkpoint, or taken over by the attempt). */
  indexes: string[];
  /** The versions the attempt recorded since its previous checkpoint, blobs in packs already written. */
  records: CheckpointRecord[];
}

/** Version records per checkpoint document at most (a 4 KB object's record is ~300 bytes of JSON). */
export const RECORDS_PER_DOCUMENT = 20_000;

/** Checkpoint documents (with their index files) read ahead of the one being taken over. */
const CHECKPOINTS_AHEAD = 4;

const RUN_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;
const NAME = /^(\d{8}T\d{6}Z-[0-9a-f]{6})\.(\d{1,5})\.(\d{8}T\d{6}Z-[0-9a-f]{6})\.(\d{6})$/;

/** The names of one shard's checkpoints start with this. */
export function shardCheckpointPrefix(shard: Pick<RunShard, 'set' | 'index'>): string {
  return `${shard.set}.${shard.index}.`;
}

export function checkpointName(shard: Pick<RunShard, 'set' | 'index'>, run: string, seq: number): string {
  return `${shardCheckpointPrefix(shard)}${run}.${String(seq).padStart(6, '0')}`;
}

/** A checkpoint's name split into its parts, or null when it is not one. */
export function parseCheckpointName(name: string): { set: string; index: number; run: string; seq: number } | null {
  const m = NAME.exec(name);
  return m === null ? null : { set: m[1]!, index: Number(m[2]), run: m[3]!, seq: Number(m[4]) };
}

/** Why `doc` is not a well-formed checkpoint document stored as `name`, or null. */
export function checkpointProblem(doc: unknown, name: string): string | null {
  const d = doc as Partial<CheckpointDocument> | null;
  if (d === null || typeof d !== 'object' || d.version !== 1) return 'not a version 1 checkpoint document';
  const parsed = parseCheckpointName(name);
  if (parsed === null) return 'its name is not <run set>.<shard>.<run>.<seq>';
  if (d.name !== name) return `it is the checkpoint ${JSON.stringify(d.name ?? null)}, stored under another name`;
  const s = d.shard;
  if (typeof s !== 'object' || s === null || s.set !== parsed.set || s.index !== parsed.index || !Number.isInteger(s.of) || typeof s.range !== 'object') return 'its shard is not the one its name says';
  if (d.run !== parsed.run || !RUN_ID.test(d.run) || d.seq !== parsed.seq || typeof d.group !== 'string') return 'its run or sequence number is not the one its name says';
  if (!Array.isArray(d.indexes) || !d.indexes.every((n) => typeof n === 'string')) return 'malformed index file list';
  if (!Array.isArray(d.records) || !d.records.every(isRecordShape)) return 'malformed version records';
  return null;
}

function isRecordShape(r: unknown): r is CheckpointRecord {
  const v = r as Partial<VersionRecord> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.bucket === 'string' &&
    typeof v.key === 'string' &&
    (v.versionId === null || typeof v.versionId === 'string') &&
    typeof v.deleteMarker === 'boolean' &&
    Number.isFinite(v.size) &&
    typeof v.etag === 'string' &&
    Number.isFinite(v.lastModified) &&
    Number.isFinite(v.validFrom) &&
    Array.isArray(v.blobs) &&
    v.blobs.every((b) => typeof b === 'string' && /^[0-9a-f]{64}$/.test(b))
  );
}

/**
 * Writes an attempt's checkpoint documents, each with the versions recorded since the previous
 * one (a version goes into exactly one: no checkpoint writes an earlier one's records again).
 */
export class CheckpointWriter {
  private seq = 0;
  private afterRow = 0;
  /** Names written. */
  readonly written: string[] = [];

  constructor(
    private readonly repo: Repository,
    private readonly catalog: Catalog,
    private readonly run: Pick<RunRow, 'id' | 'seq' | 'group' | 'started'> & { host: string; shard: RunShard },
    /** Index files this attempt took over from attempts it resumed: named by its first checkpoint. */
    private adopted: string[] = [],
    private readonly perDocument: number = RECORDS_PER_DOCUMENT,
  ) {}

  /** The newest version row of the run: what the next checkpoint covers, fixed before its index files are written. */
  mark(): number {
    return lastVersionRowOfRun(this.catalog, this.run.seq) ?? this.afterRow;
  }

  /** Writes the versions in (previous mark, `upTo`], whose blobs `indexes` (and earlier checkpoints') list. */
  async write(upTo: number, indexes: readonly string[]): Promise<void> {
    // Kept until a document names them: a checkpoint whose document failed hands them to the next.
    this.adopted = [...this.adopted, ...indexes];
    let records: CheckpointRecord[] = [];
    let after = this.afterRow;
    for (;;) {
      const page = this.catalog.versionsOfRun(this.run.seq, after, 5000).filter((r) => r.row <= upTo);
      for (const { row, ...record } of page) {
        after = row;
        // Reinstatements and delete markers need no read: nothing to carry.
        if (record.reinstated !== true && !record.deleteMarker) records.push(record);
        // Several documents when the records are many (tiny objects): each stays a few MB.
        if (records.length >= this.perDocument) {
          await this.document(records, after);
          records = [];
        }
      }
      if (page.length === 0) {
        if (records.length > 0 || this.adopted.length > 0) await this.document(records, upTo);
        break;
      }
    }
    this.afterRow = Math.max(this.afterRow, upTo);
  }

  /** Writes one checkpoint document: `records`, and the index files not named yet. The versions up to row `through` are then checkpointed. */
  private async document(records: CheckpointRecord[], through: number): Promise<void> {
    const name = checkpointName(this.run.shard, this.run.id, this.seq + 1);
    const doc: CheckpointDocument = {
      version: 1,
      name,
      run: this.run.id,
      group: this.run.group,
      host: this.run.host,
      started: new Date(this.run.started).toISOString(),
      shard: this.run.shard,
      seq: this.seq + 1,
      indexes: this.adopted,
      records,
    };
    await this.repo.writeDocument('checkpoints', name, doc);
    this.seq++;
    this.afterRow = Math.max(this.afterRow, through);
    this.adopted = [];
    this.written.push(name);
  }
}

/** What a shard attempt took over from earlier attempts of its shard (`resumeShard`). */
export interface Resumed {
  /** Attempts whose checkpoints were read. */
  attempts: string[];
  /** Their checkpoint documents. */
  checkpoints: string[];
  /** Index files that locate the blobs of carryable versions: this attempt's manifest names them. */
  indexes: string[];
  /** Versions that may be carried (their blobs located through an index file of this repository). */
  carryable: number;
}

/**
 * Before a shard attempt backs up its range: reads the checkpoints of earlier attempts of its
 * shard that left no manifest (the catalog, synced, knows every manifest of the shard's range),
 * locates their blobs through the index files they name, and keeps each version whose blobs are
 * located as a candidate for `carried`. Checkpoints that fail authentication, or name another
 * shard, are passed over with a warning, and so are the attempts in `passOver` (this host's
 * dead runs it has just recorded under new ids). Returns null when there is nothing to resume from.
 */
export async function resumeShard(repo: Repository, catalog: Catalog, group: string, shard: RunShard, events: EventSink, passOver: ReadonlySet<string> = new Set()): Promise<Resumed | null> {
  const known = catalog.knownRunIds();
  for (const run of passOver) known.add(run);
  const byAttempt = new Map<string, string[]>();
  for await (const { name } of repo.list('checkpoints', { namePrefix: shardCheckpointPrefix(shard) })) {
    const parsed = parseCheckpointName(name);
    if (parsed === null || parsed.set !== shard.set || parsed.index !== shard.index || known.has(parsed.run)) continue;
    let names = byAttempt.get(parsed.run);
    if (names === undefined) byAttempt.set(parsed.run, (names = []));
    names.push(name);
  }
  if (byAttempt.size === 0) return null;
  const insert = newCarryTable(catalog);
  const resumed: Resumed = { attempts: [], checkpoints: [], indexes: [], carryable: 0 };
  const knownIndexes = catalog.knownIndexFiles();
  const sameRange = JSON.stringify(shard.range);
  // Oldest attempt first: a newer attempt's record of the same version replaces an older one's.
  // Each attempt's checkpoints in order, a few read ahead with the index files they name: a
  // record's blobs are in index files its own checkpoint or an earlier one names, so each
  // checkpoint's records are judged once those are in the catalog, and then let go.
  for (const [run, names] of [...byAttempt].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const reading = new Set<string>();
    let unread: { count: number; first: string; why: string } | null = null;
    let used = false;
    await inOrder(
      names.sort(),
      CHECKPOINTS_AHEAD,
      async (name): Promise<{ doc: CheckpointDocument; indexes: [string, IndexDocument | null][] } | null> => {
        let doc: CheckpointDocument;
        try {
          doc = await repo.readDocument<CheckpointDocument>('checkpoints', name);
          const problem = checkpointProblem(doc, name);
          if (problem !== null) throw new IntegrityError(`${repo.where('checkpoints', name)}: ${problem}`);
          if (doc.group !== group || JSON.stringify(doc.shard.range) !== sameRange || doc.shard.of !== shard.of) {
            throw new IntegrityError(`${repo.where('checkpoints', name)}: a checkpoint of another group or key range than its name's shard now has`);
          }
        } catch (err) {
          // Gone since it was listed (forget deleted it): nothing to warn about.
          if (isNotFound(err)) return null;
          if (!(err instanceof IntegrityError)) throw err;
          events({ type: 'warning', message: `${errorMessage(err)}; not resumed from (lakeguard verify reports a damaged one)` });
          return null;
        }
        // The index files it names, read and authenticated: only what they list is located.
        const indexes: [string, IndexDocument | null][] = [];
        for (const index of doc.indexes) {
          if (knownIndexes.has(index)) {
            indexes.push([index, null]);
            continue;
          }
          if (reading.has(index)) continue; // an earlier checkpoint's, located before this one's records
          reading.add(index);
          try {
            indexes.push([index, checkIndex(await repo.readDocument<IndexDocument>('index', index), index, repo)]);
          } catch (err) {
            // Gone (a prune removed the dead attempt's packs) or damaged: what it located is read again.
            if (!isNotFound(err) && !(err instanceof IntegrityError)) throw err;
            if (unread === null) unread = { count: 1, first: index, why: errorMessage(err) };
            else unread.count++;
          }
        }
        return { doc, indexes };
      },
      (read) => {
        if (read === null) return;
        const { doc, indexes } = read;
        used = true;
        resumed.checkpoints.push(doc.name);
        catalog.transaction(() => {
          for (const [name, index] of indexes) {
            if (index !== null && !knownIndexes.has(name)) {
              for (const p of index.packs) catalog.insertPack(packOfIndex(p), null, name);
              catalog.addIndexFile(name);
              knownIndexes.add(name);
            }
            resumed.indexes.push(name);
          }
          const rows = catalog.blobRowsOf(new Set(doc.records.flatMap((r) => r.blobs)));
          for (const r of doc.records) {
            if (r.deleteMarker || r.reinstated === true || !r.blobs.every((b) => rows.has(b))) continue;
            insert(r);
            resumed.carryable++;
          }
        });
      },
    );
    if (unread !== null) {
      const { count, first, why } = unread;
      const more = count === 1 ? '' : `; ${count - 1} more`;
      events({ type: 'warning', message: `${count} index ${count === 1 ? 'file' : 'files'} named by the checkpoints of run ${run} could not be read (${repo.where('index', first)}: ${why}${more}): the objects ${count === 1 ? 'it' : 'they'} located are read again` });
    }
    if (used) resumed.attempts.push(run);
  }
  if (resumed.attempts.length === 0) {
    dropCarryTable(catalog);
    return null;
  }
  resumed.indexes = [...new Set(resumed.indexes)];
  return resumed;
}

/**
 * The checkpointed version of a listed object whose state is the one the checkpoint recorded
 * (same version id, ETag and size, Last-Modified to the second), or undefined.
 */
export class CarriedVersions {
  private constructor(private readonly lookup: NonNullable<ReturnType<typeof carryLookup>>) {}

  /** The versions `resumeShard` found (null: it found none). */
  static open(catalog: Catalog): CarriedVersions | null {
    const lookup = carryLookup(catalog);
    return lookup === null ? null : new CarriedVersions(lookup);
  }

  of(bucket: string, entry: ObjectEntry): VersionRecord | undefined {
    if (entry.isDeleteMarker) return undefined;
    const r = this.lookup(bucket, entry.key, entry.versionId);
    if (r === undefined) return undefined;
    const same = r.etag === entry.etag && r.size === entry.size && Math.floor(r.lastModified / 1000) === Math.floor(entry.lastModified.getTime() / 1000);
    return same ? r : undefined;
  }

  static close(catalog: Catalog): void {
    dropCarryTable(catalog);
  }
}

/**
 * How old an attempt's checkpoints are (by its run id's time) when forget takes its shard for
 * abandoned: an engine retries a dead shard within minutes or hours, and a re-run later than this
 * only reads those objects again (the checkpoints save reads; no data is in them). Also how long
 * after its last attempt a run set still `running` counts as partial for retention
 * (retention-units.ts): one whose missing indexes no engine will run is not kept for ever.
 */
export const ABANDONED_SHARD_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * The checkpoint documents nothing will read (forget deletes them): those of an attempt whose
 * manifest the catalog holds, of a shard with a complete attempt, of run sets forgotten
 * (`forgottenSets`: run-set ids none of whose attempts the catalog holds any more), and of
 * attempts older than ABANDONED_SHARD_MS at `now` (a run set cancelled before any shard
 * wrote its manifest is known to no catalog, and would otherwise keep them for ever). One LIST.
 * Younger checkpoints of run sets the catalog does not know are kept: a shard may be running,
 * or be re-run, on another host.
 */
export async function obsoleteCheckpoints(repo: Repository, catalog: Catalog, forgottenSets: ReadonlySet<string>, now = Date.now()): Promise<string[]> {
  const known = catalog.knownRunIds();
  const out: string[] = [];
  for await (const { name } of repo.list('checkpoints')) {
    const p = parseCheckpointName(name);
    if (p === null) continue;
    const started = runIdTime(p.run);
    const abandoned = started !== null && now - started > ABANDONED_SHARD_MS;
    if (abandoned || known.has(p.run) || forgottenSets.has(p.set) || completeShardAttempt(catalog, p.set, p.index) !== null) out.push(name);
  }
  return out;
}
