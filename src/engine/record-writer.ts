import type { Catalog } from '../catalog/catalog.js';
import type { FailureRecord, RecordedBlob, VersionRecord } from '../catalog/types.js';
import { BlobType } from '../repository/pack.js';
import { insertLocated } from './record-loader.js';

const BATCH = 2000;

/** Buffers version and failure records and writes them to the catalog thousands per transaction. */
export class RecordWriter {
  private versions: VersionRecord[] = [];
  private failures: FailureRecord[] = [];
  /** Blob locations from record lines (a scoped import), written with the versions that need them. */
  private located = new Map<string, RecordedBlob>();
  versionsWritten = 0;

  /**
   * `onMissing`: versions are imported from records (catalog rebuild and sync), so one may refer
   * to a blob the catalog does not locate (a damaged repository): at the flush, such a version is
   * left out and handed to onMissing with the first such blob, in the order they were added.
   * Without it, every blob must be catalogued (insertVersions throws otherwise).
   */
  constructor(
    private readonly catalog: Catalog,
    private readonly runSeq: number,
    private readonly onMissing?: (record: VersionRecord, blob: string) => void,
  ) {}

  addVersion(record: VersionRecord): void {
    this.versions.push(record);
    if (this.versions.length >= BATCH) this.flush();
  }

  addFailure(failure: FailureRecord): void {
    this.failures.push(failure);
    if (this.failures.length >= BATCH) this.flush();
  }

  /** Where a blob (hex id) is, from a record line: recorded at the next flush unless the catalog knows it. */
  locate(hex: string, loc: RecordedBlob): void {
    if (!this.located.has(hex) && !this.catalog.hasBlob(Buffer.from(hex, 'hex'))) this.located.set(hex, loc);
  }

  flush(): void {
    if (this.versions.length === 0 && this.failures.length === 0 && this.located.size === 0) return;
    const versions = this.versions;
    const failures = this.failures;
    const located = this.located;
    this.versions = [];
    this.failures = [];
    this.located = new Map();
    const missing: [VersionRecord, string][] = [];
    this.catalog.transaction(() => {
      for (const [hex, loc] of located) insertLocated(this.catalog, hex, loc, BlobType.data);
      let withBlobs = versions;
      let blobRows: ReadonlyMap<string, number> | undefined;
      if (this.onMissing !== undefined) {
        // The batch's blobs looked up together (one query per few thousand), not one by one.
        const rows = this.catalog.blobRowsOf(new Set(versions.flatMap((v) => v.blobs.filter((hex) => typeof hex === 'string'))));
        withBlobs = versions.filter((v) => {
          // A record's blob ids are not checked when it is parsed: one that is not a string is missing too.
          const absent: unknown = v.blobs.find((hex: unknown) => typeof hex !== 'string' || !rows.has(hex));
          if (absent !== undefined) missing.push([v, String(absent)]);
          return absent === undefined;
        });
        blobRows = rows;
      }
      this.versionsWritten += this.catalog.insertVersions(this.runSeq, withBlobs, blobRows);
      this.catalog.insertFailures(this.runSeq, failures);
    });
    for (const [record, blob] of missing) this.onMissing?.(record, blob);
  }
}
