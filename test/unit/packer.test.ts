import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { IntegrityError, StorageError } from '../../src/errors.js';
import { BlobType, packKey } from '../../src/repository/pack.js';
import { PackBody, Packer, type WrittenPack } from '../../src/repository/packer.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import {
  getBytes,
  type ObjectStore,
  type PutOptions,
  type PutResult,
} from '../../src/storage/types.js';
import { prng, tempDir } from '../helpers/fixtures.js';

const PACK_SIZE = 64 * 1024;
const kdf = () => ({ algorithm: 'scrypt' as const, N: 1024, r: 8, p: 1, salt: randomBytes(16).toString('base64') });

function initRepo(store: ObjectStore, encrypted: boolean): Promise<Repository> {
  return Repository.init(store, { password: encrypted ? 'pw' : null, kdf: kdf(), packSize: PACK_SIZE });
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * ~1 KiB plaintexts, every one distinct: odd ones are pseudo-random (stored raw), even ones
 * repetitive text (zstd pays), so both values of the compressed flag occur.
 */
function plaintexts(n: number, seed = 1): Buffer[] {
  const rnd = prng(seed);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const size = 900 + (i % 7) * 40;
    out.push(i % 2 === 1 ? rnd(size) : Buffer.from(`${i}:${'row,value,'.repeat(size / 10)}`.slice(0, size)));
  }
  return out;
}

/** Lets every pending promise callback and I/O callback run, so "still pending" means blocked, not slow. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

/** Tracks whether a promise has settled, without awaiting it. */
function track<T>(p: Promise<T>): { readonly state: 'pending' | 'resolved' | 'rejected'; readonly error: unknown } {
  const t = { state: 'pending' as 'pending' | 'resolved' | 'rejected', error: undefined as unknown };
  p.then(
    () => (t.state = 'resolved'),
    (err: unknown) => {
      t.state = 'rejected';
      t.error = err;
    },
  );
  return t;
}

interface HeldPut {
  key: string;
  release: () => void;
  fail: (err: unknown) => void;
}

/**
 * A MemStore whose PUTs under `packs/` wait until the test releases (or fails) them; other
 * keys (config, index files) go straight through.
 */
class GatedStore extends StoreDecorator {
  readonly held: HeldPut[] = [];
  gate = true;
  private waiters: (() => void)[] = [];

  constructor(readonly memory = new MemStore()) {
    super(memory);
  }

  override async put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
    if (this.gate && key.startsWith('packs/')) {
      await new Promise<void>((resolve, reject) => {
        this.held.push({ key, release: resolve, fail: reject });
        this.waiters.splice(0).forEach((w) => w());
      });
    }
    return this.inner.put(key, body, opts);
  }
  /** Resolves once `n` puts have been held in total. */
  async heldCount(n: number): Promise<void> {
    while (this.held.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }
}

/** A MemStore whose PUTs under `packs/` fail. */
class FailingStore extends MemStore {
  failPacks = false;
  override async put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
    if (this.failPacks && key.startsWith('packs/')) throw new StorageError('ServerError', `PUT ${key}: injected failure`);
    return super.put(key, body, opts);
  }
}

async function listKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of store.list(prefix)) if (item.kind === 'object') keys.push(item.key);
  return keys;
}

function flip(buf: Buffer, pos: number): Buffer {
  const copy = Buffer.from(buf);
  copy[pos] = copy[pos]! ^ 0x01;
  return copy;
}

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

