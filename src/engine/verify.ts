import { checkDrill } from './drill.js';
import { checkpointProblem } from './resume.js';
import { knownDrills, type DrillDocument } from '../catalog/drills.js';
import { randomInt } from 'node:crypto';
import pLimit from 'p-limit';
import type { Catalog } from '../catalog/catalog.js';
import { knownAckRuns, type AckDocument } from '../catalog/anomalies.js';
import { forgottenManifests, type ForgetDocument } from '../catalog/forget.js';
import { VerifyScratch, type AffectedVersion, type ExpectedBlob } from '../catalog/verify-scratch.js';
import { incompleteRuns } from '../catalog/sync.js';
import { danglingBlobReferences } from '../catalog/verify-queries.js';
import { IntegrityError, InterruptedError, StorageError, errorMessage, isNotFound } from '../errors.js';
import { sha256Hex } from '../repository/config.js';
import { objectKey, type FileType } from '../repository/layout.js';
import type { Repository } from '../repository/repository.js';
import { noEvents, type EventSink } from './events.js';
import type { IndexDocument, RunManifest } from './finalize.js';
import { anomaliesProblem, checkAck } from './import-anomalies.js';
import { checkIndex, staleManifestsNote } from './rebuild.js';
import { checkManifest } from './rebuild-manifests.js';
import { checkPlan, type RunSetPlan } from './shard-plan.js';

export interface VerifyOptions {
  repo: Repository;
  catalog: Catalog;
  /** Fraction of referenced packs to download and check (0: structure only, 1: everything). */
  readData: number;
  concurrency: number;
  events?: EventSink;
  /** SIGINT/SIGTERM: stops between objects (exit 130), so the lock is released and nothing is reported as checked that was not. */
  signal?: AbortSignal;
}

export interface Damage {
  /** The damaged repository object (`pack <id>`, `index/<name>`, `runs/<id>`, `forgets/<name>`, `keys/<name>`, `config`) or `catalog`. */
  what: string;
  problem: string;
  /** Runs it affects: their manifest or record blobs are lost, or versions they recorded cannot be restored. */
  runs: string[];
  /** Object versions that can no longer be restored, or that a catalog rebuild would lose (listed up to a limit). */
  affected: AffectedVersion[];
  affectedCount: number;
}

export interface VerifyReport {
  /** Packs an index file or the catalog refers to (each checked for presence and size). */
  packsChecked: number;
  packsRead: number;
  blobsRead: number;
  bytesRead: number;
  indexFiles: number;
  manifests: number;
  forgets: number;
  /** Acknowledgements (acks/) read. */
  acks: number;
  /** Run-set plans (runsets/) read. */
  runSets: number;
  /** Checkpoint documents of shard attempts (checkpoints/) read. */
  checkpoints: number;
  /** Restore drills (drills/) read. */
  drills: number;
  keyFiles: number;
  /** Packs nothing refers to (not damage: garbage of a killed writer that prune removes). */
  unreferencedPacks: { count: number; bytes: number; listed: { id: string; size: number }[] };
  /** Objects under packs/ that are not named like a pack. */
  strayObjects: string[];
  /** Observations that are not damage (e.g. the catalog is behind the repository). */
  notes: string[];
  damage: Damage[];
  durationMs: number;
}

/** Affected versions listed per damage (the count stays exact). */
const MAX_AFFECTED = 1000;
const MAX_LISTED = 100;

/**
 * Proves the repository is restorable and the catalog can be rebuilt from it. The structure
 * check lists config, keys/, packs/, index/, runs/, forgets/, acks/, runsets/ and checkpoints/ and reads every document
 * (index files, manifests, forget and ack documents are authenticated when opened): every pack an
 * index file or the catalog refers to exists with its recorded size, every index entry lies
 * within its pack, every manifest's record blobs and every blob a catalogued version needs
 * are indexed in an existing pack, and every run the catalog knows has its manifest. With
 * read-data, packs are downloaded and every blob in them (data and records) is authenticated,
 * decompressed and re-hashed against its id. Damage names the object, the runs and the
 * object versions it affects.
 */
