/**
 * Run manifests as catalog rebuild and sync read them, and the check of one manifest that
 * verify shares (split from rebuild.ts to keep it small; the record blobs stay there).
 */
import type { RecordedBlob, RunShard, RunStatus } from '../catalog/types.js';
import { IntegrityError, errorMessage, isNotFound } from '../errors.js';
import { objectKey } from '../repository/layout.js';
import type { Repository } from '../repository/repository.js';
import { inOrder } from '../util/in-order.js';
import type { RecordRange, RunManifest } from './finalize.js';

const STATUSES: readonly RunStatus[] = ['complete', 'partial', 'failed', 'interrupted'];
export const HEX64 = /^[0-9a-f]{64}$/;

// ---- run manifests ---------------------------------------------------------------------

export async function readManifests(
  repo: Repository,
  names: readonly string[],
  concurrency: number,
  opts: { skipDamaged?: boolean; skipMissing?: boolean },
  damaged: (what: string, problem: string) => void,
  checkSignal: () => void,
): Promise<RunManifest[]> {
  // Manifests are small (counters and a list of record blob ids): all of them fit in memory.
  const manifests: RunManifest[] = [];
  await inOrder(
    names,
    concurrency,
    async (name) => {
      checkSignal();
      try {
        return checkManifest(await repo.readDocument<RunManifest>('runs', name), name, repo);
      } catch (err) {
        if (opts.skipMissing && isNotFound(err)) return null; // a forget deleted it after the listing
        if (!(err instanceof IntegrityError) || !opts.skipDamaged) throw damageHint(err, objectKey('runs', name));
        return err;
      }
    },
    (m, name) => {
      if (m === null) return;
      if (m instanceof IntegrityError) damaged(objectKey('runs', name), `${m.message}; the run is left out`);
      else manifests.push(m);
    },
  );
  return manifests.sort((a, b) => Date.parse(a.started) - Date.parse(b.started) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Reads a document of runs/ or forgets/ that the catalog has not imported and refuses, naming
 * it, one that fails authentication (tampered, damaged or planted): it was not written with this
 * repository's keys, no sync or rebuild would import it ("rebuild first" would send the operator
 * round in circles), so `command` cannot go on without knowing it (`cannot`: what it cannot
 * tell). A document deleted meanwhile is no obstacle.
 */
export async function requireAuthentic(repo: Repository, dir: 'runs' | 'forgets', name: string, command: 'forget' | 'prune', cannot: string): Promise<void> {
  try {
    const doc = await repo.readDocument<RunManifest>(dir, name);
    if (dir === 'runs') checkManifest(doc, name, repo);
  } catch (err) {
    if (isNotFound(err)) return;
    if (!(err instanceof IntegrityError)) throw err;
    throw new IntegrityError(`${errorMessage(err)}; the catalog cannot import it, so ${command} cannot tell ${cannot}`, {
      hint: `restore that object from a copy of the repository, or delete it if lakeguard did not write it (\`lakeguard verify\` names every such object); then ${command} again`,
    });
  }
}

export function checkManifest(m: RunManifest, name: string, repo: Repository): RunManifest {
  const bad = (why: string): IntegrityError => new IntegrityError(`${repo.where('runs', name)}: not a valid run manifest (${why})`);
  if (m === null || typeof m !== 'object' || m.version !== 1) throw bad('not version 1');
  if (m.id !== name) throw bad(`it names run ${JSON.stringify(m.id)}`);
  if (typeof m.group !== 'string' || typeof m.host !== 'string') throw bad('group or host missing');
  if (Number.isNaN(Date.parse(m.started)) || Number.isNaN(Date.parse(m.finished))) throw bad('started or finished is not a time');
  if (!STATUSES.includes(m.status)) throw bad(`status ${JSON.stringify(m.status)}`);
  if (!Array.isArray(m.records) || !m.records.every((r) => typeof r === 'string' && HEX64.test(r))) throw bad('malformed record list');
  if (m.counters === null || typeof m.counters !== 'object') throw bad('counters missing');
  if (m.recordRanges !== undefined && !(Array.isArray(m.recordRanges) && m.recordRanges.length === m.records.length && m.recordRanges.every(isRecordRange))) {
    throw bad('malformed recordRanges');
  }
  if (m.recordLocations !== undefined && !(m.recordRanges !== undefined && Array.isArray(m.recordLocations) && m.recordLocations.length === m.records.length && m.recordLocations.every(isBlobLocation))) {
    throw bad('malformed recordLocations');
  }
  return m;
}

/**
 * Why a manifest's `shard` field cannot be used (null: absent or well-formed). A malformed one
 * costs the run-set membership, not the run: it is imported as an ordinary run and reported.
 */
export function shardProblem(s: Partial<RunShard> | null | undefined): string | null {
  if (s === undefined) return null;
  const bound = (b: unknown): boolean => b === undefined || (Array.isArray(b) && b.length === 2 && b.every((x) => typeof x === 'string'));
  if (s === null || typeof s !== 'object') return 'its shard field is not an object';
  if (typeof s.set !== 'string' || s.set === '' || typeof s.name !== 'string') return 'its shard field has no run set id or name';
  if (!Number.isInteger(s.of) || s.of! < 1 || !Number.isInteger(s.index) || s.index! < 0 || s.index! >= s.of!) return `its shard index ${String(s.index)} of ${String(s.of)} is out of range`;
  if (s.range === null || typeof s.range !== 'object' || !bound(s.range.after) || !bound(s.range.upTo)) return 'its shard range is malformed';
  return null;
}

// ---- helpers ------------------------------------------------------------------------------

function isRecordRange(r: unknown): boolean {
  const isBucketKey = (x: unknown): boolean => Array.isArray(x) && x.length === 2 && x.every((part) => typeof part === 'string');
  return r !== null && typeof r === 'object' && isBucketKey((r as RecordRange).first) && isBucketKey((r as RecordRange).last);
}

/** Whether `loc` has the form of a RecordedBlob: [pack id, pack size, offset, length, raw length, compressed 0|1]. */
export function isBlobLocation(loc: unknown): loc is RecordedBlob {
  if (!Array.isArray(loc) || loc.length !== 6 || typeof loc[0] !== 'string' || !HEX64.test(loc[0])) return false;
  const [, packSize, offset, length, rawLength, compressed] = loc as number[];
  const count = (n: number | undefined): boolean => Number.isSafeInteger(n) && n! >= 0;
  return count(packSize) && count(offset) && count(length) && count(rawLength) && (compressed === 0 || compressed === 1) && offset! + length! <= packSize!;
}

/** A damaged document's error, with the hint of what to do about it. */
export function damageHint(err: unknown, what: string): unknown {
  if (!(err instanceof IntegrityError)) return err;
  return new IntegrityError(err.message, {
    cause: err,
    hint: `${what} is damaged; restore it from a copy of the repository, or rebuild with --skip-damaged to leave out what it holds (reported, exit 1)`,
  });
}
