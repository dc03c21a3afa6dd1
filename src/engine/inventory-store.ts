/**
 * Listing a source from its newest S3 Inventory report instead of LIST (docs/scale-out.md
 * "Listing from S3 Inventory"). The report's rows inside the run's key range are loaded into a
 * scratch table (src/catalog/inventory-listing.ts); an InventoryStore wraps the source's store
 * and answers `list` from that table, in S3 key order, with the same prefix, delimiter,
 * startAfter and versions semantics as S3, so the scan and its merge-join with the catalog work
 * unchanged. Everything else (GET, HEAD, tags, versioning) goes to the real bucket.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import { InventoryListing, type InventoryListingRow } from '../catalog/inventory-listing.js';
import type { LatestVersion, RunCounters } from '../catalog/types.js';
import { latestPage, recordSeenAt, sampleLiveKeys } from '../catalog/backup-lookups.js';
import { LakeguardError, StorageError, isNotFound } from '../errors.js';
import { S3Store } from '../storage/s3-store.js';
import { StoreDecorator } from '../storage/store-decorator.js';
import type { ListItem, ListOptions, ObjectEntry, ObjectMeta, ObjectStore, RequestStats } from '../storage/types.js';
import { compareKeys, prefixUpperBound } from '../util/key-order.js';
import { formatDuration } from '../util/format.js';
import { inventoryRows, type InventoryReadStats } from './inventory-files.js';
import { inventoryLocation, newestInventoryReport, type InventoryReport } from './inventory-report.js';
import type { KeyRange } from './scan.js';
import { intersectKeyRange } from './shards.js';
import { definedOnly, outermostPrefixes, type OpenedSource, type SourceInventory } from './sources.js';

const PAGE = 1000;
/** A range no key lies in: a shard whose range holds no key of the bucket. */
const NO_KEYS: KeyRange = { after: '\u{10FFFF}', upTo: '' };

/** A source's store whose listings come from an inventory report; the rest passes to the bucket. */
export class InventoryStore extends StoreDecorator {
  constructor(
    inner: ObjectStore,
    private readonly listing: InventoryListing,
    readonly report: InventoryReport,
    /** The destination bucket's store: its requests are this source's too (the run counts them). */
    private readonly reportStore: ObjectStore,
  ) {
    super(inner);
  }

  override get stats(): RequestStats {
    const a = this.inner.stats;
    const b = this.reportStore.stats;
    return {
      list: a.list + b.list,
      get: a.get + b.get,
      head: a.head + b.head,
      put: a.put + b.put,
      delete: a.delete + b.delete,
      bytesIn: a.bytesIn + b.bytesIn,
      bytesOut: a.bytesOut + b.bytesOut,
    };
  }

  override list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListItem> {
    return listRows(this.listing, prefix, opts, this.report);
  }

  /** The first and last key the report lists under `prefix` (inside the loaded range), null when none. */
  keyBounds(prefix: string): { first: string; last: string } | null {
    return this.listing.keyBounds(prefix, prefixUpperBound(prefix));
  }

  /** The report's current row of `key` (an object or a delete marker), undefined when it lists none. */
  current(key: string): InventoryListingRow | undefined {
    return this.listing.current(key);
  }

  /** Whether the report has a row for this version of `key`, current or not. */
  listsVersion(key: string, versionId: string | null): boolean {
    return this.listing.listsVersion(key, versionId);
  }

  /** Every `step`-th current key of the report (inside the loaded range), in key order: for planning shard boundaries. */
  sampleKeys(step: number): string[] {
    return this.listing.sampleKeys(step);
  }

  close(): void {
    this.listing.close();
  }
}

/**
 * A listing of `prefix` from the table, as S3 would list it (ListObjectsV2, or ListObjectVersions
 * with `versions`): each key (each version) once. S3 Inventory lists every object once; a row
 * repeated as it is (a data file named twice by its manifest) is listed once, and a key the
 * report lists twice as different objects is refused: listed twice, the scan would take the
 * second row for a new object and record a rewrite that never happened.
 */