export async function verify(opts: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const events = opts.events ?? noEvents;
  const { repo, catalog } = opts;
  const report: VerifyReport = {
    packsChecked: 0,
    packsRead: 0,
    blobsRead: 0,
    bytesRead: 0,
    indexFiles: 0,
    manifests: 0,
    forgets: 0,
    acks: 0,
    runSets: 0,
    checkpoints: 0,
    drills: 0,
    keyFiles: 0,
    unreferencedPacks: { count: 0, bytes: 0, listed: [] },
    strayObjects: [],
    notes: [],
    damage: [],
    durationMs: 0,
  };
  const scratch = new VerifyScratch(catalog);
  const limit = Math.max(1, Math.min(8, opts.concurrency));
  const stopIfAborted = (): void => {
    if (opts.signal?.aborted === true) throw new InterruptedError('verify interrupted: nothing was changed; run it again');
  };
  /** Checks each object of one type of the repository as the listing streams, until an interrupt. */
  const eachListed = (type: FileType, fn: (item: { name: string }) => Promise<void>): Promise<void> =>
    forEachLimited(repo.list(type), limit, async (item) => {
      stopIfAborted();
      await fn(item);
    });
  const damage = (what: string, problem: string, hashes: readonly Buffer[] = [], runs: readonly string[] = []): Damage => {
    const hit = scratch.affected(hashes, runs, MAX_AFFECTED);
    const d: Damage = { what, problem, runs: hit.runs, affected: hit.versions, affectedCount: hit.versionCount };
    report.damage.push(d);
    events({ type: 'warning', message: `${what}: ${problem}` });
    return d;
  };
  try {
    const dangling = danglingBlobReferences(catalog);
    if (dangling > 0) damage('catalog', `${dangling} blob references point to no pack`);
    // Runs a sync imported without part of their data (every sync warns about them and sends
    // the operator here): the versions they lack are missing from every answer of this catalog.
    for (const r of incompleteRuns(catalog)) {
      if (r.keptBy !== undefined) {
        damage('catalog', `lacks the versions only run ${r.run}'s manifest holds: forget ${r.keptBy} kept it for kept runs, and the repository lacked it when this catalog applied that forget; restore ${objectKey('runs', r.run)} from a copy of the repository, then \`lakeguard catalog rebuild\``);
        continue;
      }
      damage('catalog', `run ${r.run} was imported incomplete (${r.versions} object versions whose blobs are in no index file, ${r.recordBlobs} unreadable record blobs): answers here lack what they recorded; \`lakeguard verify --read-data\` names damaged packs, \`lakeguard catalog rebuild\` imports again what is readable`, [], [r.run]);
    }

    events({ type: 'phase', phase: 'check config and keys' });
    try {
      await repo.checkConfig();
    } catch (err) {
      if (!isDamage(err)) throw err;
      damage('config', errorMessage(err));
    }
    await eachListed('keys', async ({ name }) => {
      report.keyFiles++;
      try {
        await repo.checkKeyFile(name);
      } catch (err) {
        if (!isDamage(err)) throw err;
        damage(objectKey('keys', name), `${errorMessage(err)}; the password it holds cannot open the repository`);
      }
    });

    // Listed in the order a writer writes backwards (manifests, then index files, then packs):
    // whatever a listed manifest refers to was written before it, so it is in the later listings
    // even while a backup runs.
    events({ type: 'phase', phase: 'read runs' });
    const unreadableRuns: { name: string; problem: string }[] = [];
    const unreadableVerdicts: { name: string; problem: string }[] = [];
    const forgottenRuns = forgottenManifests(catalog);
    const stale: [string, string][] = [];
    const givenUpBack: string[] = [];
    await eachListed('runs', async ({ name }) => {
      report.manifests++;
      const forgotten = forgottenRuns.get(name);
      if (forgotten?.state === 'given-up') givenUpBack.push(name);
      if (forgotten?.state === 'deleted') {
        // Not read: no rebuild or sync imports it, and its records may be pruned (rebuild.ts).
        scratch.addManifest(name, []);
        stale.push([name, forgotten.forget]);
        return;
      }
      try {
        const m = checkManifest(await repo.readDocument<RunManifest>('runs', name), name, repo);
        scratch.addManifest(name, m.records);
        const verdict = anomaliesProblem(m.anomalies);
        if (verdict !== null) unreadableVerdicts.push({ name, problem: verdict });
      } catch (err) {
        if (!isDamage(err)) throw err;
        scratch.addManifest(name, null);
        unreadableRuns.push({ name, problem: errorMessage(err) });
      }
    });
    const staleNote = staleManifestsNote(stale.sort((a, b) => a[0].localeCompare(b[0])));
    if (staleNote !== null) report.notes.push(staleNote);
    for (const run of givenUpBack.sort()) {
      damage('catalog', `lacks the versions only run ${run}'s manifest holds (\`catalog rebuild --accept-damage\` gave them up while it was missing), and ${objectKey('runs', run)} is back in the repository: run \`lakeguard catalog rebuild\` to import them`);
    }
    for (const r of unreadableRuns) damage(objectKey('runs', r.name), `${r.problem}; a catalog rebuild would lose the run and the versions it recorded`, [], [r.name]);
    for (const r of unreadableVerdicts) damage(objectKey('runs', r.name), `${r.problem}; a catalog rebuild would import the run without its anomaly verdict`, [], [r.name]);

    events({ type: 'phase', phase: 'read forgets' });
    const listedForgets = new Set<string>();
    await eachListed('forgets', async ({ name }) => {
      report.forgets++;
      listedForgets.add(name);
      try {
        await repo.readDocument<ForgetDocument>('forgets', name);
      } catch (err) {
        if (!isDamage(err)) throw err;
        damage(objectKey('forgets', name), `${errorMessage(err)}; a catalog rebuild would keep the runs and versions it removed`);
      }
    });

    // Nothing deletes a forget or prune document: one the catalog applied that is gone was deleted
    // (or hidden under a delete marker) by someone else.
    for (const name of [...catalog.knownForgets()].filter((n) => !listedForgets.has(n)).sort()) {
      const consequence = name.endsWith('-prune')
        ? 'catalogs that have not applied it still locate blobs in the packs it deleted (`lakeguard catalog rebuild` there)'
        : 'a catalog rebuild would bring back the runs and versions it removed';
      damage(objectKey('forgets', name), `missing from the repository (the catalog applied it); ${consequence}; restore it from a copy of the repository`);
    }

    events({ type: 'phase', phase: 'read acks' });
    const listedAcks = new Set<string>();
    await eachListed('acks', async ({ name }) => {
      report.acks++;
      listedAcks.add(name);
      try {
        checkAck(await repo.readDocument<AckDocument>('acks', name), name, repo);
      } catch (err) {
        if (!isDamage(err)) throw err;
        damage(objectKey('acks', name), `${errorMessage(err)}; a catalog rebuild would show the run it acknowledges as suspect`);
      }
    });

    for (const [name, run] of [...knownAckRuns(catalog)].filter(([n]) => !listedAcks.has(n)).sort()) {
      damage(objectKey('acks', name), `missing from the repository (the catalog holds it); a catalog rebuild would show run ${run} as unacknowledged; restore it from a copy of the repository`);
    }

    events({ type: 'phase', phase: 'read drills' });
    const listedDrills = new Set<string>();
    await eachListed('drills', async ({ name }) => {
      report.drills++;
      listedDrills.add(name);
      try {
        checkDrill(await repo.readDocument<DrillDocument>('drills', name), name, repo);
      } catch (err) {
        if (!isDamage(err)) throw err;
        damage(objectKey('drills', name), `${errorMessage(err)}; the drill it records is not shown`);
      }
    });

    // Nothing deletes a drill record either: one that is gone no longer tells a rebuilt catalog (or
    // monitoring fed by one) that the drill ran, or that it failed.
    for (const name of [...knownDrills(catalog)].filter((n) => !listedDrills.has(n)).sort()) {
      damage(objectKey('drills', name), 'missing from the repository (the catalog holds it); a catalog rebuild would not show the drill; restore it from a copy of the repository');
    }

    // A plan is read only by shards that start while their run set is running; the runs and
    // versions of a finished set do not depend on it.
    events({ type: 'phase', phase: 'read run sets' });
    await eachListed('runsets', async ({ name }) => {
      report.runSets++;
      try {
        checkPlan(await repo.readDocument<RunSetPlan>('runsets', name), name, repo);
      } catch (err) {
        if (!isDamage(err)) throw err;
        damage(objectKey('runsets', name), `${errorMessage(err)}; a shard of this run set started now would stop (its finished shards' runs are not affected)`);
      }
    });

    // A checkpoint is read only by a later attempt of its shard (resume.ts), which carries only
    // versions whose blobs an index file lists; one that fails here is passed over by it.
    events({ type: 'phase', phase: 'read checkpoints' });
    await eachListed('checkpoints', async ({ name }) => {
      report.checkpoints++;
      try {
        const problem = checkpointProblem(await repo.readDocument<unknown>('checkpoints', name), name);
        if (problem !== null) throw new IntegrityError(`${repo.where('checkpoints', name)}: ${problem}`);
      } catch (err) {
        if (!isDamage(err)) throw err;
        damage(objectKey('checkpoints', name), `${errorMessage(err)}; a re-run of its shard does not resume from it (it reads and stores those objects again); delete it`);
      }
    });

    events({ type: 'phase', phase: 'read index' });
    const unreadableIndex = new Map<string, Damage>();
    await eachListed('index', async ({ name }) => {
      report.indexFiles++;
      try {
        const doc = checkIndex(await repo.readDocument<IndexDocument>('index', name), name, repo);
        scratch.addIndexFile(name, doc.packs);
      } catch (err) {
        if (!isDamage(err)) throw err;
        scratch.addIndexFile(name, null);
        unreadableIndex.set(name, damage(objectKey('index', name), errorMessage(err)));
      }
    });

    for (const key of (await repo.strangers()).slice(0, MAX_LISTED)) report.notes.push(`${key} is not part of the repository format (nothing reads it; lakeguard did not write it)`);

    // Packs in the repository, by name and size (one listing, kept in the catalog's temp tables).
    events({ type: 'phase', phase: 'list packs' });
    let batch: { id: string; size: number }[] = [];
    for await (const item of repo.listPacks()) {
      if ('stray' in item) {
        if (report.strayObjects.length < MAX_LISTED) report.strayObjects.push(item.stray);
        continue;
      }
      batch.push(item);
      if (batch.length >= 5000) {
        scratch.addPresentPacks(batch);
        batch = [];
      }
    }
    scratch.addPresentPacks(batch);

    stopIfAborted();
    events({ type: 'phase', phase: 'check structure' });
    checkStructure(catalog, scratch, report, damage, unreadableIndex);

    const packs = scratch.packsToRead();
    report.packsChecked += packs.length;
    const toRead = sample(packs, opts.readData);
    const reads = pLimit(limit);
    let done = 0;
    // The first failure (or an interruption) stops the reads not yet started, and those in
    // flight end before the scratch table closes.
    let failure: { err: unknown } | undefined;
    await Promise.all(
      toRead.map((pack) =>
        reads(async () => {
          if (failure !== undefined) return;
          try {
            stopIfAborted();
            const expected = scratch.expectedBlobs(pack.name);
            const problems: string[] = [];
            const bad = await readPack(opts, pack.name, expected, problems, report);
            if (problems.length > 0) damage(`pack ${pack.name}`, problems.join('; '), bad);
            events({ type: 'progress', phase: 'read packs', done: ++done, total: toRead.length, bytes: report.bytesRead, failed: report.damage.length });
          } catch (err) {
            failure ??= { err };
          }
        }),
      ),
    );
    if (failure !== undefined) throw failure.err;
  } finally {
    scratch.close();
  }
  report.durationMs = Date.now() - started;
  return report;
}

