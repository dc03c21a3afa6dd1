import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { hasRansomwareExtension, isExtensionSwap, RANSOM_NOTE_PATTERNS, RANSOM_NOTE_WORDS, ransomNoteMatcher } from '../../src/engine/anomaly-names.js';
import { ContentSniffer, formatOf, isIncompressible, isText, type ContentSample, type KnownFormat } from '../../src/engine/anomaly-sniff.js';
import { compressBlob } from '../../src/repository/compress.js';

/** A real Parquet file of `rows` rows. */
function parquet(rows: number): Buffer {
  const ids = Array.from({ length: rows }, (_, i) => i);
  const names = ids.map((i) => `customer-${i % 97}`);
  return Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'id', data: ids, type: 'INT32' }, { name: 'name', data: names, type: 'STRING' }] }));
}

/** Streams `bytes` through a sniffer in chunks of the given sizes (repeating the last), as the reader does. */
function sniff(bytes: Buffer, format: KnownFormat | undefined, chunkSizes: number[] = [65536], newBlobs?: { raw: number; stored: number }[]): ContentSample {
  const sniffer = new ContentSniffer(format);
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = chunkSizes[Math.min(i, chunkSizes.length - 1)]!;
    sniffer.update(bytes.subarray(at, at + n));
    at += n;
  }
  for (const b of newBlobs ?? []) sniffer.addBlob(b.raw, b.stored);
  return sniffer.sample();
}

/** Whether `bytes` stored under `key` have the format the key's extension names. */
function valid(key: string, bytes: Buffer): boolean {
  const format = formatOf(key);
  if (format === undefined) throw new Error(`no known format for ${key}`);
  return sniff(bytes, format).formatOk!;
}

describe('format signatures', () => {
  const pq = parquet(5000);

  it('a real Parquet file has PAR1 at both ends; random bytes of its size, a truncated copy or a cut-off head do not', () => {
    expect(pq.length).toBeGreaterThan(8192);
    expect(valid('lake/events/date=2026-12-01/part-0000.snappy.parquet', pq)).toBe(true);
    expect(valid('a.parquet', randomBytes(pq.length))).toBe(false);
    expect(valid('a.parquet', pq.subarray(0, pq.length - 100))).toBe(false);
    expect(valid('a.parquet', pq.subarray(100))).toBe(false);
    expect(valid('A.PARQUET', pq)).toBe(true);
  });

  it('judges head and tail right whatever the chunk sizes', () => {
    const broken = Buffer.concat([pq.subarray(0, pq.length - 1), Buffer.from('X')]);
    const text = Buffer.from('é'.repeat(5000));
    for (const sizes of [[1], [3, 5, 7], [4095, 1, 2], [4096], [pq.length - 3, 1, 1, 1], [10, pq.length]]) {
      expect(sniff(pq, 'parquet', sizes)).toMatchObject({ size: pq.length, formatOk: true });
      expect(sniff(broken, 'parquet', sizes).formatOk).toBe(false);
      expect(sniff(Buffer.concat([Buffer.from('PAR2'), pq.subarray(4)]), 'parquet', sizes).formatOk).toBe(false);
      expect(sniff(text, 'text', sizes).formatOk).toBe(true); // characters cut at every possible place
      expect(sniff(Buffer.concat([text.subarray(0, 3000), Buffer.from([0xff]), text.subarray(3000)]), 'text', sizes).formatOk).toBe(false);
    }
    expect(sniff(Buffer.from('PAR1PAR1'), 'parquet', [1]).formatOk).toBe(false); // too small for a footer
    expect(sniff(pq, undefined)).toMatchObject({ size: pq.length, formatOk: undefined });
  });

  it('gzip and zstd by their magic; .csv.gz checks the outer format', () => {
    const csv = Buffer.from('id,name\n' + Array.from({ length: 500 }, (_, i) => `${i},customer-${i}`).join('\n'));
    const gz = gzipSync(csv);
    const zst = compressBlob(csv).data;
    expect(valid('logs/day.csv.gz', gz)).toBe(true);
    expect(valid('logs/day.csv.gz', csv)).toBe(false);
    expect(valid('logs/day.gz', randomBytes(2000))).toBe(false);
    expect(valid('x.zst', zst)).toBe(true);
    expect(valid('x.zstd', gz)).toBe(false);
  });

  it('ORC and Avro by their head', () => {
    expect(valid('t/x.orc', Buffer.concat([Buffer.from('ORC'), randomBytes(100)]))).toBe(true);
    expect(valid('t/x.orc', randomBytes(100))).toBe(false);
    expect(valid('t/x.avro', Buffer.concat([Buffer.from('Obj\x01', 'latin1'), randomBytes(100)]))).toBe(true);
    expect(valid('t/x.avro', Buffer.from('Obj\x02rest', 'latin1'))).toBe(false);
  });

  it('JSON, CSV and text must be UTF-8 without NUL in the head; a character cut at the sample end is fine', () => {
    const text = Buffer.from('{"name":"Zoë","city":"Łódź"}\n'.repeat(400));
    expect(valid('a/b.json', text)).toBe(true);
    expect(valid('a/b.ndjson', text)).toBe(true);
    expect(valid('a/b.csv', randomBytes(5000))).toBe(false);
    expect(valid('a/b.tsv', Buffer.from('a\tb\u0000c'))).toBe(false);
    expect(valid('a/b.txt', Buffer.from([0x61, 0xc3]))).toBe(false); // the object ends inside a character
    // 'é' is 2 bytes: put its first byte at the sample's last position.
    const cut = Buffer.concat([Buffer.alloc(4095, 'a'), Buffer.from('é'), Buffer.alloc(10, 'b')]);
    expect(valid('a/b.jsonl', cut)).toBe(true);
    expect(isText(Buffer.from('plain'), false)).toBe(true);
  });

  it('an empty object is not judged; unknown extensions have no format', () => {
    expect(valid('x.parquet', Buffer.alloc(0))).toBe(true);
    expect(formatOf('x.bin')).toBeUndefined();
    expect(formatOf('_SUCCESS')).toBeUndefined();
    expect(formatOf('dir.parquet/file')).toBeUndefined();
    expect(formatOf('.parquet')).toBeUndefined();
  });
});

