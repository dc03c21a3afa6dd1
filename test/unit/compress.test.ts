import { randomBytes } from 'node:crypto';
import { compress as zstdCompress } from 'zstd-napi';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/errors.js';
import { compressBlob, decompressBlob, KEEP_RATIO } from '../../src/repository/compress.js';

function jsonLines(n: number): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(JSON.stringify({ id: i, user: `user-${i % 97}`, event: i % 3 === 0 ? 'click' : 'view', amount: (i * 7919) % 10007, region: 'eu-west-1' }));
  }
  return Buffer.from(lines.join('\n'));
}

describe('compressBlob / decompressBlob', () => {
  it('round-trips text, compressing it', () => {
    const text = jsonLines(2000);
    const c = compressBlob(text);
    expect(c.compressed).toBe(true);
    expect(c.data.length).toBeLessThan(text.length / 3);
    expect(decompressBlob(c.data, true, text.length).equals(text)).toBe(true);
  });

  it('round-trips many sizes and levels, including a plain Uint8Array', () => {
    for (const len of [1, 10, 100, 4096, 65_537, 5 * 1024 * 1024]) {
      const data = new Uint8Array(jsonLines(Math.ceil(len / 40) + 1).subarray(0, len));
      for (const level of [1, 3, 19, -5]) {
        if (len > 1024 * 1024 && level === 19) continue; // slow, nothing new
        const c = compressBlob(data, level);
        expect(Buffer.isBuffer(c.data)).toBe(true);
        expect(decompressBlob(c.data, c.compressed, len).equals(Buffer.from(data))).toBe(true);
      }
    }
  });

  it('does not let one result alias the scratch buffer of the next', () => {
    const a = jsonLines(100);
    const b = jsonLines(150).subarray(500);
    const ca = compressBlob(a);
    const copy = Buffer.from(ca.data);
    compressBlob(b);
    expect(ca.data.equals(copy)).toBe(true);
  });

  it('borrows the scratch buffer only when asked: the same bytes, no copy, overwritten by the next call', () => {
    const a = jsonLines(100);
    const owned = compressBlob(a);
    const borrowed = compressBlob(a, 3, true);
    expect(borrowed.compressed).toBe(true);
    expect(borrowed.data.equals(owned.data)).toBe(true);
    expect(decompressBlob(borrowed.data, true, a.length).equals(a)).toBe(true);
    const next = compressBlob(jsonLines(90), 3, true);
    // Both views of one scratch buffer: the first result is not the caller's to keep.
    expect(next.data.buffer).toBe(borrowed.data.buffer);
    expect(owned.data.buffer).not.toBe(borrowed.data.buffer);
  });

  it('stores random (incompressible) bytes raw', () => {
    for (const len of [0, 1, 100, 4096, 1024 * 1024]) {
      const data = randomBytes(len);
      const c = compressBlob(data);
      expect(c.compressed).toBe(false);
      expect(c.data.equals(data)).toBe(true);
      expect(decompressBlob(c.data, false, len).equals(data)).toBe(true);
    }
  });

  it(`stores raw when zstd saves less than ${Math.round((1 - KEEP_RATIO) * 100)}%`, () => {
    // 98% random, 2% zeros: zstd shrinks it a little, not enough to keep.
    const data = Buffer.concat([randomBytes(98_000), Buffer.alloc(2000)]);
    expect(zstdCompress(data).length).toBeLessThan(data.length);
    expect(compressBlob(data).compressed).toBe(false);
    // 50% zeros: kept.
    const half = Buffer.concat([randomBytes(50_000), Buffer.alloc(50_000)]);
    expect(compressBlob(half).compressed).toBe(true);
  });

  it('rejects a wrong rawLength', () => {
    const text = jsonLines(500);
    const c = compressBlob(text);
    expect(c.compressed).toBe(true);
    for (const wrong of [0, text.length - 1, text.length + 1, text.length * 2]) {
      expect(() => decompressBlob(c.data, true, wrong), `rawLength ${wrong}`).toThrow(IntegrityError);
    }
    expect(() => decompressBlob(Buffer.from('abc'), false, 4)).toThrow(IntegrityError);
    expect(() => decompressBlob(Buffer.from('abc'), false, -1)).toThrow(IntegrityError);
    expect(() => decompressBlob(Buffer.from('abc'), false, 1.5)).toThrow(IntegrityError);
  });

  it('rejects garbage and damaged frames marked as compressed', () => {
    expect(() => decompressBlob(randomBytes(100), true, 100)).toThrow(IntegrityError);
    expect(() => decompressBlob(Buffer.alloc(0), true, 10)).toThrow(IntegrityError);
    const text = jsonLines(500);
    const c = compressBlob(text);
    expect(() => decompressBlob(c.data.subarray(0, c.data.length - 5), true, text.length)).toThrow(IntegrityError);
    expect(() => decompressBlob(Buffer.concat([c.data, Buffer.from([1, 2, 3])]), true, text.length)).toThrow(IntegrityError);
    // A frame claiming a huge size is bounded by rawLength, never allocated from its header.
    expect(() => decompressBlob(zstdCompress(Buffer.alloc(64 * 1024 * 1024)), true, 1000)).toThrow(/decompression failed/);
  });

  it('validates the level', () => {
    expect(() => compressBlob(Buffer.from('x'), 100)).toThrow(RangeError);
    expect(() => compressBlob(Buffer.from('x'), 2.5)).toThrow(RangeError);
  });
});