async function* listRows(listing: InventoryListing, prefix: string, opts: ListOptions, report: InventoryReport): AsyncGenerator<ListItem> {
  const current = opts.versions !== true;
  let previous: InventoryListingRow | undefined;
  const below = prefixUpperBound(prefix);
  const after = opts.startAfter !== undefined && compareKeys(opts.startAfter, prefix) >= 0 ? opts.startAfter : undefined;
  let from = after ?? prefix;
  let exclusive = after !== undefined;
  let limit = PAGE;
  for (;;) {
    opts.signal?.throwIfAborted();
    const page = listing.page(from, exclusive, below, current, limit);
    if (page.length === 0) return;
    // A full page may end inside one key's versions: leave that key to the next page, whole.
    const last = page.at(-1)!.key;
    const full = page.length === limit;
    const rows = full ? page.filter((r) => r.key !== last) : page;
    if (rows.length === 0) {
      limit *= 2; // one key with more versions than a page
      continue;
    }
    limit = PAGE;
    let jumped = false;
    for (const row of rows) {
      const cut = opts.delimiter ? row.key.indexOf(opts.delimiter, prefix.length) : -1;
      if (cut !== -1) {
        const sub = row.key.slice(0, cut + opts.delimiter!.length);
        if (after === undefined || compareKeys(sub, after) > 0) yield { kind: 'prefix', prefix: sub };
        // Everything under the sub-prefix is rolled up in it: go on after it.
        from = prefixUpperBound(sub)!;
        exclusive = false;
        jumped = true;
        break;
      }
      if (previous !== undefined && previous.key === row.key && (current || previous.versionId === row.versionId)) {
        if (sameRow(previous, row)) continue;
        throw new LakeguardError(`S3 Inventory report ${report.location} lists ${current ? 'key' : `version ${row.versionId ?? 'null'} of`} ${JSON.stringify(row.key)} twice, as two different objects, which S3 Inventory never does`, {
          hint: 'the report is damaged or was not written by S3 Inventory (docs/scale-out.md "What a report is trusted for"); run the backup again when the next report arrives, or remove the inventory: line to list the bucket',
        });
      }
      previous = row;
      yield entryOf(row, current);
    }
    if (jumped) continue;
    if (!full) return;
    from = rows.at(-1)!.key;
    exclusive = true;
  }
}

function sameRow(a: InventoryListingRow, b: InventoryListingRow): boolean {
  return a.versionId === b.versionId && a.isLatest === b.isLatest && a.isDeleteMarker === b.isDeleteMarker && a.size === b.size && a.etag === b.etag && a.lastModified === b.lastModified;
}

function entryOf(row: InventoryListingRow, current: boolean): ObjectEntry {
  return {
    kind: 'object',
    key: row.key,
    size: row.size,
    etag: row.etag,
    lastModified: new Date(row.lastModified),
    // ListObjectsV2 names no versions; ListObjectVersions does ("null" as null).
    versionId: current ? null : row.versionId,
    isLatest: row.isLatest,
    isDeleteMarker: row.isDeleteMarker,
    ...(row.storageClass === undefined ? {} : { storageClass: row.storageClass }),
  };
}

/**
 * Loads the newest report of `source.inventory` (rows inside `range` only) into a scratch table
 * in `scratchDir`, and returns the source's store wrapped to list from it.
 */
