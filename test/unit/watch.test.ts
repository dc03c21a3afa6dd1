// lakeguard watch, without a server or a wall clock: the policy's continuous settings, event
// parsing and dedup, the batching thresholds on a hand-driven clock, the journal across a
// crash, and runs driven by key lists on in-memory buckets.
import { appendFileSync, chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { latestPage } from '../../src/catalog/backup-lookups.js';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { emptyCounters, type BackupSummary } from '../../src/engine/events.js';
import { InterruptedError } from '../../src/errors.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { Watcher, type RunGroup, type WatchClock } from '../../src/engine/watch.js';
import { Batcher } from '../../src/engine/watch-batcher.js';
import { parseDelivery, type ChangeEvent } from '../../src/engine/watch-events.js';
import { WatchJournal } from '../../src/engine/watch-journal.js';
import { CONTINUOUS_DEFAULTS, continuousSettings } from '../../src/policy/continuous.js';
import { parsePolicy, PolicyError } from '../../src/policy/index.js';
import type { Group, Policy } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';

const MIN = 60_000;

const policyText = `version: 1
continuous: { interval: 10m, reconcile: off }
repository:
  url: s3://backup-bucket/lakeguard
groups:
  - name: lake
    continuous: { min_updates: 5 }
    sources:
      - bucket: raw
        events: http://127.0.0.1:8085/
        continuous: { max_interval: 30m }
      - bucket: curated
        events: sqs://sqs.eu-west-1.amazonaws.com/123456789012/lake-events
`;

describe('watch policy', () => {
  it('inherits continuous field by field: defaults, policy, group, source; events parsed per source', () => {
    const policy = parsePolicy(policyText, 'policy.yaml');
    const group = policy.groups[0]!;
    const [raw, curated] = group.sources;
    expect(continuousSettings(policy, group, raw)).toEqual({ intervalMs: 10 * MIN, minUpdates: 5, maxIntervalMs: 30 * MIN, reconcileMs: null, maxPending: 10_000 });
    expect(continuousSettings(policy, group, curated)).toEqual({ ...CONTINUOUS_DEFAULTS, intervalMs: 10 * MIN, minUpdates: 5, reconcileMs: null });
    expect(raw?.kind === 's3' && raw.events).toMatchObject({ kind: 'http', host: '127.0.0.1', port: 8085 });
    expect(curated?.kind === 's3' && curated.events).toMatchObject({ kind: 'sqs', url: 'https://sqs.eu-west-1.amazonaws.com/123456789012/lake-events' });
  });

  it('refuses bad values with file:line errors, and tokens in the events URL', () => {
    const bad = policyText
      .replace('interval: 10m', 'interval: 10')
      .replace('max_interval: 30m', 'max_interval: 1mo')
      .replace('http://127.0.0.1:8085/', 'http://127.0.0.1:8085/?token=abc');
    let error: PolicyError | undefined;
    try {
      parsePolicy(bad, 'policy.yaml');
    } catch (err) {
      error = err as PolicyError;
    }
    expect(error).toBeInstanceOf(PolicyError);
    const text = error!.message;
    expect(text).toMatch(/policy\.yaml:2:\d+.*continuous\.interval.*add a unit, e\.g\. "10s"/);
    expect(text).toMatch(/policy\.yaml:11:\d+.*max_interval.*duration/);
    expect(text).toMatch(/policy\.yaml:10:\d+.*events.*no credentials or query/);
    expect(text).not.toContain('abc');
  });
});

describe('event parsing', () => {
  const record = (eventName: string, key: string, object: Record<string, unknown> = {}) => ({ eventName, s3: { bucket: { name: 'raw' }, object: { key, ...object } } });

  it('reads S3 records (URL-encoded keys), SNS-wrapped ones and EventBridge; ignores tests and other events', () => {
    const records = {
      Records: [
        record('ObjectCreated:Put', 'a/b+c%2Bd.parquet', { sequencer: '01' }),
        record('ObjectCreated:CompleteMultipartUpload', 'big', { eTag: 'e1' }),
        record('s3:ObjectRemoved:DeleteMarkerCreated', 'old', { versionId: 'v9' }),
        record('LifecycleExpiration:Delete', 'expired'),
        record('ObjectTagging:Put', 'tagged'),
      ],
    };
    const parsed = parseDelivery(records);
    expect(parsed.events.map((e) => [e.key, e.kind])).toEqual([
      ['a/b c+d.parquet', 'created'],
      ['big', 'created'],
      ['old', 'removed'],
      ['expired', 'removed'],
    ]);
    expect(parsed.ignored).toBe(1);
    // Ceph RGW sends keys as they are (checked on radosgw 16): no decoding there.
    const ceph = parseDelivery({ Records: [{ ...record('ObjectCreated:Put', 'a b+c%2B/ü', { sequencer: 'EE' }), eventSource: 'ceph:s3' }] });
    expect(ceph.events[0]!.key).toBe('a b+c%2B/ü');
    expect(parseDelivery({ Type: 'Notification', Message: JSON.stringify(records) }).events).toHaveLength(4);
    const bridge = parseDelivery({ 'detail-type': 'Object Deleted', source: 'aws.s3', detail: { bucket: { name: 'raw' }, object: { key: 'x y', sequencer: '02' } } });
    expect(bridge.events).toEqual([{ bucket: 'raw', key: 'x y', kind: 'removed', id: 'raw\0x y\x0002' }]);
    expect(parseDelivery({ Event: 's3:TestEvent' })).toEqual({ events: [], ignored: 1, badKeys: [] });
    expect(() => parseDelivery({ hello: 1 })).toThrow(/neither/);
  });
});

describe('batching thresholds', () => {
  const settings = { intervalMs: 15 * MIN, minUpdates: 32, maxIntervalMs: 60 * MIN, reconcileMs: null, maxPending: 10_000 };
  const entry = (seq: number, at: number, bucket = 'raw') => ({ seq, group: 'lake', bucket, key: `k${seq}`, id: `id${seq}`, at });

  it('is due at interval with min_updates waiting, else at max_interval with any change; the window restarts at commit', () => {
    const b = new Batcher([{ group: 'lake', sources: new Map([['raw', settings]]) }], 0);
    expect(b.due(100 * MIN)).toEqual([]);
    expect(b.nextDueAt()).toBeNull();
    for (let i = 1; i <= 31; i++) b.add(entry(i, MIN));
    expect(b.dueReason('lake', 15 * MIN)).toBeUndefined(); // 31 < 32
    expect(b.nextDueAt()).toBe(60 * MIN);
    b.add(entry(32, 2 * MIN));
    expect(b.dueReason('lake', 15 * MIN - 1)).toBeUndefined();
    expect(b.nextDueAt()).toBe(15 * MIN);
    expect(b.dueReason('lake', 15 * MIN)).toBe('min_updates');
    const batch = b.take('lake');
    expect(batch).toMatchObject({ upToSeq: 32, changes: 32 });
    b.add(entry(33, 16 * MIN)); // arrived during the run: stays for the next batch
    b.committed(batch, 17 * MIN);
    expect(b.waiting('lake')).toBe(1);
    expect(b.dueReason('lake', 17 * MIN + 15 * MIN)).toBeUndefined();
    expect(b.dueReason('lake', 17 * MIN + 60 * MIN - 1)).toBeUndefined();
    expect(b.dueReason('lake', 17 * MIN + 60 * MIN)).toBe('max_interval');
  });

  it('judges each source by its own thresholds', () => {
    const eager = { ...settings, minUpdates: 2, intervalMs: MIN };
    const b = new Batcher([{ group: 'lake', sources: new Map([['raw', settings], ['hot', eager]]) }], 0);
    b.add(entry(1, 0, 'raw'));
    b.add(entry(2, 0, 'hot'));
    expect(b.dueReason('lake', MIN)).toBeUndefined();
    b.add(entry(3, 0, 'hot'));
    expect(b.dueReason('lake', MIN)).toBe('min_updates');
    expect([...b.take('lake').keys.keys()].sort()).toEqual(['hot', 'raw']); // the run takes the whole group
  });
});

describe('journal', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir('watch-journal')));
  afterEach(() => dir.cleanup());
  const change = (n: number, group = 'lake') => ({ group, bucket: 'raw', key: `k${n}`, id: `${group}\0raw\0k${n}\0s${n}`, at: n });

  it('keeps what no commit covers across a crash, drops a torn line and duplicates, and empties when all is done', async () => {
    const path = join(dir.path, 'catalog.db.watch-journal');
    const j1 = WatchJournal.open(path);
    const added = await j1.appendDurable([change(1), change(2), change(3, 'other')]);
    expect(added.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(await j1.appendDurable([change(2)])).toEqual([]); // delivered again
    j1.commit('lake', 1);
    // The process dies: no close; a write was cut off halfway.
    appendFileSync(path, '{"s":4,"g":"lake","b":"raw","k":"half');
    const j2 = WatchJournal.open(path);
    expect(j2.pending().map((e) => e.key)).toEqual(['k2', 'k3']);
    const [next] = await j2.appendDurable([change(5)]);
    expect(next!.seq).toBe(4); // numbering continues after the torn line's place
    j2.close();
    const j3 = WatchJournal.open(path);
    expect(j3.pending().map((e) => e.key)).toEqual(['k2', 'k3', 'k5']);
    j3.commit('lake', 4);
    j3.commit('other', 3);
    expect(j3.pending()).toEqual([]);
    expect(readFileSync(path, 'utf8')).toBe('');
    j3.close();
  });

  it('drops a damaged line in the middle but keeps every line after it, and says how many it dropped', async () => {
    const path = join(dir.path, 'catalog.db.watch-journal');
    const j1 = WatchJournal.open(path, { fsync: false });
    await j1.appendDurable([change(1), change(2), change(3), change(4, 'other'), change(5)]);
    j1.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    lines[2] = '{"s":3,garbage';
    writeFileSync(path, lines.join('\n'));
    const j2 = WatchJournal.open(path, { fsync: false });
    expect(j2.damaged).toBe(1);
    expect(j2.pending().map((e) => e.key)).toEqual(['k1', 'k2', 'k4', 'k5']);
    // Rewritten without it: the next open finds nothing damaged, and numbering goes on.
    const [next] = await j2.appendDurable([change(6)]);
    expect(next!.seq).toBe(6);
    j2.close();
    const j3 = WatchJournal.open(path, { fsync: false });
    expect([j3.damaged, j3.pending().map((e) => e.key)]).toEqual([0, ['k1', 'k2', 'k4', 'k5', 'k6']]);
    j3.close();
    // An entry whose key no S3 object can have (an earlier lakeguard journaled it) is dropped the same way.
    appendFileSync(path, '{"s":7,"g":"lake","b":"raw","k":"k\\udc80","i":"x","t":7}\n');
    const j4 = WatchJournal.open(path, { fsync: false });
    expect([j4.damaged, j4.pending().map((e) => e.key)]).toEqual([1, ['k1', 'k2', 'k4', 'k5', 'k6']]);
    j4.close();
  });

  it('is created the owner\'s alone, as the catalog; a rewrite keeps the mode it was given', async () => {
    const mode = (p: string): number => statSync(p).mode & 0o777;
    const path = join(dir.path, 'catalog.db.watch-journal');
    const j1 = WatchJournal.open(path, { fsync: false });
    await j1.appendDurable([change(1), change(2)]);
    j1.close();
    expect(mode(path)).toBe(0o600);
    // A damaged line makes the next open rewrite the file (a temporary one renamed over it).
    chmodSync(path, 0o640);
    appendFileSync(path, 'garbage\n');
    const j2 = WatchJournal.open(path, { fsync: false });
    expect(j2.damaged).toBe(1);
    j2.close();
    expect(mode(path)).toBe(0o640);
  });
});

