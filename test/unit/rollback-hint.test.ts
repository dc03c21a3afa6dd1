// The rollback command a suspect run's report suggests must cover every poisoned partition of
// the bucket it names: the first partition alone would leave the others poisoned.
import { describe, expect, it } from 'vitest';
import type { PartitionFinding } from '../../src/catalog/anomaly-types.js';
import { otherBuckets, rollbackHint } from '../../src/commands/runs-anomalies.js';

const finding = (bucket: string, partition: string): PartitionFinding => ({ bucket, partition, rules: ['broken-formats'], reasons: ['…'] });

describe('rollback hint of a suspect run', () => {
  it('names the deepest prefix holding every finding of the bucket, cut at a slash', () => {
    const findings = [finding('lake', 'sales/date=2026-12-01/'), finding('lake', 'sales/date=2026-12-02/'), finding('lake', 'sales/date=2026-12-11/')];
    expect(rollbackHint(findings)).toBe('lakeguard rollback --bucket lake --prefix sales/ --at last-clean --dry-run');
    expect(otherBuckets(findings)).toBe('');
  });

  it('keeps a single partition as it is, and drops --prefix when the findings share none', () => {
    expect(rollbackHint([finding('lake', 'sales/date=2026-12-01/')])).toBe('lakeguard rollback --bucket lake --prefix sales/date=2026-12-01/ --at last-clean --dry-run');
    expect(rollbackHint([finding('lake', 'sales/'), finding('lake', 'events/')])).toBe('lakeguard rollback --bucket lake --at last-clean --dry-run');
    expect(rollbackHint([finding('lake', '')])).toBe('lakeguard rollback --bucket lake --at last-clean --dry-run');
  });

  it('says when findings in other buckets need their own rollback', () => {
    const findings = [finding('lake', 'a/'), finding('other', 'b/'), finding('third', 'c/'), finding('lake', 'a/x/')];
    expect(rollbackHint(findings)).toBe('lakeguard rollback --bucket lake --prefix a/ --at last-clean --dry-run');
    expect(otherBuckets(findings)).toBe(' (and the same for 2 other buckets)');
  });
});