/** The comparisons that need no pack data: presence, sizes, bounds, reachability, manifests. */
function checkStructure(
  catalog: Catalog,
  scratch: VerifyScratch,
  report: VerifyReport,
  damage: (what: string, problem: string, hashes?: readonly Buffer[], runs?: readonly string[]) => Damage,
  unreadableIndex: Map<string, Damage>,
): void {
  const hashesOf = (blobs: readonly ExpectedBlob[]): Buffer[] => blobs.map((b) => b.hash);
  for (const m of scratch.missingPacks()) {
    report.packsChecked++;
    const by = [...m.listedBy.map((f) => objectKey('index', f)), ...(m.inCatalog ? ['the catalog'] : [])];
    damage(`pack ${m.pack}`, `missing from the repository (listed by ${by.join(', ')})`, hashesOf(scratch.expectedBlobs(m.pack)));
  }
  const wrongSize = new Map<string, { size: number; by: string[] }>();
  for (const s of scratch.sizeMismatches()) {
    const entry = wrongSize.get(s.pack) ?? { size: s.size, by: [] };
    entry.by.push(`${s.indexFile === null ? 'the catalog' : objectKey('index', s.indexFile)} recorded ${s.expected}`);
    wrongSize.set(s.pack, entry);
  }
  for (const [pack, s] of wrongSize) {
    // Blobs past the end cannot be read; the rest may still be (read-data tells).
    const cut = scratch.expectedBlobs(pack).filter((b) => b.offset + b.length > s.size - 4);
    damage(`pack ${pack}`, `size is ${s.size} bytes, ${s.by.join(', ')}`, hashesOf(cut));
  }
  for (const o of scratch.entriesOutOfBounds()) {
    if (wrongSize.has(o.pack)) continue;
    damage(objectKey('index', o.file), `${o.count} entries of pack ${o.pack} lie outside the pack (the index file is inconsistent)`);
  }

  // Blobs the catalog takes as indexed are never listed again by a backup: unmark the ones whose
  // pack exists, so the next backup or prune writes them into a new index file.
  const unmark = (fixable: readonly Buffer[], of: number): string => {
    if (fixable.length === 0) return '';
    catalog.markUnindexed(fixable);
    return `; the next backup or prune writes ${fixable.length === of ? 'them' : `the ${fixable.length} of them whose pack exists`} into a new index file`;
  };
  const reindex = (hashes: readonly Buffer[]): string => unmark(scratch.reindexable(hashes), hashes.length);
  const listed = new Set<string>();
  const gone = scratch.catalogIndexFilesGone();
  for (const group of scratch.unindexedCatalogBlobs()) {
    const n = group.hashes.length;
    // The catalog takes these blobs as indexed, so no backup would list them again: unmark the
    // ones whose pack exists, and the next backup or prune writes them into a new index file.
    const fixable = scratch.reindexable(group.hashes);
    const repair = unmark(fixable, n);
    const lost = `a catalog rebuild would leave out the versions that need them${repair}`;
    if (group.indexFile === null) {
      // Left by a backup stopped before its index file, or unmarked by an earlier verify (below).
      damage('catalog', `${n} blobs catalogued versions need are in no index file of the repository (a backup stopped before writing one, or one that listed them is gone); ${lost}`, group.hashes);
      continue;
    }
    listed.add(group.indexFile);
    const unreadable = unreadableIndex.get(group.indexFile);
    if (unreadable !== undefined) {
      const hit = scratch.affected(group.hashes, [], MAX_AFFECTED);
      unreadable.problem += `; ${n} blobs catalogued versions need are in no other index file (${lost})`;
      unreadable.runs = [...new Set([...unreadable.runs, ...hit.runs])].sort();
      unreadable.affected = hit.versions;
      unreadable.affectedCount = hit.versionCount;
    } else if (gone.includes(group.indexFile)) {
      damage(objectKey('index', group.indexFile), `missing from the repository (the catalog read it); ${n} blobs it listed are in no other index file; ${lost}`, group.hashes);
      // Its blobs wait for a new index file now: the catalog no longer counts it as read, so the
      // next verify names what is left of this (the blobs still unindexed) and not the file again.
      if (fixable.length === n) catalog.forgetIndexFile(group.indexFile);
    } else {
      damage(objectKey('index', group.indexFile), `does not list ${n} blobs the catalog read from it; ${lost}`, group.hashes);
    }
  }
  for (const name of gone) {
    if (!listed.has(name)) report.notes.push(`${objectKey('index', name)}, which the catalog read, is gone, but every blob it listed is in another index file (a prune elsewhere?)`);
  }

  const records = new Map<string, string[]>();
  for (const r of scratch.unreachableRecords()) {
    const list = records.get(r.run) ?? [];
    list.push(r.pack === null ? `record blob ${r.hash.toString('hex')} is in no index file${reindex([r.hash])}` : `record blob ${r.hash.toString('hex')} is in pack ${r.pack}, which is missing`);
    records.set(r.run, list);
  }
  for (const [run, problems] of records) {
    damage(objectKey('runs', run), `${problems.join('; ')}; a catalog rebuild would lose the versions the run recorded`, [], [run]);
  }
  for (const run of scratch.runsWithoutManifest()) {
    // A run of this host whose manifest the repository refused (docs/catalog.md "Runs without a
    // manifest") was never stored: nothing was lost from the repository, and the next backup records it.
    const row = catalog.findRun(run);
    const refused = row === undefined ? undefined : catalog.unrecordedError(row.seq);
    const problem =
      refused === undefined
        ? `missing from the repository (the catalog knows run ${run})`
        : `never stored: the repository refused the ${row!.status} run ${run} (${refused}); the next \`lakeguard backup\` on ${row!.host === null ? 'the host that ran it' : `host ${row!.host}`} records it`;
    damage(objectKey('runs', run), `${problem}; a catalog rebuild would lose the run and the versions it recorded`, [], [run]);
  }
  for (const { run, forget } of scratch.keptManifestsMissing()) {
    damage(
      objectKey('runs', run),
      `missing from the repository: forget ${forget} forgot run ${run} but kept its manifest, whose records hold versions kept runs still need; a catalog rebuild would lose them; restore it from a copy of the repository`,
    );
  }
  report.unreferencedPacks = scratch.unreferencedPacks(MAX_LISTED);
}