describe('journal overflow', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir('watch-journal-overflow')));
  afterEach(() => dir.cleanup());
  const change = (n: number, group: string) => ({ group, bucket: 'raw', key: `k${n}`, id: `${group}\0raw\0k${n}`, at: n });

  it('keeps an overflow mark across a compaction and a restart, until a commit at or past it', async () => {
    const path = join(dir.path, 'catalog.db.watch-journal');
    const j1 = WatchJournal.open(path, { fsync: false });
    const limit = (group: string) => (group === 'b' ? 2 : 20_000);
    await j1.appendDurable([change(1, 'b'), change(2, 'b'), change(3, 'b'), change(4, 'b')], limit);
    expect([j1.held('b'), j1.overflowOf('b')]).toEqual([0, { seq: 3, changes: 4 }]);
    const many = await j1.appendDurable(Array.from({ length: 10_000 }, (_, i) => change(10 + i, 'a')), limit);
    j1.commit('a', many.at(-1)!.seq); // 10,000 lines of history: the file is rewritten
    expect(readFileSync(path, 'utf8')).toBe('{"over":3,"g":"b"}\n');
    j1.close();
    const j2 = WatchJournal.open(path, { fsync: false });
    expect([j2.overflowOf('b'), j2.pending()]).toEqual([{ seq: 3, changes: 0 }, []]);
    j2.commit('b', 2); // a run that started before the overflow covers no more than it saw
    expect(j2.overflowOf('b')).toBeDefined();
    expect(j2.startFull('b')).toBe(3);
    j2.commit('b', 3);
    expect(j2.overflowOf('b')).toBeUndefined();
    expect(readFileSync(path, 'utf8')).toBe('');
    j2.close();
  });
});

