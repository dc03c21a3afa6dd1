// KMS wrapping of the master keys (issue 23, section 2), tested with an IN-PROCESS FAKE KMS
// (fakeKms below: AES-GCM under a per-key secret, the encryption context as associated data),
// not AWS KMS: no KMS-compatible server installs here. The wire protocol is tested apart, against
// recorded KMS responses (kms-recorded-cli.test.ts). Proven here: both the password and KMS are
// needed, either alone fails, a wrong KMS plaintext fails authentication, a KMS refusal is one
// error naming KMS (not "wrong password") and changes nothing, old repositories open as before.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCode, IntegrityError, LakeguardError, WrongPasswordError } from '../../src/errors.js';
import { parseConfig } from '../../src/repository/config-file.js';
import { deriveKey, open as openSealed, seal, unwrapMasterKeys, wrapMasterKeys } from '../../src/repository/crypto.js';
import { KMS_FORMAT_VERSION, combineWrappingKey, type KeyService } from '../../src/repository/kms.js';
import { removeKey } from '../../src/repository/keys.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { TEST_KDF, initRepo, tempDir } from '../helpers/fixtures.js';

const KEY_ID = 'arn:aws:kms:eu-west-1:111122223333:key/fake-1';

/** FAKE KMS, in process: a data key's "ciphertext blob" is keyId + AES-GCM(secret of the key, plaintext, aad = context). */
function fakeKms(): KeyService & { calls: string[]; mode: 'ok' | 'deny' | 'lie' } {
  const secrets = new Map<string, Buffer>([[KEY_ID, randomBytes(32)]]);
  const aad = (context: Record<string, string>) => Buffer.from(JSON.stringify(context));
  const kms = {
    calls: [] as string[],
    mode: 'ok' as 'ok' | 'deny' | 'lie',
    generateDataKey(keyId: string, context: Record<string, string>) {
      kms.calls.push(`GenerateDataKey ${keyId}`);
      const secret = secrets.get(keyId);
      if (kms.mode === 'deny' || secret === undefined) return Promise.reject(new LakeguardError(`KMS GenerateDataKey with key ${keyId} failed: AccessDeniedException`));
      const plaintext = randomBytes(32);
      return Promise.resolve({ plaintext, ciphertext: seal(secret, plaintext, aad(context)) });
    },
    decrypt(keyId: string, ciphertext: Buffer, context: Record<string, string>) {
      kms.calls.push(`Decrypt ${keyId}`);
      const secret = secrets.get(keyId);
      if (kms.mode === 'deny' || secret === undefined) return Promise.reject(new LakeguardError(`KMS Decrypt with key ${keyId} failed: AccessDeniedException`));
      if (kms.mode === 'lie') return Promise.resolve(randomBytes(32));
      return Promise.resolve(openSealed(secret, ciphertext, aad(context)));
    },
  };
  return kms;
}

