/**
 * Repository cryptography: AES-256-GCM for blobs and headers, scrypt to turn a password into a
 * key-wrapping key, HMAC-SHA-256 for blob ids, HKDF-SHA-256 for purpose-bound subkeys.
 *
 * Sealed layout: 12-byte random nonce || ciphertext || 16-byte GCM tag. Random nonces are safe
 * for up to ~2^32 seals per key (collision probability ~2^-32), far beyond any repository's
 * blob count.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, randomFillSync, scrypt } from 'node:crypto';
import { IntegrityError } from '../errors.js';

const NONCE_LEN = 12;
const TAG_LEN = 16;
const KEY_LEN = 32;
export const SEAL_OVERHEAD = NONCE_LEN + TAG_LEN;

export interface KdfParams {
  algorithm: 'scrypt';
  N: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
}

/** N=2^15, r=8, p=1 (32 MiB, ~0.1 s) and a fresh 32-byte salt. Tests may lower N to 2^10. */
export function defaultKdfParams(): KdfParams {
  return { algorithm: 'scrypt', N: 2 ** 15, r: 8, p: 1, salt: randomBytes(32).toString('base64') };
}

// Refuse parameters that would exhaust memory: a tampered or mistyped config must not OOM us.
const MAX_SCRYPT_MEMORY = 1024 * 1024 * 1024;

function checkKdf(kdf: KdfParams): Buffer {
  if (kdf.algorithm !== 'scrypt') throw new IntegrityError(`unsupported key derivation algorithm ${JSON.stringify(kdf.algorithm)}`);
  const { N, r, p } = kdf;
  if (!Number.isSafeInteger(N) || N < 2 || (N & (N - 1)) !== 0) throw new IntegrityError(`scrypt N must be a power of two >= 2, got ${N}`);
  if (!Number.isSafeInteger(r) || r < 1 || r > 64) throw new IntegrityError(`scrypt r must be an integer in [1, 64], got ${r}`);
  if (!Number.isSafeInteger(p) || p < 1 || p > 64) throw new IntegrityError(`scrypt p must be an integer in [1, 64], got ${p}`);
  if (128 * N * r > MAX_SCRYPT_MEMORY) throw new IntegrityError(`scrypt parameters need more than 1 GiB of memory (N=${N}, r=${r})`);
  if (typeof kdf.salt !== 'string' || !isBase64(kdf.salt)) throw new IntegrityError('scrypt salt is not valid base64');
  const salt = Buffer.from(kdf.salt, 'base64');
  // We generate 32 bytes; 8 is only the floor for rejecting an obviously broken config.
  if (salt.length < 8) throw new IntegrityError(`scrypt salt must be at least 8 bytes, got ${salt.length}`);
  return salt;
}

/**
 * 32-byte key from a password. The password is NFC-normalized first so the same password typed
 * on systems that compose accents differently (macOS vs Linux) derives the same key.
 */
export function deriveKey(password: string, kdf: KdfParams): Promise<Buffer> {
  let salt: Buffer;
  try {
    salt = checkKdf(kdf);
  } catch (err) {
    return Promise.reject(err);
  }
  const { N, r, p } = kdf;
  // OpenSSL needs 128*r*(N+p+2) bytes; Node's default maxmem (32 MiB) is too small for N=2^15, r=8.
  const maxmem = 128 * r * (N + p + 2) + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_LEN, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export interface MasterKeys {
  encKey: Buffer;
  macKey: Buffer;
}

export function generateMasterKeys(): MasterKeys {
  return { encKey: randomBytes(KEY_LEN), macKey: randomBytes(KEY_LEN) };
}

function checkKey(key: Buffer): void {
  if (key.length !== KEY_LEN) throw new RangeError(`AES-256-GCM key must be ${KEY_LEN} bytes, got ${key.length}`);
}

/**
 * Nonces come from the CSPRNG in batches (one call per 1,024 seals instead of one each: a
 * seed seals one blob per small object); each 12 bytes of a batch are used once, then dropped.
 */
const NONCE_BATCH = 1024 * NONCE_LEN;
let nonces = Buffer.alloc(0);
let nonceAt = 0;

function takeNonce(into: Buffer): void {
  if (nonceAt + NONCE_LEN > nonces.length) {
    nonces = randomFillSync(Buffer.allocUnsafeSlow(NONCE_BATCH));
    nonceAt = 0;
  }
  nonces.copy(into, 0, nonceAt, nonceAt + NONCE_LEN);
  nonces.fill(0, nonceAt, nonceAt + NONCE_LEN);
  nonceAt += NONCE_LEN;
}

/** Encrypt and authenticate: nonce || ciphertext || tag. `aad` is authenticated but not stored. */
export function seal(key: Buffer, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  checkKey(key);
  const out = Buffer.allocUnsafe(plaintext.length + SEAL_OVERHEAD);
  const nonce = out.subarray(0, NONCE_LEN);
  takeNonce(nonce);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LEN });
  if (aad) cipher.setAAD(aad);
  const ct = cipher.update(plaintext);
  ct.copy(out, NONCE_LEN);
  const fin = cipher.final(); // empty for GCM, kept for correctness
  fin.copy(out, NONCE_LEN + ct.length);
  cipher.getAuthTag().copy(out, out.length - TAG_LEN);
  return out;
}