/** A clock the test moves; sleep() resolves when the test advances past its deadline, or on wake. */
class ManualClock implements WatchClock {
  time = 0;
  private sleepers: { at: number; resolve: () => void }[] = [];
  now = (): number => this.time;
  sleep = (ms: number, wake: AbortSignal): Promise<void> =>
    new Promise((resolve) => {
      if (wake.aborted) return resolve();
      const s = { at: this.time + ms, resolve };
      this.sleepers.push(s);
      wake.addEventListener('abort', () => resolve(), { once: true });
    });
  async advance(ms: number): Promise<void> {
    this.time += ms;
    for (const s of this.sleepers.splice(0)) if (s.at <= this.time) s.resolve();
      else this.sleepers.push(s);
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

describe('watcher', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir('watcher')));
  afterEach(() => dir.cleanup());

  const policy: Policy = parsePolicy(
    `version: 1
repository: { url: s3://backups/r }
continuous: { interval: 1m, min_updates: 3, max_interval: 10m, reconcile: 1h }
groups:
  - name: lake
    sources: [{ bucket: raw, events: "http://127.0.0.1:9999/", prefixes: [data/] }]
`,
    'p.yaml',
  );
  const seeded = { latestRun: () => ({ id: 'seed' }) } as unknown as Catalog;
  const ev = (key: string, seq: string): ChangeEvent => ({ bucket: 'raw', key, kind: 'created', id: `raw\0${key}\0${seq}` });

