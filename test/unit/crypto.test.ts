import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/errors.js';
import {
  blobId,
  defaultKdfParams,
  deriveKey,
  generateMasterKeys,
  open,
  seal,
  SEAL_OVERHEAD,
  unwrapMasterKeys,
  wrapMasterKeys,
  type KdfParams,
} from '../../src/repository/crypto.js';

// Fast scrypt for tests; production default is 2^15.
const fastKdf = (): KdfParams => ({ ...defaultKdfParams(), N: 2 ** 10 });

describe('seal / open', () => {
  const key = randomBytes(32);

  it('round-trips, with the documented layout', () => {
    for (const len of [0, 1, 15, 16, 17, 4096, 1024 * 1024 + 3]) {
      const pt = randomBytes(len);
      const sealed = seal(key, pt);
      expect(sealed.length).toBe(len + SEAL_OVERHEAD);
      expect(open(key, sealed).equals(pt)).toBe(true);
    }
    expect(SEAL_OVERHEAD).toBe(28);
  });

  it('accepts a plain Uint8Array and uses a fresh nonce each time', () => {
    const pt = new Uint8Array([1, 2, 3, 4]);
    const a = seal(key, pt);
    const b = seal(key, pt);
    expect(a.subarray(0, 12).equals(b.subarray(0, 12))).toBe(false);
    expect(a.equals(b)).toBe(false);
    expect([...open(key, new Uint8Array(a))]).toEqual([1, 2, 3, 4]);
  });

  it('never repeats a nonce across its batches of random nonces (3,000 seals, three batches)', () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 3000; i++) nonces.add(seal(key, new Uint8Array([i & 255])).subarray(0, 12).toString('hex'));
    expect(nonces.size).toBe(3000);
  });

  it('detects any single flipped bit (nonce, ciphertext, tag)', () => {
    const pt = randomBytes(100);
    const sealed = seal(key, pt);
    const len = sealed.length;
    const positions = [0, 5, 11, 12, 13, 50, 111, len - 16, len - 9, len - 1];
    for (const pos of positions) {
      for (const bit of [0, 3, 7]) {
        const bad = Buffer.from(sealed);
        bad[pos]! ^= 1 << bit;
        expect(() => open(key, bad), `byte ${pos} bit ${bit}`).toThrow(IntegrityError);
      }
    }
    expect(open(key, sealed).equals(pt)).toBe(true);
  });

  it('rejects truncated or extended input', () => {
    const sealed = seal(key, randomBytes(64));
    for (const n of [0, 1, 12, 27, 28, sealed.length - 1]) {
      expect(() => open(key, sealed.subarray(0, n)), `length ${n}`).toThrow(IntegrityError);
    }
    expect(() => open(key, sealed.subarray(1))).toThrow(IntegrityError);
    expect(() => open(key, Buffer.concat([sealed, Buffer.from([0])]))).toThrow(IntegrityError);
    expect(() => open(key, new Uint8Array(0))).toThrow(/authentication failed/);
  });

  it('rejects a wrong key', () => {
    const sealed = seal(key, Buffer.from('hello'));
    expect(() => open(randomBytes(32), sealed)).toThrow(IntegrityError);
    expect(() => open(randomBytes(32), sealed)).toThrow(/authentication failed/);
  });

  it('binds the additional data', () => {
    const aad = Buffer.from('pack 1234');
    const sealed = seal(key, Buffer.from('header'), aad);
    expect(open(key, sealed, aad).toString()).toBe('header');
    expect(() => open(key, sealed)).toThrow(IntegrityError);
    expect(() => open(key, sealed, Buffer.from('pack 1235'))).toThrow(IntegrityError);
    const noAad = seal(key, Buffer.from('header'));
    expect(() => open(key, noAad, aad)).toThrow(IntegrityError);
  });

  it('refuses keys of the wrong size (a programming error, not an integrity failure)', () => {
    expect(() => seal(randomBytes(16), Buffer.from('x'))).toThrow(RangeError);
    expect(() => open(randomBytes(31), randomBytes(40))).toThrow(RangeError);
  });
});

