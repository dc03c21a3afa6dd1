import type { Catalog } from '../catalog/catalog.js';
import type { FailureRecord, VersionRecord } from '../catalog/types.js';

const BATCH = 2000;

/** Buffers version and failure records and writes them to the catalog thousands per transaction. */
export class RecordWriter {
  private versions: VersionRecord[] = [];
  private failures: FailureRecord[] = [];
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

  flush(): void {
    if (this.versions.length === 0 && this.failures.length === 0) return;
    const versions = this.versions;
    const failures = this.failures;
    this.versions = [];
    this.failures = [];
    this.catalog.transaction(() => {
      this.versionsWritten += this.catalog.insertVersions(this.runSeq, versions);
      this.catalog.insertFailures(this.runSeq, failures);
    });
  }
}