  function harness(opts: { fail?: number } = {}) {
    const clock = new ManualClock();
    const runs: { keys: string[] | null }[] = [];
    let failures = opts.fail ?? 0;
    const runGroup: RunGroup = async (group, o) => {
      if (failures-- > 0) throw new Error('server said no');
      runs.push({ keys: o.keys === undefined ? null : [...(o.keys.get('raw') ?? [])].sort() });
      return { runId: `r${runs.length}`, group: group.name, status: 'complete', dryRun: false, counters: emptyCounters() } satisfies BackupSummary;
    };
    const journal = WatchJournal.open(join(dir.path, 'j'));
    const watcher = new Watcher({ policy, catalog: seeded, groups: policy.groups, journal, runGroup, clock, retryMs: MIN });
    const stop = new AbortController();
    const done = watcher.run(stop.signal);
    return { clock, runs, journal, watcher, done };
  }

  it('dedups repeated and out-of-order deliveries, runs the named keys at the threshold, acknowledges after commit', async () => {
    const { clock, runs, journal, watcher, done } = harness();
    const acked: string[] = [];
    await watcher.ingest([ev('data/b', '2'), ev('data/a', '1')], () => acked.push('m1'));
    await watcher.ingest([ev('data/a', '1'), ev('other/x', '1')], () => acked.push('m2')); // a duplicate; other/ is not watched
    expect(watcher.waiting('lake')).toBe(2);
    await clock.advance(MIN);
    expect(runs).toEqual([]); // 2 < min_updates
    await watcher.ingest([ev('data/a', '3')], () => acked.push('m3')); // a newer change of a: one key, three updates
    await settle();
    expect(runs).toEqual([{ keys: ['data/a', 'data/b'] }]);
    expect(acked.sort()).toEqual(['m1', 'm2', 'm3']);
    expect(journal.pending()).toEqual([]);
    // Below min_updates: waits for max_interval from the last run.
    await watcher.ingest([ev('data/c', '1')]);
    await clock.advance(9 * MIN);
    expect(runs).toHaveLength(1);
    await clock.advance(MIN);
    expect(runs).toEqual([{ keys: ['data/a', 'data/b'] }, { keys: ['data/c'] }]);
    // Reconcile: a full run an hour after start.
    await clock.advance(50 * MIN);
    expect(runs.at(-1)).toEqual({ keys: null });
    watcher.stop();
    expect(await done).toEqual({ interrupted: false });
  });

  it('runs the drill schedule between runs: due every period after the last drill, retried after max_interval when it throws', async () => {
    const clock = new ManualClock();
    const log: string[] = [];
    let lastDrill: number | null = null;
    let drillFails = 1;
    const runGroup: RunGroup = async (group, o) => {
      log.push(`run ${o.keys === undefined ? 'full' : [...(o.keys.get('raw') ?? [])].join(',')} @${clock.now() / MIN}`);
      return { runId: 'r', group: group.name, status: 'complete', dryRun: false, counters: emptyCounters() } satisfies BackupSummary;
    };
    const drills = {
      dueAt: (group: string) => (group === 'lake' ? (lastDrill ?? 0) + 30 * MIN : null),
      run: async () => {
        log.push(`drill @${clock.now() / MIN}`);
        if (drillFails-- > 0) throw new Error('scratch bucket unreachable');
        lastDrill = clock.now();
      },
    };
    const warnings: string[] = [];
    const journal = WatchJournal.open(join(dir.path, 'j'));
    const watcher = new Watcher({ policy, catalog: seeded, groups: policy.groups, journal, runGroup, clock, retryMs: MIN, drills, events: (e) => e.type === 'warning' && warnings.push(e.message) });
    const done = watcher.run(new AbortController().signal);
    await clock.advance(29 * MIN);
    expect(log).toEqual([]);
    await clock.advance(MIN); // due at 30 min: it throws, nothing recorded
    expect(log).toEqual(['drill @30']);
    expect(warnings.join('\n')).toMatch(/scheduled drill of group lake failed \(scratch bucket unreachable\)/);
    await watcher.ingest([ev('data/a', '1'), ev('data/b', '1'), ev('data/c', '1')]);
    await settle(); // interval long passed, min_updates waiting: a run at once (drills wait for runs)
    await clock.advance(10 * MIN); // max_interval after the failed drill: tried again, and recorded
    expect(log).toEqual(['drill @30', 'run data/a,data/b,data/c @30', 'drill @40']);
    await clock.advance(20 * MIN); // the hourly reconcile; no drill before 30 min after the last one
    await clock.advance(9 * MIN);
    expect(log.slice(3)).toEqual(['run full @60']);
    await clock.advance(MIN); // every 30 min after the last drill
    expect(log.slice(3)).toEqual(['run full @60', 'drill @70']);
    watcher.stop();
    expect(await done).toEqual({ interrupted: false });
  });