describe.each([
  { name: 'encrypted, MemStore', encrypted: true, fs: false },
  { name: 'unencrypted, MemStore', encrypted: false, fs: false },
  { name: 'encrypted, FsStore', encrypted: true, fs: true },
  { name: 'unencrypted, FsStore', encrypted: false, fs: true },
])('Packer: grouping and pack format ($name)', ({ encrypted, fs }) => {
  function makeStore(): ObjectStore {
    if (!fs) return new MemStore();
    const dir = tempDir('packer');
    cleanups.push(dir.cleanup);
    return new FsStore({ root: dir.path, fsync: false });
  }

  it('groups 500 blobs into packs of about the target size, one PUT each, and reports every blob exactly once', async () => {
    const store = makeStore();
    const repo = await initRepo(store, encrypted);
    expect(repo.encrypted).toBe(encrypted);
    const raws = plaintexts(500);
    const blobs = raws.map((raw) => repo.encodeBlob(raw, BlobType.data));
    expect(blobs.some((b) => b.compressed)).toBe(true);
    expect(blobs.some((b) => !b.compressed)).toBe(true);
    const byId = new Map(blobs.map((b, i) => [b.id.toString('hex'), { blob: b, raw: raws[i]! }]));
    expect(byId.size).toBe(500);

    const written: WrittenPack[] = [];
    const order: string[] = [];
    const packer = new Packer(repo, { onPackWritten: (p) => void written.push(p) });
    const putsBefore = store.stats.put;
    for (const b of blobs) {
      await packer.add(b);
      order.push(b.id.toString('hex'));
    }
    await packer.flush();

    // One PUT per pack, nothing else.
    const packKeys = await listKeys(store, 'packs/');
    expect(written.length).toBeGreaterThan(1);
    expect(store.stats.put - putsBefore).toBe(written.length);
    expect(packKeys.sort()).toEqual(written.map((p) => packKey(p.id)).sort());
    expect(packer.packsWritten).toBe(written.length);

    // A handful of packs: no more than the stored bytes need at the target size, and no fewer
    // than if every pack overshot the target by the largest blob.
    const totalStored = blobs.reduce((n, b) => n + b.stored.length, 0);
    const maxBlob = Math.max(...blobs.map((b) => b.stored.length));
    expect(written.length).toBeLessThanOrEqual(Math.ceil(totalStored / PACK_SIZE));
    expect(written.length).toBeGreaterThanOrEqual(Math.floor(totalStored / (PACK_SIZE + maxBlob)));

    // Every blob exactly once; each pack holds a contiguous run of the blobs in the order they
    // were added (packs may finish uploading in any order).
    const seen = written.flatMap((p) => p.entries.map((e) => e.id.toString('hex')));
    expect([...seen].sort()).toEqual([...order].sort());
    for (const p of written) {
      const start = order.indexOf(p.entries[0]!.id.toString('hex'));
      expect(p.entries.map((e) => e.id.toString('hex'))).toEqual(order.slice(start, start + p.entries.length));
    }

    let bytes = 0;
    for (const [i, p] of written.entries()) {
      const body = await getBytes(store, packKey(p.id));
      bytes += body.length;
      // Content-addressed: packs/<aa>/<sha256 of body>.
      expect(p.id).toBe(sha256(body));
      expect(packKey(p.id)).toBe(`packs/${p.id.slice(0, 2)}/${p.id}`);
      expect(p.size).toBe(body.length);

      const { entries, blobArea } = repo.readPackHeader(body, p.id);
      const areaSize = p.entries.reduce((n, e) => n + e.length, 0);
      expect(blobArea.length).toBe(areaSize);
      // Closed as soon as it reaches the target: at least the target (except the last), and
      // under the target plus the last blob that crossed it.
      // (Uploads run in parallel, so the last pack is the one holding the last blob added,
      // not necessarily the last one reported.)
      const isLast = p.entries.some((e) => e.id.toString('hex') === order.at(-1));
      if (!isLast) expect(areaSize, `pack ${i}`).toBeGreaterThanOrEqual(PACK_SIZE);
      expect(areaSize - p.entries.at(-1)!.length).toBeLessThan(PACK_SIZE);

      // The header parsed back agrees with what onPackWritten reported.
      expect(entries.map((e) => ({ ...e, id: e.id.toString('hex') }))).toEqual(p.entries.map((e) => ({ ...e, id: e.id.toString('hex') })));
      for (const e of entries) {
        const { blob, raw } = byId.get(e.id.toString('hex'))!;
        expect(e.length).toBe(blob.stored.length);
        expect(e.rawLength).toBe(raw.length);
        expect(e.compressed).toBe(blob.compressed);
        expect(e.type).toBe(BlobType.data);
        const stored = blobArea.subarray(e.offset, e.offset + e.length);
        expect(stored.equals(blob.stored)).toBe(true);
        expect(repo.decodeBlob(stored, e, p.id).equals(raw)).toBe(true);
      }
    }
    expect(packer.bytesWritten).toBe(bytes);
  });

  it('keeps blob types and stores a pack that holds one oversized blob', async () => {
    const store = makeStore();
    const repo = await initRepo(store, encrypted);
    const written: WrittenPack[] = [];
    const packer = new Packer(repo, { onPackWritten: (p) => void written.push(p) });
    const big = prng(9)(PACK_SIZE * 2 + 17);
    const rec = Buffer.from('{"t":"v"}\n'.repeat(50));
    await packer.add(repo.encodeBlob(rec, BlobType.records));
    await packer.add(repo.encodeBlob(big, BlobType.data));
    await packer.flush();
    expect(written).toHaveLength(1);
    const body = await getBytes(store, packKey(written[0]!.id));
    const { entries, blobArea } = repo.readPackHeader(body, written[0]!.id);
    expect(entries.map((e) => e.type)).toEqual([BlobType.records, BlobType.data]);
    expect(repo.decodeBlob(blobArea.subarray(entries[0]!.offset, entries[0]!.offset + entries[0]!.length), entries[0]!, 'p').equals(rec)).toBe(true);
    expect(repo.decodeBlob(blobArea.subarray(entries[1]!.offset, entries[1]!.offset + entries[1]!.length), entries[1]!, 'p').equals(big)).toBe(true);
  });

  it('detects one altered byte in a stored blob or in the pack header', async () => {
    const store = makeStore();
    const repo = await initRepo(store, encrypted);
    const written: WrittenPack[] = [];
    const packer = new Packer(repo, { onPackWritten: (p) => void written.push(p) });
    const raws = plaintexts(20, 3);
    for (const raw of raws) await packer.add(repo.encodeBlob(raw, BlobType.data));
    await packer.flush();
    expect(written).toHaveLength(1);
    const { id } = written[0]!;
    const body = await getBytes(store, packKey(id));
    const { entries, blobArea } = repo.readPackHeader(body, id);
    const headerStart = blobArea.length;
    const headerEnd = body.length - 4;

    // Any byte of any blob: decodeBlob refuses it (GCM tag, or the blob id no longer matches).
    for (const [n, e] of entries.entries()) {
      for (const pos of [e.offset, e.offset + (e.length >> 1), e.offset + e.length - 1]) {
        const bad = flip(body, pos);
        const parsed = repo.readPackHeader(bad, id); // the header is intact
        const stored = parsed.blobArea.subarray(e.offset, e.offset + e.length);
        expect(() => repo.decodeBlob(stored, parsed.entries[n]!, id), `blob ${n} byte ${pos}`).toThrow(IntegrityError);
      }
    }

    // Header bytes.
    const headerPositions = [headerStart, headerStart + 3, headerStart + 4 + 32, headerStart + 4 + 35, Math.floor((headerStart + headerEnd) / 2), headerEnd - 1];
    for (const pos of headerPositions) {
      const bad = flip(body, pos);
      if (encrypted) {
        // A sealed header is authenticated as a whole.
        expect(() => repo.readPackHeader(bad, id), `header byte ${pos}`).toThrow(IntegrityError);
      } else {
        // Plaintext header: either its structure no longer adds up, or a blob read through it
        // fails its id check. Either way the damage does not go unnoticed.
        let detected = false;
        try {
          const parsed = repo.readPackHeader(bad, id);
          for (const e of parsed.entries) repo.decodeBlob(parsed.blobArea.subarray(e.offset, e.offset + e.length), e, id);
        } catch (err) {
          expect(err).toBeInstanceOf(IntegrityError);
          detected = true;
        }
        expect(detected, `header byte ${pos}`).toBe(true);
      }
    }
    // The trailing header length.
    for (const pos of [body.length - 4, body.length - 1]) {
      expect(() => repo.readPackHeader(flip(body, pos), id), `trailer byte ${pos}`).toThrow(IntegrityError);
    }
    // A truncated pack.
    expect(() => repo.readPackHeader(body.subarray(0, body.length - 1), id)).toThrow(IntegrityError);
    expect(() => repo.readPackHeader(body.subarray(0, 3), id)).toThrow(IntegrityError);
  });

  it('round-trips index documents and rejects an altered or renamed one', async () => {
    const store = makeStore();
    const repo = await initRepo(store, encrypted);
    const doc = {
      version: 1,
      packs: [{ id: 'ab'.repeat(32), size: 1234, blobs: [['cd'.repeat(32), 0, 0, 100, 200, 1]] }],
      note: 'ünïcødé 🦆 '.repeat(200), // compressible, non-ASCII
    };
    const name = await repo.writeDocument('index', null, doc);
    const body = await getBytes(store, `index/${name}`);
    // Format 2: a time-ordered random name; the seal (or unencrypted digest) covers it.
    expect(name).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{16}$/);
    expect(await repo.readDocument('index', name)).toEqual(doc);
    if (encrypted) expect(body.includes(Buffer.from('ünïcødé'))).toBe(false);

    // Create-only: the same name is never overwritten.
    await expect(repo.writeDocument('index', name, { other: true })).rejects.toThrow();

    for (const pos of [0, 5, body.length >> 1, body.length - 1]) {
      await store.put(`index/${name}`, flip(body, pos));
      await expect(repo.readDocument('index', name), `byte ${pos}`).rejects.toBeInstanceOf(IntegrityError);
    }
    // Intact bytes under another name: the name is bound to the content.
    const other = '20991231T235959Z-0123456789abcdef';
    await store.put(`index/${other}`, body);
    await expect(repo.readDocument('index', other)).rejects.toBeInstanceOf(IntegrityError);

    // A run manifest round-trips under its own name.
    const manifest = { version: 1, id: '20261123T101500Z-3fa2c1', records: ['aa'.repeat(32)] };
    expect(await repo.writeDocument('runs', manifest.id, manifest)).toBe(manifest.id);
    expect(await repo.readDocument('runs', manifest.id)).toEqual(manifest);
    if (encrypted) {
      // A manifest's bytes are not accepted as an index file (different associated data).
      const mbody = await getBytes(store, `runs/${manifest.id}`);
      await store.put(`index/${manifest.id}`, mbody);
      await expect(repo.readDocument('index', manifest.id)).rejects.toBeInstanceOf(IntegrityError);
    }
    // A changed byte anywhere in a manifest is refused, encrypted (GCM) or not (SHA-256 trailer).
    const mbody = await getBytes(store, `runs/${manifest.id}`);
    for (const pos of [0, 5, Math.floor(mbody.length / 2), mbody.length - 1]) {
      await store.delete(`runs/${manifest.id}`);
      await store.put(`runs/${manifest.id}`, flip(mbody, pos));
      await expect(repo.readDocument('runs', manifest.id), `byte ${pos}`).rejects.toBeInstanceOf(IntegrityError);
    }
  });
});

