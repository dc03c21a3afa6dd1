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
  /**
   * Row ids of catalogued blobs the buffered versions use, found by knowsBlob: insertVersions
   * does not look them up a second time. Nothing deletes a blob row while records are buffered.
   */
  private blobRows = new Map<string, number>();
  versionsWritten = 0;

  constructor(
    private readonly catalog: Catalog,
    private readonly runSeq: number,
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

  /** Whether the catalog locates this blob, or will at the next flush. */
  knowsBlob(hex: string): boolean {
    if (this.located.has(hex) || this.blobRows.has(hex)) return true;
    const row = this.catalog.blobRowOf(Buffer.from(hex, 'hex'));
    if (row === undefined) return false;
    this.blobRows.set(hex, row);
    return true;
  }

  flush(): void {
    if (this.versions.length === 0 && this.failures.length === 0 && this.located.size === 0) return;
    const versions = this.versions;
    const failures = this.failures;
    const located = this.located;
    const blobRows = this.blobRows;
    this.versions = [];
    this.failures = [];
    this.located = new Map();
    this.blobRows = new Map();
    this.catalog.transaction(() => {
      for (const [hex, loc] of located) insertLocated(this.catalog, hex, loc, BlobType.data);
      this.versionsWritten += this.catalog.insertVersions(this.runSeq, versions, blobRows);
      this.catalog.insertFailures(this.runSeq, failures);
    });
  }
}