describe('KMS wrapping of the master keys (fake in-process KMS)', () => {
  let dir: ReturnType<typeof tempDir>;
  let store: FsStore;
  let kms: ReturnType<typeof fakeKms>;
  beforeEach(() => {
    dir = tempDir('kms');
    store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    kms = fakeKms();
  });
  afterEach(() => dir.cleanup());

  const init = (password: string) => Repository.init(store, { password, kdf: { ...TEST_KDF }, kms: { keyId: KEY_ID, service: kms } });
  /** Opens with `password`, asking the fake KMS unless `withKms` is false. */
  const open = (password: string, withKms = true) => Repository.open(store, { password: async () => password, ...(withKms ? { keyService: kms } : {}) });
  const configJson = () => JSON.parse(readFileSync(join(dir.path, 'repo', 'config'), 'utf8')) as Record<string, any>;

  it('init writes version 3 with the KMS layer; the password and KMS together open it, with each added key', async () => {
    const created = await init('first');
    expect(kms.calls).toEqual([`GenerateDataKey ${KEY_ID}`]);
    const config = configJson();
    expect(config.version).toBe(KMS_FORMAT_VERSION);
    expect(config.encryption.kms.keyId).toBe(KEY_ID);
    const second = await created.addPassword('second', { ...TEST_KDF });
    const file = JSON.parse(readFileSync(join(dir.path, 'repo', 'keys', second), 'utf8')) as Record<string, any>;
    expect(file.kms.keyId).toBe(KEY_ID);
    expect(file.kms.dataKey).not.toBe(config.encryption.kms.dataKey); // each password has its own data key

    const byFirst = await open('first');
    expect(byFirst.openedWithKey).toBe('config');
    expect(byFirst.formatVersion).toBe(3);
    const bySecond = await open('second');
    expect(bySecond.openedWithKey).toBe(second);
    // Both opened the same master keys: the same keyed blob id.
    expect(bySecond.blobId(Buffer.from('same keys')).equals(byFirst.blobId(Buffer.from('same keys')))).toBe(true);
  });

  it('the password alone opens nothing: without KMS the error names KMS, not a wrong password', async () => {
    await init('first');
    const err = await open('first', false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LakeguardError);
    expect(err).not.toBeInstanceOf(WrongPasswordError);
    expect((err as Error).message).toContain(`KMS key ${KEY_ID}`);
    // Nor does the scrypt key alone unwrap the stored master keys.
    const config = configJson();
    expect(unwrapMasterKeys(await deriveKey('first', config.encryption.kdf), config.encryption.wrappedKey)).toBeNull();
  });

  it('KMS alone opens nothing: a wrong password with a working KMS is a wrong password; the data key alone unwraps nothing', async () => {
    await init('first');
    await expect(open('not-it')).rejects.toBeInstanceOf(WrongPasswordError);
    const config = configJson();
    const dataKey = await kms.decrypt(KEY_ID, Buffer.from(config.encryption.kms.dataKey, 'base64'), { 'lakeguard-repository': config.id });
    expect(unwrapMasterKeys(dataKey, config.encryption.wrappedKey)).toBeNull();
    // Both together (HKDF over the two) do.
    const both = combineWrappingKey(await deriveKey('first', config.encryption.kdf), dataKey);
    expect(unwrapMasterKeys(both, config.encryption.wrappedKey)).not.toBeNull();
  });

  it('a wrong plaintext from KMS fails authentication (wrong password, exit 12), never other keys', async () => {
    await init('first');
    kms.mode = 'lie';
    const err = await open('first').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrongPasswordError);
    expect((err as LakeguardError).exitCode).toBe(ExitCode.wrongPassword);
  });

  it('a KMS refusal is one error naming KMS (exit 1) at open and at key add, and changes nothing', async () => {
    const created = await init('first');
    const before = readFileSync(join(dir.path, 'repo', 'config'));
    kms.mode = 'deny';
    const atOpen = await open('first').catch((e: unknown) => e);
    expect(atOpen).toBeInstanceOf(LakeguardError);
    expect((atOpen as LakeguardError).exitCode).toBe(ExitCode.error);
    expect((atOpen as Error).message).toMatch(/^KMS Decrypt with key .* failed: AccessDeniedException$/);
    const atAdd = await created.addPassword('second', { ...TEST_KDF }).catch((e: unknown) => e);
    expect((atAdd as Error).message).toMatch(/^KMS GenerateDataKey/);
    expect(readFileSync(join(dir.path, 'repo', 'config')).equals(before)).toBe(true);
    expect(readdirSync(join(dir.path, 'repo')).includes('keys') ? readdirSync(join(dir.path, 'repo', 'keys')) : []).toEqual([]);
  });

  it("key passwd's removal of config's password keeps the KMS layer: the new password (with KMS) opens, the old does not", async () => {
    const created = await init('first');
    const second = await created.addPassword('second', { ...TEST_KDF });
    const result = await removeKey(await open('second'), 'config');
    expect(result.removed).toBe(true);
    expect(configJson().encryption.kms.keyId).toBe(KEY_ID);
    expect((await open('second')).openedWithKey).toBe(second);
    await expect(open('first')).rejects.toBeInstanceOf(WrongPasswordError);
    await expect(open('second', false)).rejects.toThrow(`KMS key ${KEY_ID}`);
  });

  it('a password-only key file planted in a KMS repository is skipped with a warning, never opens it', async () => {
    await init('first');
    const config = configJson();
    const dataKey = await kms.decrypt(KEY_ID, Buffer.from(config.encryption.kms.dataKey, 'base64'), { 'lakeguard-repository': config.id });
    const keys = unwrapMasterKeys(combineWrappingKey(await deriveKey('first', config.encryption.kdf), dataKey), config.encryption.wrappedKey)!;
    const planted = Buffer.from(JSON.stringify({ created: new Date().toISOString(), kdf: TEST_KDF, wrappedKey: wrapMasterKeys(await deriveKey('planted', TEST_KDF), keys) }));
    const id = createHash('sha256').update(planted).digest('hex');
    mkdirSync(join(dir.path, 'repo', 'keys'), { recursive: true });
    writeFileSync(join(dir.path, 'repo', 'keys', id), planted);
    const warnings: string[] = [];
    const err = await Repository.open(store, { password: async () => 'planted', keyService: kms, onWarning: (m) => warnings.push(m) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrongPasswordError);
    expect(warnings.join('\n')).toContain('no KMS layer, in a repository whose passwords all need one');
    // verify names it too.
    await expect((await open('first')).checkKeyFile(id)).rejects.toThrow(/no KMS layer, in a repository whose passwords all need one/);
  });

  it('a planted key file with a bad data key or another KMS key is skipped, never locks the other passwords out', async () => {
    const created = await init('first');
    const second = await created.addPassword('second', { ...TEST_KDF });
    const good = JSON.parse(readFileSync(join(dir.path, 'repo', 'keys', second), 'utf8')) as Record<string, any>;
    const plant = (kms: unknown) => {
      const body = Buffer.from(JSON.stringify({ ...good, kms }));
      writeFileSync(join(dir.path, 'repo', 'keys', createHash('sha256').update(body).digest('hex')), body);
    };
    plant({ keyId: KEY_ID, dataKey: randomBytes(60).toString('base64') }); // KMS refuses it (fake: authentication fails)
    plant({ keyId: 'arn:aws:kms:eu-west-1:999999999999:key/attacker', dataKey: good.kms.dataKey });
    const warnings: string[] = [];
    const openWarned = (password: string) => Repository.open(store, { password: async () => password, keyService: kms, onWarning: (m) => warnings.push(m) });
    await expect(openWarned('nope')).rejects.toBeInstanceOf(WrongPasswordError);
    expect(warnings).toHaveLength(2);
    expect(warnings.join('\n')).toContain("its KMS key arn:aws:kms:eu-west-1:999999999999:key/attacker is not the repository's");
    expect(kms.calls.some((c) => c.includes('attacker'))).toBe(false);
    expect((await openWarned('second')).openedWithKey).toBe(second);
  });

  it('a repository without KMS opens as before, with or without a KMS client, and never asks KMS', async () => {
    await initRepo(store, { password: 'plain' });
    expect(configJson().version).toBe(2);
    expect((await open('plain', false)).openedWithKey).toBe('config');
    expect((await open('plain')).openedWithKey).toBe('config');
    expect(kms.calls).toEqual([]);
  });

  it('refuses a config whose version and KMS layer disagree as altered', async () => {
    await init('first');
    const config = configJson();
    const asV2 = Buffer.from(JSON.stringify({ ...config, version: 2 }));
    expect(() => parseConfig(asV2, 'file:///r/')).toThrow(IntegrityError);
    expect(() => parseConfig(asV2, 'file:///r/')).toThrow(/format version 2 with a KMS layer/);
    const { kms: _dropped, ...withoutKms } = config.encryption;
    expect(() => parseConfig(Buffer.from(JSON.stringify({ ...config, encryption: withoutKms })), 'file:///r/')).toThrow(/format version 3 without a KMS layer/);
  });
});