  it('keeps the changes of a failed run journaled and retries after a wait', async () => {
    const { clock, runs, journal, watcher, done } = harness({ fail: 1 });
    await watcher.ingest([ev('data/a', '1'), ev('data/b', '1'), ev('data/c', '1')]);
    await clock.advance(MIN);
    expect(runs).toEqual([]);
    expect(journal.pending()).toHaveLength(3);
    await clock.advance(MIN - 1);
    expect(runs).toEqual([]);
    await clock.advance(1);
    expect(runs).toEqual([{ keys: ['data/a', 'data/b', 'data/c'] }]);
    expect(journal.pending()).toEqual([]);
    watcher.stop();
    await done;
  });

  it('takes no event naming a directory source: a forged ../ key cannot fail the group\'s runs', async () => {
    const mixed = parsePolicy(
      `version: 1
repository: { url: s3://backups/r }
continuous: { interval: 1m, min_updates: 1, max_interval: 10m, reconcile: off }
groups:
  - name: lake
    sources: [{ bucket: raw, events: "http://127.0.0.1:9999/" }, { path: /srv/exports, name: exports }]
`,
      'p.yaml',
    );
    const clock = new ManualClock();
    const journal = WatchJournal.open(join(dir.path, 'j'));
    // Journaled by an earlier lakeguard, which took such events: replayed, never run.
    await journal.appendDurable([{ group: 'lake', bucket: 'exports', key: '../../etc/passwd', id: 'old', at: 0 }]);
    const named: Record<string, string[]>[] = [];
    const runGroup: RunGroup = async (group, o) => {
      if (o.keys !== undefined) named.push(Object.fromEntries([...o.keys].map(([bucket, keys]) => [bucket, [...keys].sort()])));
      return { runId: 'r', group: group.name, status: 'complete', dryRun: o.dryRun ?? false, counters: emptyCounters() } satisfies BackupSummary;
    };
    const watcher = new Watcher({ policy: mixed, catalog: seeded, groups: mixed.groups, journal, runGroup, clock });
    const done = watcher.run(new AbortController().signal);
    const forged: ChangeEvent = { bucket: 'exports', key: '../../etc/passwd', kind: 'created', id: 'exports\0../../etc/passwd\0x' };
    expect(await watcher.ingest([forged, ev('data/a', '1')])).toEqual({ accepted: 1, dropped: 1 });
    expect(watcher.waiting('lake')).toBe(1);
    await clock.advance(MIN);
    expect(named).toEqual([{ raw: ['data/a'] }]);
    // The run's commit covers the replayed line too: nothing is left pending.
    expect(journal.pending()).toEqual([]);
    watcher.stop();
    await done;
  });

  it('abandons the run in progress when its signal aborts (SIGTERM past the grace): interrupted, changes kept', async () => {
    const clock = new ManualClock();
    const journal = WatchJournal.open(join(dir.path, 'j'));
    let started = false;
    const watcher = new Watcher({
      policy,
      catalog: seeded,
      groups: policy.groups,
      journal,
      clock,
      runGroup: (_group, o) =>
        new Promise((_resolve, reject) => {
          started = true;
          o.signal.addEventListener('abort', () => reject(new InterruptedError('backup interrupted')));
        }),
    });
    const runs = new AbortController();
    const done = watcher.run(runs.signal);
    await watcher.ingest([ev('data/a', '1'), ev('data/b', '1'), ev('data/c', '1')]);
    await clock.advance(MIN);
    expect(started).toBe(true);
    watcher.stop();
    runs.abort();
    expect(await done).toEqual({ interrupted: true });
    expect(journal.pending().map((e) => e.key)).toEqual(['data/a', 'data/b', 'data/c']);
  });