/** Downloads a pack and checks it end to end; returns the ids of blobs that are unreadable. */
async function readPack(opts: VerifyOptions, name: string, expected: readonly ExpectedBlob[], problems: string[], report: VerifyReport): Promise<Buffer[]> {
  let body: Buffer;
  try {
    body = await opts.repo.readPack(name);
  } catch (err) {
    if (!isDamage(err)) throw err;
    problems.push(`cannot be read: ${errorMessage(err)}`);
    return expected.map((b) => b.hash);
  }
  report.packsRead++;
  report.bytesRead += body.length;
  if (sha256Hex(body) !== name) problems.push('content does not match its name (corrupted)');
  let entries: ReturnType<Repository['readPackHeader']>['entries'];
  try {
    entries = opts.repo.readPackHeader(body, name).entries;
  } catch (err) {
    if (!(err instanceof IntegrityError)) throw err;
    problems.push(errorMessage(err));
    return expected.map((b) => b.hash);
  }
  // Every blob the header lists is authenticated: data blobs, and the record blobs a rebuild needs.
  const bad: Buffer[] = [];
  const inHeader = new Set<string>();
  for (const e of entries) {
    report.blobsRead++;
    inHeader.add(`${e.id.toString('hex')}:${e.offset}:${e.length}`);
    try {
      opts.repo.decodeBlob(body.subarray(e.offset, e.offset + e.length), e, `pack ${name}`);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      bad.push(e.id);
    }
  }
  if (bad.length > 0) problems.push(`${bad.length} of ${entries.length} blobs failed authentication or their hash check`);
  const absent = expected.filter((b) => !inHeader.has(`${b.hash.toString('hex')}:${b.offset}:${b.length}`));
  if (absent.length > 0) problems.push(`${absent.length} blobs that index files or the catalog place in it are not in its header at that offset`);
  return [...bad, ...absent.map((b) => b.hash)];
}

/** Damage to report (a missing or unreadable object); anything else (network, permissions) stops verify. */
function isDamage(err: unknown): boolean {
  return err instanceof IntegrityError || isNotFound(err) || (err instanceof StorageError && err.code === 'NotFound');
}

/** Runs `fn` over a listing as it streams, with at most `limit` calls in flight. */
async function forEachLimited<T>(items: AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let failure: unknown = null;
  for await (const item of items) {
    if (failure !== null) break;
    const p = fn(item).then(
      () => void inFlight.delete(p),
      (err: unknown) => {
        inFlight.delete(p);
        failure ??= err;
      },
    );
    inFlight.add(p);
    if (inFlight.size >= limit) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (failure !== null) throw failure;
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