describe('key derivation and wrapping', () => {
  it('derives a deterministic 32-byte key from password and salt', async () => {
    const kdf = fastKdf();
    const a = await deriveKey('correct horse', kdf);
    const b = await deriveKey('correct horse', { ...kdf });
    expect(a.length).toBe(32);
    expect(a.equals(b)).toBe(true);
    expect((await deriveKey('correct horse!', kdf)).equals(a)).toBe(false);
    expect((await deriveKey('correct horse', fastKdf())).equals(a)).toBe(false); // other salt
  });

  it('matches scrypt known-answer (RFC 7914 section 12, vector 3, first 32 bytes)', async () => {
    const key = await deriveKey('pleaseletmein', {
      algorithm: 'scrypt',
      N: 16384,
      r: 8,
      p: 1,
      salt: Buffer.from('SodiumChloride').toString('base64'),
    });
    expect(key.toString('hex')).toBe('7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2');
  });

  it('normalizes the password to NFC', async () => {
    const kdf = fastKdf();
    const composed = await deriveKey('caf\u00e9', kdf);
    const decomposed = await deriveKey('cafe\u0301', kdf);
    expect(composed.equals(decomposed)).toBe(true);
  });

  it('has the documented defaults and handles N=2^15', async () => {
    const kdf = defaultKdfParams();
    expect(kdf).toMatchObject({ algorithm: 'scrypt', N: 2 ** 15, r: 8, p: 1 });
    expect(Buffer.from(kdf.salt, 'base64').length).toBe(32);
    expect(defaultKdfParams().salt).not.toBe(kdf.salt);
    expect((await deriveKey('pw', kdf)).length).toBe(32); // needs maxmem above Node's 32 MiB default
  });

  it('rejects bad KDF parameters', async () => {
    const ok = fastKdf();
    await expect(deriveKey('pw', { ...ok, N: 1000 })).rejects.toThrow(IntegrityError);
    await expect(deriveKey('pw', { ...ok, N: 2 ** 30 })).rejects.toThrow(/1 GiB/);
    await expect(deriveKey('pw', { ...ok, r: 0 })).rejects.toThrow(IntegrityError);
    await expect(deriveKey('pw', { ...ok, p: 1.5 })).rejects.toThrow(IntegrityError);
    await expect(deriveKey('pw', { ...ok, salt: 'not base64!' })).rejects.toThrow(/salt/);
    await expect(deriveKey('pw', { ...ok, salt: 'TmFDbA==' })).rejects.toThrow(/at least 8 bytes/);
    await expect(deriveKey('pw', { ...ok, algorithm: 'argon2' as 'scrypt' })).rejects.toThrow(/unsupported/);
  });

  it('wraps and unwraps master keys; a wrong password gives null', async () => {
    const kdf = fastKdf();
    const keys = generateMasterKeys();
    expect(keys.encKey.length).toBe(32);
    expect(keys.macKey.length).toBe(32);
    expect(keys.encKey.equals(keys.macKey)).toBe(false);
    const wrapped = wrapMasterKeys(await deriveKey('right', kdf), keys);
    expect(typeof wrapped).toBe('string');
    const back = unwrapMasterKeys(await deriveKey('right', kdf), wrapped);
    expect(back).not.toBeNull();
    expect(back!.encKey.equals(keys.encKey)).toBe(true);
    expect(back!.macKey.equals(keys.macKey)).toBe(true);
    expect(unwrapMasterKeys(await deriveKey('wrong', kdf), wrapped)).toBeNull();
  });

  it('treats a tampered wrapped key as a failed unwrap, and a malformed one as corrupt', () => {
    const wk = randomBytes(32);
    const wrapped = wrapMasterKeys(wk, generateMasterKeys());
    const bytes = Buffer.from(wrapped, 'base64');
    bytes[20]! ^= 1;
    expect(unwrapMasterKeys(wk, bytes.toString('base64'))).toBeNull();
    expect(() => unwrapMasterKeys(wk, 'not*base64')).toThrow(IntegrityError);
    expect(() => unwrapMasterKeys(wk, Buffer.alloc(10).toString('base64'))).toThrow(IntegrityError);
  });

  it('throws IntegrityError when authentic content is not a key set', () => {
    const wk = randomBytes(32);
    // Only a holder of the wrapping key can produce these, so this simulates a buggy writer.
    const reseal = (json: unknown): string =>
      seal(wk, Buffer.from(JSON.stringify(json)), Buffer.from('lakeguard master keys v1')).toString('base64');
    expect(unwrapMasterKeys(wk, reseal({ v: 1, encKey: randomBytes(32).toString('base64'), macKey: randomBytes(32).toString('base64') }))).not.toBeNull();
    expect(() => unwrapMasterKeys(wk, reseal({ v: 2, encKey: '', macKey: '' }))).toThrow(/version/);
    expect(() => unwrapMasterKeys(wk, reseal({ v: 1, encKey: randomBytes(16).toString('base64'), macKey: randomBytes(32).toString('base64') }))).toThrow(
      /encKey is 16 bytes/,
    );
    expect(() => unwrapMasterKeys(wk, reseal({ v: 1, encKey: randomBytes(32).toString('base64') }))).toThrow(/macKey/);
    const notJson = seal(wk, Buffer.from('{oops'), Buffer.from('lakeguard master keys v1')).toString('base64');
    expect(() => unwrapMasterKeys(wk, notJson)).toThrow(IntegrityError);
    // Sealed under the wrapping key but without the domain-separation aad: not a wrapped key.
    const other = seal(wk, Buffer.from(JSON.stringify({ v: 1 }))).toString('base64');
    expect(unwrapMasterKeys(wk, other)).toBeNull();
  });
});

describe('blobId', () => {
  it('is SHA-256 without a key (known answer for "abc")', () => {
    expect(blobId(null, Buffer.from('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(blobId(null, new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('is HMAC-SHA-256 with a key (RFC 4231 test case 2)', () => {
    expect(blobId(Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?'))).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('differs between keyed and unkeyed and between keys, and is stable', () => {
    const data = randomBytes(1000);
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const ids = [blobId(null, data), blobId(k1, data), blobId(k2, data)];
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(blobId(k1, data)).toBe(ids[1]);
    expect(blobId(k1, Buffer.from(data))).toBe(ids[1]);
  });
});