  it('watches a source without events by listing: a dry run every interval, a real run by the same thresholds', async () => {
    const polled = parsePolicy(
      `version: 1
repository: { url: s3://backups/r }
continuous: { interval: 1m, min_updates: 3, max_interval: 10m, reconcile: off }
groups:
  - name: lake
    sources: [{ bucket: raw }]
`,
      'p.yaml',
    );
    const clock = new ManualClock();
    const calls: string[] = [];
    let changed = 2;
    const watcher = new Watcher({
      policy: polled,
      catalog: seeded,
      groups: polled.groups,
      journal: WatchJournal.open(join(dir.path, 'j')),
      clock,
      runGroup: async (group, o) => {
        calls.push(o.dryRun === true ? 'dry' : o.keys === undefined ? 'full' : 'keys');
        return { runId: 'x', group: group.name, status: 'complete', dryRun: o.dryRun === true, counters: { ...emptyCounters(), objectsNew: o.dryRun === true ? changed : 0 } };
      },
    });
    const done = watcher.run(new AbortController().signal);
    await clock.advance(MIN);
    expect(calls).toEqual(['dry']); // 2 changes < min_updates 3
    changed = 3;
    await clock.advance(MIN);
    expect(calls).toEqual(['dry', 'dry', 'full']);
    changed = 1;
    for (let i = 0; i < 9; i++) await clock.advance(MIN);
    expect(calls.filter((c) => c === 'full')).toHaveLength(1); // 1 change waits for max_interval
    await clock.advance(MIN);
    expect(calls.filter((c) => c === 'full')).toHaveLength(2);
    watcher.stop();
    await done;
  });

  it('resumes from the journal after a crash: the replayed changes are the next batch', async () => {
    const first = harness();
    await first.watcher.ingest([ev('data/a', '1'), ev('data/b', '1')]);
    // Killed: neither stopped nor closed. A new watcher on the same journal file.
    const journal = WatchJournal.open(join(dir.path, 'j'));
    const clock = new ManualClock();
    const keys: string[][] = [];
    const watcher = new Watcher({
      policy,
      catalog: seeded,
      groups: policy.groups,
      journal,
      clock,
      runGroup: async (group, o) => {
        keys.push([...(o.keys?.get('raw') ?? [])].sort());
        return { runId: 'x', group: group.name, status: 'complete', dryRun: false, counters: emptyCounters() };
      },
    });
    expect(watcher.waiting('lake')).toBe(2);
    const done = watcher.run(new AbortController().signal);
    await watcher.ingest([ev('data/c', '1')]);
    await clock.advance(MIN);
    expect(keys).toEqual([['data/a', 'data/b', 'data/c']]);
    watcher.stop();
    await done;
    first.watcher.stop();
    await first.clock.advance(0);
  });

  it('after a damaged journal line, every group\'s next run is a full listing, and it says why', async () => {
    const first = harness();
    await first.watcher.ingest([ev('data/a', '1'), ev('data/b', '1'), ev('data/c', '1')]);
    first.watcher.stop();
    await first.clock.advance(0);
    const path = join(dir.path, 'j');
    const lines = readFileSync(path, 'utf8').split('\n');
    lines[1] = 'not json';
    writeFileSync(path, lines.join('\n'));
    const warnings: string[] = [];
    const watcher = new Watcher({
      policy,
      catalog: seeded,
      groups: policy.groups,
      journal: WatchJournal.open(path),
      clock: new ManualClock(),
      events: (e) => {
        if (e.type === 'warning') warnings.push(e.message);
      },
      runGroup: async (group) => ({ runId: 'x', group: group.name, status: 'complete', dryRun: false, counters: emptyCounters() }),
    });
    expect(policy.groups.map((g) => watcher.overflowed(g.name))).toEqual(policy.groups.map(() => true));
    expect(warnings).toEqual([`the watch journal ${path} had 1 damaged line (not JSON, or a key no S3 object can have), dropped: the changes they held are unknown, so every group's next run is a full listing`]);
  });
});