describe('Packer: durability and flow control', () => {
  it('resolves stored only after the pack is written and onPackWritten has run', async () => {
    const store = new MemStore();
    const repo = await initRepo(store, true);
    let release!: () => void;
    const callbackGate = new Promise<void>((r) => (release = r));
    const written: WrittenPack[] = [];
    let packPresentInCallback = false;
    const packer = new Packer(repo, {
      onPackWritten: async (p) => {
        packPresentInCallback = (await listKeys(store, 'packs/')).includes(packKey(p.id));
        written.push(p);
        await callbackGate;
      },
    });
    const blobs = plaintexts(5).map((r) => repo.encodeBlob(r, BlobType.data));
    const results = [];
    for (const b of blobs) results.push(await packer.add(b));
    const states = results.map((r) => track(r.stored));

    // A pack below the target stays open: nothing written, nothing stored.
    await settle();
    expect(states.map((s) => s.state)).toEqual(Array(5).fill('pending'));
    expect(await listKeys(store, 'packs/')).toEqual([]);
    expect(written).toEqual([]);

    const flushing = packer.flush();
    const flushed = track(flushing);
    await settle();
    // Written, but the callback (which records it in the catalog) has not finished.
    expect(written).toHaveLength(1);
    expect(packPresentInCallback).toBe(true);
    expect(states.map((s) => s.state)).toEqual(Array(5).fill('pending'));
    expect(flushed.state).toBe('pending');

    release();
    await Promise.all(results.map((r) => r.stored));
    await flushing;
    expect(states.map((s) => s.state)).toEqual(Array(5).fill('resolved'));
    expect(flushed.state).toBe('resolved');
  });

  it('when stored resolves, the pack holding the blob is in the store', async () => {
    const store = new MemStore();
    const repo = await initRepo(store, false);
    const written: WrittenPack[] = [];
    const packer = new Packer(repo, { onPackWritten: (p) => void written.push(p) });
    const checks: Promise<void>[] = [];
    for (const raw of plaintexts(200, 5)) {
      const blob = repo.encodeBlob(raw, BlobType.data);
      const { stored } = await packer.add(blob);
      checks.push(
        stored.then(async () => {
          const pack = written.find((p) => p.entries.some((e) => e.id.equals(blob.id)));
          expect(pack).toBeDefined();
          const body = await getBytes(store, packKey(pack!.id));
          const { entries, blobArea } = repo.readPackHeader(body, pack!.id);
          const e = entries.find((x) => x.id.equals(blob.id))!;
          expect(repo.decodeBlob(blobArea.subarray(e.offset, e.offset + e.length), e, pack!.id).equals(raw)).toBe(true);
        }),
      );
    }
    await packer.flush();
    await Promise.all(checks);
    expect(written.length).toBeGreaterThan(1);
  });

  it('flush with nothing pending writes nothing, also after an earlier flush', async () => {
    const store = new MemStore();
    const repo = await initRepo(store, true);
    let calls = 0;
    const packer = new Packer(repo, { onPackWritten: () => void calls++ });
    const before = { ...store.stats };
    await packer.flush();
    expect(store.stats.put).toBe(before.put);
    expect(calls).toBe(0);
    expect(packer.packsWritten).toBe(0);

    await packer.add(repo.encodeBlob(Buffer.from('one blob'), BlobType.data));
    await packer.flush();
    expect(calls).toBe(1);
    const puts = store.stats.put;
    await packer.flush();
    await packer.flush();
    expect(store.stats.put).toBe(puts);
    expect(calls).toBe(1);
    expect(await listKeys(store, 'packs/')).toHaveLength(1);
  });

  it('sealOpen writes the open pack before it is full, so its blobs become stored; with nothing open it writes nothing', async () => {
    const store = new MemStore();
    const repo = await initRepo(store, true);
    const written: WrittenPack[] = [];
    const packer = new Packer(repo, { onPackWritten: (p) => void written.push(p) });
    const stored = [];
    for (const text of ['a', 'b', 'c']) stored.push((await packer.add(repo.encodeBlob(Buffer.from(`blob ${text}`), BlobType.data))).stored);
    const states = stored.map((p) => track(p));
    await settle();
    expect(states.map((s) => s.state)).toEqual(['pending', 'pending', 'pending']);
    await packer.sealOpen();
    await Promise.all(stored);
    expect(written).toHaveLength(1);
    expect(written[0]!.entries).toHaveLength(3);
    const puts = store.stats.put;
    await packer.sealOpen();
    await packer.flush();
    expect(store.stats.put).toBe(puts);
    expect(await listKeys(store, 'packs/')).toHaveLength(1);
  });

  it('applies back-pressure: with one upload slot taken, add does not return once another full pack is buffered', async () => {
    const store = new GatedStore();
    const repo = await initRepo(store, true);
    const packer = new Packer(repo, { maxUploads: 1, onPackWritten: () => {} });
    const blobs = plaintexts(400, 11).map((r) => repo.encodeBlob(r, BlobType.data));

    // Fill the first pack: it goes to the (free) upload slot and its PUT hangs.
    let i = 0;
    let buffered = 0;
    const storedOfFirst: Promise<void>[] = [];
    while (buffered < PACK_SIZE) {
      const b = blobs[i++]!;
      buffered += b.stored.length;
      storedOfFirst.push((await packer.add(b)).stored);
    }
    await store.heldCount(1);
    expect(store.held).toHaveLength(1);

    // Less than another pack: add keeps returning while the slot is busy.
    buffered = 0;
    for (;;) {
      const b = blobs[i]!;
      if (buffered + b.stored.length >= PACK_SIZE) break;
      buffered += b.stored.length;
      await packer.add(b);
      i++;
    }
    // This blob completes a second pack; there is nowhere to upload it.
    const blocked = track(packer.add(blobs[i++]!));
    await settle();
    expect(blocked.state).toBe('pending');
    expect(store.held).toHaveLength(1); // the second pack was not sent alongside the first
    const firstStates = storedOfFirst.map((p) => track(p));
    await settle();
    expect(firstStates.every((s) => s.state === 'pending')).toBe(true);

    // Freeing the slot lets the second pack go, and add returns.
    store.held[0]!.release();
    await Promise.all(storedOfFirst);
    await store.heldCount(2);
    await settle();
    expect(blocked.state).toBe('resolved');

    store.gate = false;
    store.held[1]!.release();
    for (; i < blobs.length; i++) await packer.add(blobs[i]!);
    await packer.flush();
    const packs = await listKeys(store.memory, 'packs/');
    expect(packs.length).toBe(packer.packsWritten);
    expect(store.stats.put - 1 /* config */).toBe(packs.length);
  });

  it('with the upload slot taken, concurrent callers cannot fill and seal more than one further pack', async () => {
    const store = new GatedStore();
    const repo = await initRepo(store, true);
    const packer = new Packer(repo, { maxUploads: 1, onPackWritten: () => {} });
    const blobs = plaintexts(1200, 23).map((r) => repo.encodeBlob(r, BlobType.data));
    let i = 0;
    for (let buffered = 0; buffered < PACK_SIZE; i++) {
      buffered += blobs[i]!.stored.length;
      await packer.add(blobs[i]!);
    }
    await store.heldCount(1);
    // Everything else at once, as 32 concurrent transfers would: about three packs more.
    const rest = blobs.slice(i);
    const pending = rest.map((b) => packer.add(b));
    const adds = pending.map((p) => track(p));
    await settle();
    const accepted = rest.filter((_, k) => adds[k]!.state === 'resolved').reduce((n, b) => n + b.stored.length, 0);
    const restBytes = rest.reduce((n, b) => n + b.stored.length, 0);
    expect(restBytes).toBeGreaterThan(3 * PACK_SIZE);
    // One more pack is filled and sealed (its last add waits for the slot); nothing beyond it.
    expect(accepted).toBeLessThan(PACK_SIZE);
    expect(adds.filter((a) => a.state === 'pending').length).toBeGreaterThan(rest.length / 2);
    store.gate = false;
    store.held[0]!.release();
    await Promise.all(pending);
    await packer.flush();
    expect(await listKeys(store.memory, 'packs/')).toHaveLength(packer.packsWritten);
  });

  it('an upload failure rejects stored and makes later add and flush throw', async () => {
    const store = new FailingStore();
    const repo = await initRepo(store, true);
    let callbacks = 0;
    const packer = new Packer(repo, { onPackWritten: () => void callbacks++ });
    store.failPacks = true;
    const blobs = plaintexts(150, 13).map((r) => repo.encodeBlob(r, BlobType.data));
    const stored: Promise<void>[] = [];
    let i = 0;
    // Exactly the blobs of the first pack: the last one seals it and its upload fails.
    for (let total = 0; total < PACK_SIZE; ) {
      total += blobs[i]!.stored.length;
      stored.push((await packer.add(blobs[i++]!)).stored);
    }
    await expect(stored[0]!).rejects.toThrow(/injected failure/);
    for (const s of stored) await expect(s).rejects.toBeInstanceOf(StorageError);
    expect(callbacks).toBe(0);
    expect(packer.packsWritten).toBe(0);

    await expect(packer.add(blobs[i]!)).rejects.toThrow(/injected failure/);
    await expect(packer.flush()).rejects.toThrow(/injected failure/);
    // Even once the store works again, the packer stays failed: blobs were lost.
    store.failPacks = false;
    await expect(packer.add(blobs[i]!)).rejects.toThrow(/injected failure/);
    await expect(packer.flush()).rejects.toThrow(/injected failure/);
    expect(await listKeys(store, 'packs/')).toEqual([]);
  });

  it('a failed upload also settles the blobs of packs still waiting for an upload slot', async () => {
    const store = new GatedStore();
    const repo = await initRepo(store, true);
    const packer = new Packer(repo, { maxUploads: 1, onPackWritten: () => {} });
    const blobs = plaintexts(400, 17).map((r) => repo.encodeBlob(r, BlobType.data));
    const all: { stored: Promise<void>; state: ReturnType<typeof track> }[] = [];
    let i = 0;
    let buffered = 0;
    while (buffered < PACK_SIZE) {
      buffered += blobs[i]!.stored.length;
      const { stored } = await packer.add(blobs[i++]!);
      all.push({ stored, state: track(stored) });
    }
    await store.heldCount(1);
    // The second pack: every blob but the last is added; the last one waits for the slot.
    buffered = 0;
    while (buffered + blobs[i]!.stored.length < PACK_SIZE) {
      buffered += blobs[i]!.stored.length;
      const { stored } = await packer.add(blobs[i++]!);
      all.push({ stored, state: track(stored) });
    }
    const blocked = packer.add(blobs[i++]!);
    const blockedState = track(blocked);
    await settle();
    expect(blockedState.state).toBe('pending');

    store.held[0]!.fail(new StorageError('ServerError', 'injected failure of the first pack'));
    await expect(blocked).rejects.toThrow(/injected failure/);
    await expect(packer.flush()).rejects.toThrow(/injected failure/);
    await settle();
    // No blob's stored promise may hang: every one of them was lost with the packer.
    const counts = (st: string) => all.filter((a) => a.state.state === st).length;
    expect({ rejected: counts('rejected'), pending: counts('pending') }).toEqual({ rejected: all.length, pending: 0 });
    expect(store.held).toHaveLength(1);
  });

  it('after a failed upload, flush rejects the stored promises of blobs still in the open pack', async () => {
    const store = new GatedStore();
    const repo = await initRepo(store, false);
    const packer = new Packer(repo, { onPackWritten: () => {} });
    const blobs = plaintexts(200, 19).map((r) => repo.encodeBlob(r, BlobType.data));
    let i = 0;
    const first: Promise<void>[] = [];
    for (let total = 0; total < PACK_SIZE; ) {
      total += blobs[i]!.stored.length;
      first.push((await packer.add(blobs[i++]!)).stored);
    }
    await store.heldCount(1);
    const open = [];
    for (let n = 0; n < 3; n++) open.push(track((await packer.add(blobs[i++]!)).stored));

    store.held[0]!.fail(new StorageError('ServerError', 'injected failure'));
    for (const s of first) await expect(s).rejects.toThrow(/injected failure/);
    await expect(packer.add(blobs[i]!)).rejects.toThrow(/injected failure/);
    await expect(packer.flush()).rejects.toThrow(/injected failure/);
    await settle();
    expect(open.map((s) => s.state)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(store.held).toHaveLength(1); // nothing else was sent
  });
});

describe('Packer: memory of the open pack', () => {
  it("copies a blob's stored bytes when it is added: the caller's Buffer is not held until the pack is sealed", async () => {
    const store = new MemStore();
    const repo = await initRepo(store, true);
    const written: WrittenPack[] = [];
    const packer = new Packer(repo, { onPackWritten: (p) => void written.push(p) });
    const raw = prng(3)(3000);
    const blob = repo.encodeBlob(raw, BlobType.data);
    const expected = Buffer.from(blob.stored);
    await packer.add(blob);
    // The blob's Buffer is free to be collected (or reused) once added: overwriting it must not
    // change the pack. Before, the open pack held every blob's Buffer and copied them at seal.
    blob.stored.fill(0);
    await packer.flush();
    const body = await getBytes(store, packKey(written[0]!.id));
    const { entries, blobArea } = repo.readPackHeader(body, written[0]!.id);
    expect(blobArea.subarray(0, entries[0]!.length).equals(expected)).toBe(true);
    expect(repo.decodeBlob(blobArea.subarray(0, entries[0]!.length), entries[0]!, 'p').equals(raw)).toBe(true);
  });

  it('builds the same bytes as concatenating the blobs, header and trailer, also when a blob or the header overflows the room', () => {
    const next = prng(11);
    const sizes = [10, 0, 500, 3000, 1, 70_000, 4096, 100];
    const parts = sizes.map((n) => next(n));
    const body = new PackBody();
    for (const p of parts) body.append(p, 4096);
    expect(body.length).toBe(sizes.reduce((a, b) => a + b, 0));
    const header = next(9000); // larger than the 256 bytes of header room a 4 KiB pack size leaves
    const trailer = Buffer.from([1, 2, 3, 4]);
    expect(body.finish(header, trailer).equals(Buffer.concat([...parts, header, trailer]))).toBe(true);
  });
});