/** Inverse of `seal`. Throws IntegrityError if the data was altered, truncated, or the key/aad differ. */
export function open(key: Buffer, sealed: Uint8Array, aad?: Uint8Array): Buffer {
  checkKey(key);
  if (sealed.length < SEAL_OVERHEAD) {
    throw new IntegrityError(`authentication failed: sealed data is ${sealed.length} bytes, shorter than the ${SEAL_OVERHEAD}-byte overhead`);
  }
  const nonce = sealed.subarray(0, NONCE_LEN);
  const tag = sealed.subarray(sealed.length - TAG_LEN);
  const ct = sealed.subarray(NONCE_LEN, sealed.length - TAG_LEN);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LEN });
    decipher.setAuthTag(tag);
    if (aad) decipher.setAAD(aad);
    const pt = decipher.update(ct);
    const fin = decipher.final(); // throws on a bad tag; only then is `pt` trustworthy
    return fin.length === 0 ? pt : Buffer.concat([pt, fin]);
  } catch (err) {
    throw new IntegrityError('authentication failed: data was modified or the key is wrong', { cause: err });
  }
}

// Domain separation: a wrapped key blob can never be mistaken for any other sealed object.
const WRAP_AAD = Buffer.from('lakeguard master keys v1');

/**
 * base64(seal(wrappingKey, JSON {"v":1,"encKey":b64,"macKey":b64}, aad "lakeguard master keys v1")).
 * JSON so that later key material (e.g. a chunker key) can be added without a format break.
 */
export function wrapMasterKeys(wrappingKey: Buffer, keys: MasterKeys): string {
  checkKey(keys.encKey);
  checkKey(keys.macKey);
  const json = JSON.stringify({ v: 1, encKey: keys.encKey.toString('base64'), macKey: keys.macKey.toString('base64') });
  return seal(wrappingKey, Buffer.from(json, 'utf8'), WRAP_AAD).toString('base64');
}

/**
 * null when the wrapping key (password) is wrong. IntegrityError when the wrapped string is not
 * even shaped like a wrapped key, or decrypts to something that is not a key set.
 */
export function unwrapMasterKeys(wrappingKey: Buffer, wrapped: string): MasterKeys | null {
  if (typeof wrapped !== 'string' || !isBase64(wrapped)) throw new IntegrityError('wrapped master key is not valid base64');
  const sealed = Buffer.from(wrapped, 'base64');
  if (sealed.length <= SEAL_OVERHEAD) throw new IntegrityError(`wrapped master key is too short (${sealed.length} bytes)`);
  let plain: Buffer;
  try {
    plain = open(wrappingKey, sealed, WRAP_AAD);
  } catch (err) {
    if (err instanceof IntegrityError) return null;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(plain.toString('utf8'));
  } catch (err) {
    throw new IntegrityError('wrapped master key decrypts to invalid JSON', { cause: err });
  }
  const obj = parsed as { v?: unknown; encKey?: unknown; macKey?: unknown } | null;
  if (typeof obj !== 'object' || obj === null || obj.v !== 1) throw new IntegrityError('wrapped master key has an unknown version');
  const encKey = decodeKey(obj.encKey, 'encKey');
  const macKey = decodeKey(obj.macKey, 'macKey');
  return { encKey, macKey };
}

function decodeKey(v: unknown, name: string): Buffer {
  if (typeof v !== 'string' || !isBase64(v)) throw new IntegrityError(`wrapped master key: ${name} is not base64`);
  const key = Buffer.from(v, 'base64');
  if (key.length !== KEY_LEN) throw new IntegrityError(`wrapped master key: ${name} is ${key.length} bytes, expected ${KEY_LEN}`);
  return key;
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// Buffer.from(…, 'base64') silently skips junk; strictness keeps "corrupt" apart from "wrong password".
function isBase64(s: string): boolean {
  return BASE64_RE.test(s);
}

/**
 * Content address, lowercase hex. Keyed (HMAC-SHA-256) in encrypted repositories so ids do not
 * reveal whether a known file is stored; plain SHA-256 when there is no key.
 */
export function blobId(macKey: Buffer | null, data: Uint8Array): string {
  return blobIdBytes(macKey, data).toString('hex');
}

/** `blobId` as its 32 bytes (what the catalog and pack headers hold: no hex round trip per blob). */
export function blobIdBytes(macKey: Buffer | null, data: Uint8Array): Buffer {
  return macKey === null ? createHash('sha256').update(data).digest() : createHmac('sha256', macKey).update(data).digest();
}

/**
 * A 32-byte subkey for one purpose: HKDF-SHA-256 (RFC 5869) with `key` as input keying
 * material, an empty salt (so 32 zero bytes) and the ASCII `label` as info. The master key is
 * only ever the HMAC *message* here (HKDF-Extract = HMAC(zeros, key)), never an HMAC key, so
 * values keyed with the master key itself (blob ids) reveal nothing about a subkey.
 */
export function deriveSubkey(key: Buffer, label: string): Buffer {
  checkKey(key);
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), Buffer.from(label, 'ascii'), KEY_LEN));
}

/** HMAC-SHA-256, lowercase hex. */
export function hmacHex(key: Buffer, data: Uint8Array | string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}
