// Passwords of a repository (issue 23, section 2): list, add, remove (the last key and the key in
// use are refused), the password of `config` removed by rewriting config, opening with each
// key, and Object Lock keeping a key file.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError, WrongPasswordError } from '../../src/errors.js';
import { deriveKey, unwrapMasterKeys } from '../../src/repository/crypto.js';
import { readNewPassword } from '../../src/commands/new-password.js';
import { removeKey } from '../../src/repository/keys.js';
import { versionsOf } from '../../src/repository/remove.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { TEST_KDF, initRepo, tempDir } from '../helpers/fixtures.js';

const open = (store: ObjectStore, password: string) => Repository.open(store, { password: async () => password });

describe('repository keys', () => {
  let dir: ReturnType<typeof tempDir>;
  let store: FsStore;
  beforeEach(() => {
    dir = tempDir('keys');
    store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
  });
  afterEach(() => dir.cleanup());

  it('lists config and each key file with host and time, and which key opened the repository', async () => {
    const created = await initRepo(store, { password: 'first' });
    const second = await created.addPassword('second', { ...TEST_KDF });
    const byFirst = await open(store, 'first');
    expect(byFirst.openedWithKey).toBe('config');
    const bySecond = await open(store, 'second');
    expect(bySecond.openedWithKey).toBe(second);
    const keys = await bySecond.listKeys();
    expect(keys.map((k) => k.id)).toEqual(['config', second]);
    expect(keys[0]).toMatchObject({ created: created.config.created, host: null, problem: null });
    expect(keys[1]!.host).toBeTruthy();
    expect(Date.parse(keys[1]!.created!)).toBeGreaterThan(Date.now() - 60_000);
    // A damaged key file is listed with its problem, and never counts as a remaining key.
    writeFileSync(join(dir.path, 'repo', 'keys', 'ff-garbage'), 'garbage');
    expect((await bySecond.listKeys())[2]).toMatchObject({ id: 'ff-garbage', problem: 'not JSON' });
  });

  it('removes a key file; its password no longer opens, the others still do', async () => {
    const repo = await initRepo(store, { password: 'first' });
    const second = await repo.addPassword('second', { ...TEST_KDF });
    const third = await repo.addPassword('third', { ...TEST_KDF });
    const result = await removeKey(await open(store, 'first'), second.slice(0, 8));
    expect(result).toMatchObject({ removed: true, id: second });
    await expect(open(store, 'second')).rejects.toBeInstanceOf(WrongPasswordError);
    expect((await open(store, 'third')).openedWithKey).toBe(third);
    expect((await open(store, 'first')).openedWithKey).toBe('config');
  });

  it("removes config's password by rewriting config: same id and keys, MAC valid, the old password opens nothing", async () => {
    const repo = await initRepo(store, { password: 'leaked' });
    const second = await repo.addPassword('second', { ...TEST_KDF });
    const before = JSON.parse(readFileSync(join(dir.path, 'repo', 'config'), 'utf8'));
    const result = await removeKey(await open(store, 'second'), 'config');
    expect(result.removed).toBe(true);
    const after = JSON.parse(readFileSync(join(dir.path, 'repo', 'config'), 'utf8'));
    expect(after.id).toBe(before.id);
    expect(after.encryption.passwordRemoved).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(after.encryption.wrappedKey).not.toBe(before.encryption.wrappedKey);
    // An older reader tries config's wrapped key first: it must fail authentication (null), not throw.
    expect(unwrapMasterKeys(await deriveKey('leaked', after.encryption.kdf), after.encryption.wrappedKey)).toBeNull();
    await expect(open(store, 'leaked')).rejects.toBeInstanceOf(WrongPasswordError);
    const reopened = await open(store, 'second');
    expect(reopened.openedWithKey).toBe(second);
    expect((await reopened.listKeys()).map((k) => k.id)).toEqual([second]);
    // Same master keys: a blob id is unchanged.
    expect(reopened.blobId(Buffer.from('x')).equals(repo.blobId(Buffer.from('x')))).toBe(true);
    // The MAC covers the new field: taking it away is refused.
    delete after.encryption.passwordRemoved;
    writeFileSync(join(dir.path, 'repo', 'config'), JSON.stringify(after));
    await expect(open(store, 'second')).rejects.toThrow(/was altered/);
  });

  it('a passwordRemoved added to config by someone else is named as an altered config, not a wrong password', async () => {
    await initRepo(store, { password: 'first' });
    const config = JSON.parse(readFileSync(join(dir.path, 'repo', 'config'), 'utf8'));
    config.encryption.passwordRemoved = new Date().toISOString();
    writeFileSync(join(dir.path, 'repo', 'config'), JSON.stringify(config));
    await expect(open(store, 'first')).rejects.toThrow(/was altered \(its MAC does not match\)/);
    await expect(open(store, 'other')).rejects.toBeInstanceOf(WrongPasswordError);
  });

  it('refuses the last key and, unless forced, the key in use', async () => {
    await initRepo(store, { password: 'only' });
    const onlyOne = open(store, 'only').then((r) => removeKey(r, 'config', { force: true }));
    await expect(onlyOne).rejects.toThrow(/key config is the last password of the repository/);
    const second = await (await open(store, 'only')).addPassword('second', { ...TEST_KDF });
    // A damaged key file is no remaining key.
    writeFileSync(join(dir.path, 'repo', 'keys', 'ff-garbage'), '{}');
    const bySecond = await open(store, 'second');
    await expect(removeKey(bySecond, second)).rejects.toThrow(/is the password this command opened the repository with/);
    await expect(removeKey(bySecond, 'nothere1')).rejects.toBeInstanceOf(UsageError);
    await expect(removeKey(bySecond, second.slice(0, 4))).rejects.toThrow(/at least 8 characters/);
    expect((await removeKey(bySecond, second, { force: true })).removed).toBe(true);
    await expect(removeKey(await open(store, 'only'), 'config', { force: true })).rejects.toThrow(/last password/);
  });

  it('a key file whose removal waits for its retention is no remaining key', async () => {
    const repo = await initRepo(store, { password: 'first' });
    const second = await repo.addPassword('second', { ...TEST_KDF });
    const bySecond = await open(store, 'second');
    await expect(removeKey(bySecond, 'config', { pending: new Set([second]) })).rejects.toThrow(/key config is the last password/);
    // Removing the pending key itself again (its retention over) is fine: config remains.
    expect((await removeKey(await open(store, 'first'), second, { pending: new Set([second]) })).removed).toBe(true);
  });

  it('leaves a key file under Object Lock retention whole and says until when', async () => {
    const locked = new MemStore({ objectLock: true });
    const repo = await Repository.init(locked, { password: 'first', kdf: { ...TEST_KDF }, objectLock: { mode: 'GOVERNANCE', retentionDays: 30 } });
    const second = await repo.addPassword('second', { ...TEST_KDF });
    const result = await removeKey(await open(locked, 'first'), second);
    expect(result.removed).toBe(false);
    if (!result.removed) expect(result.lockedUntil.getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect((await open(locked, 'second')).openedWithKey).toBe(second);
    // config's password goes (a new config version); the old version stays retained below it.
    expect((await removeKey(await open(locked, 'second'), 'config')).removed).toBe(true);
    await expect(open(locked, 'first')).rejects.toBeInstanceOf(WrongPasswordError);
    expect((await versionsOf(locked, 'config')).filter((v) => !v.isDeleteMarker)).toHaveLength(2);
  });
});

describe('the new password of key add and key passwd', () => {
  it('comes from --new-password-file without its final line break; an empty one is refused with exit 12', async () => {
    const dir = tempDir('new-password');
    try {
      const file = join(dir.path, 'pw');
      writeFileSync(file, 'new secret\n');
      expect(await readNewPassword(file, 'key add')).toBe('new secret');
      writeFileSync(file, '\n');
      await expect(readNewPassword(file, 'key add')).rejects.toMatchObject({ exitCode: 12, message: expect.stringMatching(/^empty new password from the password file .*\(--new-password-file\)/) });
      // An unreadable file leaves no new password: exit 12, as an unreadable --password-file.
      await expect(readNewPassword(join(dir.path, 'missing'), 'key add')).rejects.toMatchObject({ exitCode: 12 });
    } finally {
      dir.cleanup();
    }
  });
});