describe('runs driven by a key list', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  beforeEach(async () => {
    dir = tempDir('watch-keys');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    catalog = openCatalog(dir.path, repo);
  });
  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  for (const versioning of [false, true]) {
    it(`records exactly what a full listing would (${versioning ? 'versioned' : 'unversioned'} bucket)`, async () => {
      let clock = Date.parse('2026-12-01T10:00:00Z');
      const bucket = new MemStore({ versioning, now: () => new Date((clock += 1000)), name: 'lake' });
      const group: Group = { name: 'g', sources: [] };
      const source = (): OpenedSource => ({ bucket: 'lake', objectStore: bucket, prefixes: ['data/'], isExcluded: (k) => k.endsWith('.tmp') });
      const run = (keys?: Map<string, string[]>) =>
        backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source()], ...(keys === undefined ? {} : { keys }) });
      for (const k of ['a', 'ab', 'b', 'c']) await bucket.put(`data/${k}`, Buffer.from(`v1 ${k}`));
      await run();

      await bucket.put('data/a', Buffer.from('v2 a')); // changed
      await bucket.put('data/a', Buffer.from('v3 a')); // twice (versioned: both versions)
      await bucket.put('data/new', Buffer.from('new')); // new
      await bucket.delete('data/b'); // deleted (versioned: a delete marker)
      await bucket.put('data/x.tmp', Buffer.from('t')); // excluded
      await bucket.put('outside/z', Buffer.from('z')); // outside the prefixes
      await bucket.put('data/c', Buffer.from('v2 c')); // changed, but not named: left for later
      const keyed = await run(new Map([['lake', ['data/a', 'data/new', 'data/b', 'data/x.tmp', 'outside/z', 'data/a', 'data/gone-before-run']]]));
      expect(keyed.status).toBe('complete');
      expect(keyed.counters).toMatchObject({ objectsNew: versioning ? 3 : 1, objectsChanged: versioning ? 0 : 1, objectsDeleted: 1, objectsExcluded: 1 });
      const state = latestPage(catalog, 'lake', '', true, null, 100).map((r) => [r.key, r.deleteMarker]);
      expect(state).toEqual([
        ['data/a', false],
        ['data/ab', false], // 'data/a' as a prefix did not touch it
        ['data/b', true],
        ['data/c', false],
        ['data/new', false],
      ]);
      // A full listing afterwards finds only what was not named: data/c.
      const full = await run();
      expect(full.counters).toMatchObject({ objectsNew: versioning ? 1 : 0, objectsChanged: versioning ? 0 : 1, objectsDeleted: 0 });
    });
  }

  it('judges anomaly shares against the partition\'s catalogued keys, not the few keys named', async () => {
    const bucket = new MemStore({ name: 'lake' });
    const group: Group = { name: 'g', sources: [] };
    const policy = testPolicy(repo.location, [group], { anomaly: { minPartitionObjects: 2 } });
    const source = (): OpenedSource => ({ bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: () => false });
    for (let i = 0; i < 100; i++) await bucket.put(`data/p/${String(i).padStart(3, '0')}`, Buffer.from(`row ${i}`));
    await backupGroup({ repo, catalog, policy, group, sources: [source()] });
    const gone = ['data/p/000', 'data/p/001', 'data/p/002'];
    for (const k of gone) await bucket.delete(k);
    // 3 of 100 deleted: 3 %, below the 5 % rule (as a full listing would judge it).
    const run = await backupGroup({ repo, catalog, policy, group, sources: [source()], keys: new Map([['lake', gone]]) });
    expect(run.counters.objectsDeleted).toBe(3);
    expect(run.anomalies?.partitions).toEqual([expect.objectContaining({ partition: 'data/', before: 100, deleted: 3 })]);
    expect(run.anomalies?.suspect).toBe(false);
  });
});