describe('incompressible new data', () => {
  /** A sample whose new blobs are what the packer really made of `bytes` (one blob). */
  function packed(bytes: Buffer): ContentSample {
    const c = compressBlob(bytes);
    return sniff(bytes, formatOf('x.bin'), [bytes.length], [{ raw: bytes.length, stored: c.data.length }]);
  }
  const text = Buffer.from(Array.from({ length: 2000 }, (_, i) => `${i},customer-${i % 50},2026-12-01T00:00:00Z`).join('\n'));

  it('random bytes after a version that compressed well are incompressible; compressible data is not', () => {
    expect(isIncompressible('t/x.bin', packed(randomBytes(64 * 1024)), 0.3)).toBe(true);
    expect(isIncompressible('t/x.bin', packed(text), 0.3)).toBe(false);
  });

  it('is judged only where compression was expected: an earlier version that compressed well, or text', () => {
    const noise = packed(randomBytes(64 * 1024));
    expect(isIncompressible('t/x.bin', noise, undefined)).toBe(false); // a new key of an unknown format
    expect(isIncompressible('t/x.bin', noise, 0.99)).toBe(false); // it never compressed
    expect(isIncompressible('t/x.csv', noise, undefined)).toBe(true); // text always compresses
  });

  it('needs at least 4 KiB of new data: deduplicated blobs are not new data', () => {
    expect(isIncompressible('t/x.csv', packed(randomBytes(4000)), 0.3)).toBe(false);
    expect(isIncompressible('t/x.csv', sniff(randomBytes(64 * 1024), 'text'), 0.3)).toBe(false); // every blob deduplicated
  });
});

describe('ransom notes and extension swaps', () => {
  const isNote = ransomNoteMatcher();

  it('matches well-known note names, case-insensitively, at any depth', () => {
    for (const key of [
      'HOW_TO_DECRYPT.txt',
      'lake/events/how_to_decrypt_files.html',
      'lake/DECRYPT-MY-FILES.txt',
      'README_TO_DECRYPT.txt',
      'x/RESTORE_FILES_INFO.txt',
      'x/recover-your-files.txt',
      'x/_readme.txt',
      'x/!!!READ_ME!!!.txt',
      'x/RANSOM_NOTE.md',
      'x/YOUR_FILES_ARE_ENCRYPTED.html',
    ]) {
      expect(isNote(key), key).toBe(true);
    }
  });

  it('does not match the files of an ordinary lake', () => {
    for (const key of [
      'README.md',
      'lake/events/_SUCCESS',
      'lake/events/_delta_log/00000000000000000001.json',
      'lake/events/.part-0000.snappy.parquet.crc',
      'lake/events/date=2026-12-01/part-0000.snappy.parquet',
      'docs/readme.txt',
      'restore.py',
      'x/',
    ]) {
      expect(isNote(key), key).toBe(false);
    }
  });

  it('every built-in pattern holds one of the words the matcher looks for first', () => {
    for (const pattern of RANSOM_NOTE_PATTERNS) expect(RANSOM_NOTE_WORDS.some((w) => pattern.toLowerCase().includes(w)), pattern).toBe(true);
  });

  it('adds the policy patterns to the built-in ones', () => {
    const withExtra = ransomNoteMatcher(['*_RECOVERY_*.txt']);
    expect(withExtra('lake/abc_recovery_1.TXT')).toBe(true);
    expect(isNote('lake/abc_recovery_1.TXT')).toBe(false);
  });

  it('an extension swap is a key deleted in the same run plus an extension, or a ransomware extension', () => {
    const deleted = new Set(['lake/a/part-0.parquet', 'lake/a/day.csv']);
    const wasDeleted = (k: string) => deleted.has(k);
    expect(isExtensionSwap('lake/a/part-0.parquet.x7k2q', wasDeleted)).toBe(true);
    expect(isExtensionSwap('lake/a/part-0.parquet.id-1234.[mail].locked', wasDeleted)).toBe(true);
    expect(isExtensionSwap('lake/a/day.csv.gz', wasDeleted)).toBe(false); // a conversion
    expect(isExtensionSwap('lake/a/other.parquet.x7k2q', wasDeleted)).toBe(false);
    expect(isExtensionSwap('lake/a/part-0.parquet', wasDeleted)).toBe(false);
    expect(hasRansomwareExtension('lake/a/part-1.parquet.LOCKED')).toBe(true);
    expect(hasRansomwareExtension('lake/a/part-1.parquet')).toBe(false);
    expect(hasRansomwareExtension('lake/a/locked')).toBe(false);
  });
});