export async function openInventoryStore(
  inner: ObjectStore,
  bucket: string,
  inventory: SourceInventory,
  opts: {
    scratchDir: string;
    range?: KeyRange;
    signal?: AbortSignal;
    readStats?: InventoryReadStats;
    reportStore?: ObjectStore;
    /** Called with the report before any data file is read: throws to refuse it. */
    accept?: (report: InventoryReport) => void;
  },
): Promise<InventoryStore> {
  const at = inventoryLocation(inventory.url);
  const reportStore = opts.reportStore ?? new S3Store({ bucket: at.bucket, ...definedOnly({ endpoint: inventory.endpoint, region: inventory.region, credentials: inventory.credentials, profile: inventory.profile }) });
  const report = await newestInventoryReport(reportStore, at, bucket, opts.signal);
  opts.accept?.(report);
  const dir = mkdtempSync(join(opts.scratchDir, 'inventory-'));
  const listing = new InventoryListing(join(dir, 'listing.db'));
  try {
    await loadReport(listing, reportStore, report, { spoolDir: dir, ...definedOnly({ range: opts.range, signal: opts.signal, stats: opts.readStats }) });
  } catch (err) {
    listing.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const store = new InventoryStore(inner, listing, report, reportStore);
  const close = store.close.bind(store);
  store.close = () => {
    close();
    rmSync(dir, { recursive: true, force: true });
  };
  return store;
}

/** Loads a report's rows (inside the range) into the listing and indexes them. */
export async function loadReport(
  listing: InventoryListing,
  reportStore: ObjectStore,
  report: InventoryReport,
  opts: { spoolDir: string; range?: KeyRange; signal?: AbortSignal; stats?: InventoryReadStats },
): Promise<void> {
  for await (const row of inventoryRows(reportStore, report, opts)) listing.add(row);
  listing.finishLoad();
}

/** The sources of one run listed from inventory reports; `close` removes their scratch files. */
export interface InventorySources {
  /** Bucket -> the report its listing came from. */
  reports: Map<string, InventoryReport>;
  close(): void;
}

/**
 * Wraps every source with `inventory:` in an InventoryStore (in place), after checking that its
 * newest report is not older than what the catalog already knows of the bucket, and notes each
 * report's time in the run's counters (`inventory`: bucket -> creationTimestamp).
 */
export async function listFromInventories(
  sources: OpenedSource[],
  opts: {
    catalog: Catalog;
    group: string;
    counters: RunCounters;
    /** A shard's key range in each bucket (null: none of its keys); default: every key. */
    range?: (bucket: string) => KeyRange | null;
    signal?: AbortSignal;
    /** The destination bucket's store (tests); by default opened from the inventory URL. */
    reportStore?: ObjectStore;
    /** Says what the run cannot know: a report that lists no key under a policy prefix. */
    warn?: (message: string) => void;
    /** S3 Inventory's lag (newerThanReport); default REPORT_LAG_MS. */
    lagMs?: number;
  },
): Promise<InventorySources> {
  const opened: InventoryStore[] = [];
  const reports = new Map<string, InventoryReport>();
  const close = (): void => {
    for (const store of opened) store.close();
  };
  try {
    for (const source of sources) {
      if (source.inventory === undefined) continue;
      const range = opts.range === undefined ? {} : opts.range(source.bucket);
      const store = await openInventoryStore(source.objectStore, source.bucket, source.inventory, {
        scratchDir: scratchDirOf(opts.catalog),
        range: range ?? NO_KEYS,
        // Refused before any data file is read.
        accept: (report) => {
          refuseStaleReport(opts.catalog, opts.group, source.bucket, report);
          warnOldReport(source.bucket, report, opts.warn);
          if (source.versioned && !report.allVersions) {
            throw new LakeguardError(`bucket ${source.bucket} keeps versions but its S3 Inventory report ${report.location} lists current versions only`, {
              hint: 'set the inventory configuration to include all versions ("IncludedObjectVersions": "All"), or remove the inventory: line to list the bucket',
            });
          }
        },
        ...definedOnly({ signal: opts.signal, reportStore: opts.reportStore }),
      });
      opened.push(store);
      // Keys the catalog saw after the report (less its lag) are kept by the merge-join whatever
      // the report says (newerThanReport): their absence proves nothing.
      const lagMs = opts.lagMs ?? REPORT_LAG_MS;
      const kept = newerThanReport(opts.catalog, source.bucket, store.report.created, lagMs);
      await refuseUncoveredKeys(opts.catalog, source, store, range ?? NO_KEYS, kept, lagMs, { whole: opts.range === undefined, ...definedOnly({ signal: opts.signal, warn: opts.warn }) });
      await refuseContradictedKeys(opts.catalog, source, store, range ?? NO_KEYS, kept, lagMs, opts.signal);
      source.objectStore = store;
      reports.set(source.bucket, store.report);
      opts.counters.inventory = { ...opts.counters.inventory, [source.bucket]: store.report.created.toISOString() };
    }
  } catch (err) {
    close();
    throw err;
  }
  return { reports, close };
}

/** Older than a weekly report and a day of delivery: its delivery has likely stopped. */
export const OLD_REPORT_MS = 8 * 86_400_000;

/**
 * Says when the newest report is older than S3 delivers them (daily or weekly): a configuration
 * deleted or a destination no longer writable stops delivery, and every run would then list the
 * same old report, back up none of what was written since, and exit 0.
 */
function warnOldReport(bucket: string, report: InventoryReport, warn: ((message: string) => void) | undefined): void {
  const age = Date.now() - report.created.getTime();
  if (age <= OLD_REPORT_MS) return;
  warn?.(
    `the newest S3 Inventory report of bucket ${bucket} (${report.location}) was made ${formatDuration(age)} ago, at ${report.created.toISOString()}: objects written since are not in this run; S3 delivers reports daily or weekly, so check the bucket's inventory configuration and its destination, or remove inventory: to list the bucket`,
  );
}

/** How many of the catalog's live keys outside a report's keys are looked up, per policy prefix and side. */
const COVERAGE_PROBES = 3;
/** How many catalogued keys (deleted ones included) are walked looking for them, per side. */
const COVERAGE_WALK = 10_000;
/**
 * S3 Inventory is eventually consistent: a report may miss a write or a deletion made shortly
 * before it began. The catalog's knowledge of a key from this long before a report on is not
 * contradicted by it (newerThanReport), and only an object last modified this long before the
 * report proves the report wrong (refuseUncoveredKeys, refuseContradictedKeys).
 */
export const REPORT_LAG_MS = 60 * 60 * 1000;

/**
 * Whether the catalog's newest record of a key in `bucket` is knowledge the report (made at
 * `created`) may not contradict: the catalog saw that state at or after `created - lagMs`.
 * When it saw it: the time the run that wrote the record listed the bucket (its start; for a
 * run listed from a report, that report's time: recordSeenAt), or the version's own
 * last-modified time when later (a long LIST run reaches keys written after it began). Not
 * the record's valid_from: a deletion a run found in an older report is valid from that run's
 * time, which is not when it was seen. Only records that could matter are looked up (a key
 * missing from the report, or listed differently from the catalog), each run once.
 */
export function newerThanReport(catalog: Catalog, bucket: string, created: Date, lagMs = REPORT_LAG_MS): (latest: LatestVersion) => boolean {
  const cut = created.getTime() - lagMs;
  const runs = new Map<number, number>();
  return (latest) => {
    if (!latest.deleteMarker && latest.lastModified >= cut) return true;
    const seen = recordSeenAt(catalog, bucket, latest.versionRow, runs);
    return seen !== undefined && seen >= cut;
  };
}

/**
 * A report that does not cover a prefix the policy backs up (an inventory configuration whose
 * filter names another prefix, or another configuration's report) would make the merge-join
 * record every catalogued key outside it deleted, and a seed back up nothing, both exiting 0. A
 * configuration filters by one prefix, so the keys a report can list are contiguous in key
 * order: under each policy prefix (inside the run's range), the catalog's live keys before the
 * report's first key and after its last (all of them, when it lists none there) are what it
 * would call deleted. Up to COVERAGE_PROBES of them on each side are looked up in the bucket
 * (HEAD, which `s3:GetObject` allows): one that exists, last modified an hour or more before the
 * report was made, is missing from the report, and the run is refused before it begins. Keys deleted since
 * (a compaction) are not found, and the run goes on. A prefix the catalog knows no key of
 * cannot be checked: a run over the whole key space says so when the report lists none there.
 */
async function refuseUncoveredKeys(
  catalog: Catalog,
  source: OpenedSource,
  store: InventoryStore,
  range: KeyRange,
  kept: (latest: LatestVersion) => boolean,
  lagMs: number,
  opts: { whole: boolean; signal?: AbortSignal; warn?: (message: string) => void },
): Promise<void> {
  const report = store.report;
  for (const prefix of outermostPrefixes(source.prefixes)) {
    const within = intersectKeyRange(range, prefix);
    if (within === null) continue;
    const listed = store.keyBounds(prefix);
    const start = within.after === undefined ? { key: prefix, inclusive: true } : { key: within.after, inclusive: false };
    const beyond = (key: string): boolean => within.upTo !== undefined && compareKeys(key, within.upTo) > 0;
    // Before the report's first key, and after its last: or everywhere, when it lists none here.
    const walks =
      listed === null
        ? [{ from: start, stop: beyond }]
        : [
            { from: start, stop: (key: string) => compareKeys(key, listed.first) >= 0 || beyond(key) },
            { from: compareKeys(start.key, listed.last) > 0 ? start : { key: listed.last, inclusive: false }, stop: beyond },
          ];
    let known = false;
    for (const walk of walks) {
      const found = liveKeysIn(catalog, source, prefix, walk.from, walk.stop);
      known ||= found.known;
      for (const key of found.rows.filter((row) => !kept(row)).map((row) => row.key)) {
        const meta = await headOrNull(store, key, opts.signal);
        if (meta === null || meta.lastModified.getTime() >= report.created.getTime() - lagMs) continue;
        throw new LakeguardError(
          `S3 Inventory report ${report.location} does not list s3://${source.bucket}/${key}, which the bucket holds (last modified ${meta.lastModified.toISOString()}, well before the report): it does not cover prefix ${JSON.stringify(prefix)} of the policy, and this run would record such keys deleted`,
          {
            hint: `point inventory: at a configuration whose filter prefix covers every prefix this source backs up (${outermostPrefixes(source.prefixes)
              .map((p) => JSON.stringify(p))
              .join(', ')}), or remove the inventory: line to list the bucket`,
          },
        );
      }
    }
    if (listed === null && !known && opts.whole) {
      opts.warn?.(
        `S3 Inventory report ${report.location} lists no key under s3://${source.bucket}/${prefix}: nothing there is backed up; if the bucket holds keys there, the report's inventory configuration does not cover them (a filter prefix?)`,
      );
    }
  }
}

/** How many of the catalog's live keys are checked against a report and the bucket (spread over the catalog: sampleLiveKeys). */
const SPOT_CHECKS = 64;

/**
 * A report that leaves out live objects inside the span it covers would make the merge-join
 * record them deleted (the coverage check sees only its ends), and one that lists objects as
 * they were before a change would make it miss the change. So SPOT_CHECKS of the catalog's live
 * keys (inside the run's range and the policy's prefixes, not excluded, not `kept`: a key the
 * catalog saw after the report, less its lag, stands whatever the report says), spread over the
 * catalog, are looked up in the bucket with HEAD. An object last modified an hour or more before
 * the report was made is as S3 Inventory listed it; the run is refused before it begins when the
 * report contradicts it: unversioned, the report does not list it as current with its ETag and
 * size; versioned, the report does not list its version at all, or calls an older version (or
 * delete marker) current (a version listed as not current may be current again since: a delete
 * marker removed, a newer version deleted for good). Keys deleted or written since the report
 * prove nothing.
 * A report that contradicts the bucket on a share f of the keys is caught with probability
 * 1 - (1 - f)^64 (5 %: 96 %; 10 %: 99.9 %); a few keys go unseen. Cost: up to 64 HEADs and 64
 * indexed lookups per source and run.
 */
async function refuseContradictedKeys(
  catalog: Catalog,
  source: OpenedSource,
  store: InventoryStore,
  range: KeyRange,
  kept: (latest: LatestVersion) => boolean,
  lagMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const report = store.report;
  const prefixes = outermostPrefixes(source.prefixes);
  const eligible = (key: string): boolean =>
    (range.after === undefined || compareKeys(key, range.after) > 0) &&
    (range.upTo === undefined || compareKeys(key, range.upTo) <= 0) &&
    prefixes.some((p) => key.startsWith(p)) &&
    !source.isExcluded(key);
  const looked = new Set<string>();
  for (const candidates of sampleLiveKeys(catalog, source.bucket, { strata: SPOT_CHECKS, perStratum: 8, window: 4096 })) {
    const key = candidates.find((k) => !looked.has(k) && eligible(k));
    if (key === undefined) continue;
    looked.add(key);
    const latest = latestPage(catalog, source.bucket, key, true, `${key}\0`, 1)[0];
    if (latest === undefined || latest.key !== key || kept(latest)) continue;
    const meta = await headOrNull(store, key, signal);
    if (meta === null || meta.lastModified.getTime() >= report.created.getTime() - lagMs) continue;
    const where = `s3://${source.bucket}/${key}`;
    const held = `which the bucket holds (last modified ${meta.lastModified.toISOString()}, well before the report)`;
    let wrong: string | undefined;
    if (source.versioned === true) {
      // The current version is the newest one there is: a report made after this version was
      // written cannot call an older one current.
      const row = store.current(key);
      if (!store.listsVersion(key, meta.versionId)) wrong = `does not list version ${meta.versionId ?? 'null'} of ${where}, ${held}: this run would record it deleted`;
      else if (row !== undefined && Math.floor(row.lastModified / 1000) < Math.floor(meta.lastModified.getTime() / 1000)) {
        wrong = `lists ${row.isDeleteMarker ? 'a delete marker' : `version ${row.versionId ?? 'null'}`} of ${where} as current (last modified ${new Date(row.lastModified).toISOString()}), but the bucket's current version ${meta.versionId ?? 'null'} is newer (last modified ${meta.lastModified.toISOString()}, well before the report): this run would record the key as the report says`;
      }
    } else {
      const row = store.current(key);
      if (row === undefined || row.isDeleteMarker) wrong = `does not list ${where}, ${held}: this run would record it deleted`;
      else if (row.etag !== meta.etag || row.size !== meta.size) wrong = `lists ${where} with ETag ${row.etag} and size ${row.size}, but the bucket holds it with ETag ${meta.etag} and size ${meta.size} (last modified ${meta.lastModified.toISOString()}, well before the report): this run would not read it`;
    }
    if (wrong === undefined) continue;
    throw new LakeguardError(`S3 Inventory report ${report.location} ${wrong}; S3 Inventory lists every such object as it is, so the report was altered or is damaged`, {
      hint: 'see who may write to the destination bucket (docs/scale-out.md "What a report is trusted for"); run the backup again when the next report arrives, or remove the inventory: line to list the bucket',
    });
  }
}

/**
 * A catalogued key as the bucket has it now, null when it is gone or this identity may not look
 * at it (the scan records such an object as a failure): either way no proof against a report.
 */
async function headOrNull(store: ObjectStore, key: string, signal: AbortSignal | undefined): Promise<ObjectMeta | null> {
  return store.head(key, signal === undefined ? {} : { signal }).catch((err: unknown) => {
    if (isNotFound(err) || (err instanceof StorageError && err.code === 'AccessDenied')) return null;
    throw err;
  });
}

/**
 * Up to COVERAGE_PROBES live, not excluded catalogued keys of the source under `prefix`, in key
 * order from `from` until `stop` says a key is past the span, and whether the catalog knows any
 * key there at all (deleted ones too).
 */
function liveKeysIn(catalog: Catalog, source: OpenedSource, prefix: string, from: { key: string; inclusive: boolean }, stop: (key: string) => boolean): { rows: LatestVersion[]; known: boolean } {
  const PAGE_ROWS = 500;
  const upper = prefixUpperBound(prefix);
  const keys: LatestVersion[] = [];
  let known = false;
  let { key: lower, inclusive } = from;
  for (let walked = 0; walked < COVERAGE_WALK; ) {
    const page = latestPage(catalog, source.bucket, lower, inclusive, upper, PAGE_ROWS);
    for (const row of page) {
      if (stop(row.key)) return { rows: keys, known };
      known = true;
      if (!row.deleteMarker && !source.isExcluded(row.key)) keys.push(row);
      if (keys.length === COVERAGE_PROBES) return { rows: keys, known };
    }
    if (page.length < PAGE_ROWS) break;
    walked += page.length;
    lower = page.at(-1)!.key;
    inclusive = false;
  }
  return { rows: keys, known };
}

/** For a promise's catch: closes the inventories, then rethrows. */
export function closing(inventories: InventorySources): (err: unknown) => never {
  return (err) => {
    inventories.close();
    throw err;
  };
}

/**
 * A report older than what the catalog knows of the bucket would make the merge-join take
 * objects created since the report for deleted. What a run that listed the bucket knew: the
 * time of the report it listed from (counters.inventory), or its start when it listed with
 * LIST. The same report a run already used is accepted (it adds nothing, and takes nothing
 * away). A key-driven run (watch: counters.keysNamed) listed only its keys: it does not count
 * here; what it recorded after the report is kept by the merge-join (newerThanReport).
 */
function refuseStaleReport(catalog: Catalog, group: string, bucket: string, report: InventoryReport): void {
  let newest: { run: string; known: number; fromReport: boolean } | undefined;
  for (const run of catalog.listRuns({ group })) {
    if (run.status === 'running' || run.counters?.keysNamed !== undefined) continue;
    const reportTime = run.counters?.inventory?.[bucket];
    const known = reportTime === undefined ? run.started : Date.parse(reportTime);
    if (newest === undefined || known > newest.known) newest = { run: run.id, known, fromReport: reportTime !== undefined };
  }
  if (newest === undefined || report.created.getTime() >= newest.known) return;
  const what = newest.fromReport ? `listed bucket ${bucket} from a report of ${new Date(newest.known).toISOString()}` : `listed bucket ${bucket} at ${new Date(newest.known).toISOString()}`;
  throw new LakeguardError(
    `the newest S3 Inventory report of bucket ${bucket} (${report.created.toISOString()}, ${report.location}) is older than what run ${newest.run} knows: it ${what}`,
    { hint: 'wait for the next inventory report, or remove the inventory: line for this run to list the bucket' },
  );
}

/** Scratch files go beside the catalog (the cache directory); an in-memory catalog's to the temp directory. */
export function scratchDirOf(catalog: Catalog): string {
  return catalog.path === ':memory:' ? tmpdir() : dirname(catalog.path);
}