describe('overflow: more than max_pending changes waiting', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  beforeEach(async () => {
    dir = tempDir('watch-overflow');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    catalog = openCatalog(dir.path, repo);
  });
  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  const MAX = 5;
  const policy: Policy = parsePolicy(
    `version: 1
repository: { url: s3://backups/r }
continuous: { interval: 1m, min_updates: 1000, max_interval: 1h, reconcile: off, max_pending: ${MAX} }
groups:
  - name: lake
    sources: [{ bucket: lake, events: "http://127.0.0.1:9999/", prefixes: [data/] }]
`,
    'p.yaml',
  );

  it('stops holding changes one by one past the cap, says so once, and the next run lists the group and captures every change', async () => {
    const bucket = new MemStore({ name: 'lake' });
    const group = policy.groups[0]!;
    const sources = (): OpenedSource[] => [{ bucket: 'lake', objectStore: bucket, prefixes: ['data/'], isExcluded: () => false }];
    const backup = (keys?: ReadonlyMap<string, Iterable<string>>) =>
      backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: sources(), ...(keys === undefined ? {} : { keys }) });
    for (let i = 0; i < 4; i++) await bucket.put(`data/k${i}`, Buffer.from(`v1 ${i}`));
    await backup(); // seeded: watch starts with no seed run

    const clock = new ManualClock();
    let down = true; // the repository is unreachable: every run fails
    let gate: Promise<void> | null = null;
    const runs: { keys: string[] | null; summary?: BackupSummary }[] = [];
    const runGroup: RunGroup = async (_group, o) => {
      const run: (typeof runs)[number] = { keys: o.keys === undefined ? null : [...(o.keys.get('lake') ?? [])].sort() };
      runs.push(run);
      if (down) throw new Error('repository unreachable');
      if (gate !== null) await gate;
      run.summary = await backup(o.keys);
      return run.summary;
    };
    const journalPath = join(dir.path, 'catalog.db.watch-journal');
    const journal = WatchJournal.open(journalPath);
    const warnings: string[] = [];
    const reports: { reason: string; changes: number }[] = [];
    // Settles when a run commits (its acknowledgements follow in the same tick): the backup does
    // real file I/O, so no count of event-loop turns is sure to outlast it on a loaded machine.
    let ranOnce!: () => void;
    const ran = new Promise<void>((resolve) => (ranOnce = resolve));
    const watcher = new Watcher({
      policy,
      catalog,
      groups: policy.groups,
      journal,
      runGroup,
      clock,
      retryMs: MIN,
      events: (e) => e.type === 'warning' && warnings.push(e.message),
      onRun: ({ reason, changes }) => {
        reports.push({ reason, changes });
        ranOnce();
      },
    });
    const done = watcher.run(new AbortController().signal);
    const acked: string[] = [];

    // MAX + 3 changes, each its own push: new objects, a changed one, a deleted one.
    const changes: { key: string; apply: () => Promise<unknown> }[] = [
      ...Array.from({ length: 5 }, (_, i) => ({ key: `data/n${i}`, apply: () => bucket.put(`data/n${i}`, Buffer.from(`new ${i}`)) })),
      { key: 'data/k1', apply: () => bucket.put('data/k1', Buffer.from('v2 1')) },
      { key: 'data/k0', apply: () => bucket.delete('data/k0') },
      { key: 'data/n5', apply: () => bucket.put('data/n5', Buffer.from('new 5')) },
    ];
    for (const [i, c] of changes.entries()) {
      await c.apply();
      await watcher.ingest([{ bucket: 'lake', key: c.key, kind: 'created', id: `lake\0${c.key}\0${i}` }], () => acked.push(c.key));
      await settle();
      if (i === MAX - 1) {
        expect([watcher.overflowed('lake'), watcher.waiting('lake'), journal.held('lake'), runs.length]).toEqual([false, MAX, MAX, 0]);
      }
      if (i === MAX) {
        // The cap passed: nothing held one by one any more, the overflow on disk, a full run owed
        // (and tried at once: it fails, the repository being unreachable).
        expect([watcher.overflowed('lake'), watcher.waiting('lake'), journal.held('lake'), journal.pending()]).toEqual([true, MAX + 1, 0, []]);
        expect(runs).toEqual([{ keys: null }]);
      }
    }
    expect(watcher.waiting('lake')).toBe(MAX + 3);
    expect(journal.held('lake')).toBe(0);
    expect(warnings.filter((w) => w.includes('max_pending'))).toEqual([
      `watch: group lake has more than ${MAX} changes waiting (continuous.max_pending): they are no longer held one by one; its next run is a full listing of the group (reason overflow), which backs up every change`,
    ]);
    // What the journal holds: the first MAX changes and the overflow mark; the later ones are the mark's.
    const lines = readFileSync(journalPath, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.k ?? `over ${String(l.over)}`)).toEqual(['data/n0', 'data/n1', 'data/n2', 'data/n3', 'data/n4', `over ${MAX + 1}`]);
    // A restart (kill -9 now) replays the overflow, not the dropped changes.
    const replayed = WatchJournal.open(journalPath);
    expect([replayed.overflowOf('lake'), replayed.pending()]).toEqual([{ seq: MAX + 1, changes: MAX }, []]);
    replayed.close();
    expect(acked).toEqual([]);

    // The repository is back: the retried run lists the whole group. A change pushed while it
    // runs is held one by one again (the listing may have passed it).
    down = false;
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    await clock.advance(MIN);
    expect(runs.map((r) => r.keys)).toEqual([null, null]);
    await bucket.put('data/late', Buffer.from('late'));
    await watcher.ingest([{ bucket: 'lake', key: 'data/late', kind: 'created', id: 'lake\0data/late\x001' }], () => acked.push('data/late'));
    expect(journal.held('lake')).toBe(1);
    open();
    await ran;
    await settle();
    expect(reports).toEqual([{ reason: 'overflow', changes: MAX + 3 }]);
    expect(runs[1]!.summary!.counters).toMatchObject({ objectsNew: 7, objectsChanged: 1, objectsDeleted: 1 });
    const state = latestPage(catalog, 'lake', '', true, null, 100).map((r) => [r.key, r.deleteMarker]);
    expect(state).toEqual([
      ['data/k0', true],
      ['data/k1', false],
      ['data/k2', false],
      ['data/k3', false],
      ['data/late', false],
      ...Array.from({ length: 6 }, (_, i) => [`data/n${i}`, false]),
    ]);
    // Every pushed change was acknowledged by that commit; the late one waits for its own run.
    expect(acked.sort()).toEqual(changes.map((c) => c.key).sort());
    expect([watcher.overflowed('lake'), watcher.waiting('lake'), journal.pending().map((e) => e.key)]).toEqual([false, 1, ['data/late']]);
    expect(warnings.filter((w) => w.includes('max_pending'))).toHaveLength(1);
    watcher.stop();
    await done;
    journal.close();
  });
});
