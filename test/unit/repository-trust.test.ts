// The repository cannot be turned against its owner (issue 17, part 3): a swapped config, a
// forged config MAC, documents copied under other names, a hostile repository id, empty
// passwords, bad keys/ objects, and version 1 repositories (readable; writable after migrate).
import { createDecipheriv, createHmac } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { IntegrityError, WrongPasswordError } from '../../src/errors.js';
import { canonicalJson } from '../../src/repository/config.js';
import { deriveKey, unwrapMasterKeys } from '../../src/repository/crypto.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { runCli } from '../helpers/cli.js';
import { TEST_KDF, hashTree, initRepo, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';

const PASSWORD = 'trust-test-password';

describe('the repository cannot be turned against its owner', () => {
  let dir: ReturnType<typeof tempDir>;
  let repoDir: string;
  let lake: string;
  let policyFile: string;
  const env = (cache = 'cache', extra: Record<string, string> = {}) => ({ LAKEGUARD_PASSWORD: PASSWORD, LAKEGUARD_CACHE_DIR: join(dir.path, cache), ...extra });
  const cli = (args: string[], cache = 'cache', extra: Record<string, string> = {}) => runCli(['--policy', policyFile, ...args], env(cache, extra));
  const readConfig = () => JSON.parse(readFileSync(join(repoDir, 'config'), 'utf8'));
  const writeConfig = (config: unknown) => writeFileSync(join(repoDir, 'config'), JSON.stringify(config, null, 2) + '\n');
  const store = () => new FsStore({ root: repoDir, fsync: false });

  beforeEach(() => {
    dir = tempDir('trust');
    repoDir = join(dir.path, 'repo');
    lake = join(dir.path, 'lake');
    writeTree(lake, { 'a/1.json': '{"a":1}\n', 'a/2.json': '{"a":2}\n', 'b/3.csv': 'x,y\n1,2\n' });
    policyFile = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policyFile, `version: 1\nrepository:\n  url: file://${repoDir}\ngroups:\n  - name: local\n    sources:\n      - path: ${lake}\n`);
  });
  afterEach(() => dir.cleanup());

  /** An encrypted repository with one backup, built in-process (fast KDF). */
  async function backedUp(opts: { formatVersion?: 1 } = {}): Promise<{ repo: Repository; catalogPath: string }> {
    const repo = await Repository.init(store(), { password: PASSWORD, kdf: { ...TEST_KDF }, ...opts });
    const catalogPath = join(dir.path, 'catalog.db');
    const catalog = Catalog.open(catalogPath, repo.id);
    try {
      const group = { name: 'local', sources: [{ kind: 'path' as const, path: lake, prefixes: [''], exclude: [] }] };
      const summary = await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group });
      expect(summary.status).toBe('complete');
    } finally {
      catalog.close();
    }
    return { repo, catalogPath };
  }

  it('refuses a config swapped for "encryption: none": the next backup writes nothing, on this host or a fresh one', async () => {
    const { catalogPath } = await backedUp();
    // Any command on this host makes its catalog remember the repository (init does too).
    expect((await cli(['--catalog', catalogPath, 'runs'])).code).toBe(0);
    const original = readConfig();
    writeConfig({ ...original, encryption: { algorithm: 'none' } });
    writeTree(lake, { 'a/secret.txt': 'must never be stored in plaintext\n' });
    const swapped = hashTree(repoDir);

    // This host: the catalog remembers the repository as encrypted.
    const here = await cli(['--catalog', catalogPath, 'backup']);
    expect(here.code).toBe(1);
    expect(here.stderr).toMatch(/^lakeguard: config changed: file:\/\/.*config says encryption none, but the catalog .* knows the repository with encryption aes-256-gcm/);
    expect(here.stderr).toMatch(/put the original back/);
    expect(hashTree(repoDir)).toEqual(swapped);

    // A fresh host with an empty cache, and an id changed too: the policy says encrypted.
    writeConfig({ ...original, id: 'f'.repeat(32), encryption: { algorithm: 'none' } });
    const swappedAgain = hashTree(repoDir);
    const fresh = await cli(['backup'], 'cache-fresh');
    expect(fresh.code).toBe(1);
    expect(fresh.stderr).toMatch(/^lakeguard: config changed: .*config says encryption none, but the policy .*lakeguard\.yaml says the repository is encrypted/);
    // No policy at all (--repo): the sealed run manifest in the repository says encrypted.
    const bare = await runCli(['--repo', repoDir, 'runs'], env('cache-bare'));
    expect(bare.code).toBe(1);
    expect(bare.stderr).toMatch(/^lakeguard: config changed: .*config says encryption none, but runs\/\S+ is not an unencrypted document/);
    // --repo with a password given explicitly: the operator expects an encrypted repository.
    const passwordFile = join(dir.path, 'password');
    writeFileSync(passwordFile, PASSWORD);
    const withPassword = await runCli(['--repo', repoDir, '--password-file', passwordFile, 'runs'], env('cache-bare'));
    expect(withPassword.code).toBe(1);
    expect(withPassword.stderr).toMatch(/^lakeguard: config changed: .*config says encryption none, but a password was given \(--password-file\)/);
    expect(hashTree(repoDir)).toEqual(swappedAgain);
    for (const [name, hash] of hashTree(repoDir)) if (name !== 'config') expect(swapped.get(name), name).toBe(hash);
  });

  it('writes format version 2 as documented: config MAC under the HKDF subkey, documents sealed with their names', async () => {
    const { repo } = await backedUp();
    const config = readConfig();
    expect(config.version).toBe(2);
    const keys = unwrapMasterKeys(await deriveKey(PASSWORD, config.encryption.kdf), config.encryption.wrappedKey)!;
    // HKDF-SHA-256 by hand (RFC 5869): extract with an empty salt, expand one block.
    const prk = createHmac('sha256', Buffer.alloc(32)).update(keys.macKey).digest();
    const configMacKey = createHmac('sha256', prk).update(Buffer.concat([Buffer.from('lakeguard v2 config mac'), Buffer.from([1])])).digest();
    const unsigned = { ...config, encryption: { ...config.encryption, configMac: '' } };
    expect(config.encryption.configMac).toBe(createHmac('sha256', configMacKey).update(canonicalJson(unsigned)).digest('hex'));
    // A run manifest: nonce || ciphertext || tag, aad "lakeguard v2 runs/<id>".
    const [run] = await repo.listNames('runs');
    const body = readFileSync(join(repoDir, 'runs', run!));
    const decipher = createDecipheriv('aes-256-gcm', keys.encKey, body.subarray(0, 12));
    decipher.setAAD(Buffer.from(`lakeguard v2 runs/${run}`));
    decipher.setAuthTag(body.subarray(body.length - 16));
    const frame = Buffer.concat([decipher.update(body.subarray(12, body.length - 16)), decipher.final()]);
    expect(frame.readUInt32LE(1)).toBeGreaterThan(0);
    const [index] = await repo.listNames('index');
    expect(index).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{16}$/);
  });

  it('refuses a config whose MAC is a blob id (version 1 keyed both with the same key)', async () => {
    const repo = await initRepo(store(), { password: PASSWORD });
    const unsigned = { ...readConfig(), pack: { targetSize: 4096 } };
    unsigned.encryption.configMac = '';
    // Whoever gets this text backed up (an object in the lake) reads its blob id from a catalog.
    const forgedMac = repo.blobId(Buffer.from(canonicalJson(unsigned))).toString('hex');
    writeConfig({ ...unsigned, encryption: { ...unsigned.encryption, configMac: forgedMac } });
    const err = await Repository.open(store(), { password: async () => PASSWORD }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).message).toMatch(/config at file:\/\/.* was altered \(its MAC does not match\)/);
  });

  it('a config whose id was changed fails its MAC and leaves no catalog for that id behind', async () => {
    await backedUp();
    // The catalog opens early, while the keys are derived, from the config's id before its MAC is
    // checked: it may do so only for a catalog that already exists.
    const forgedId = 'f'.repeat(32);
    writeConfig({ ...readConfig(), id: forgedId });
    const result = await cli(['runs'], 'cache-forged');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^lakeguard: repository config at file:\/\/.* was altered \(its MAC does not match\)/);
    expect(existsSync(join(dir.path, 'cache-forged', forgedId))).toBe(false);
  });

  it('refuses an index file or run manifest copied under another name (format 2 and 1)', async () => {
    for (const formatVersion of [undefined, 1] as const) {
      const { repo } = await backedUp(formatVersion === undefined ? {} : { formatVersion });
      const [run] = await repo.listNames('runs');
      const [index] = await repo.listNames('index');
      const copies: [string, string][] = [
        [`runs/${run}`, 'runs/20991231T235959Z-abcdef'],
        [`index/${index}`, 'index/20991231T235959Z-0123456789abcdef'],
        [`index/${index}`, `index/${'e'.repeat(64)}`],
        [`runs/${run}`, `forgets/${run}-0001`],
      ];
      for (const [from, to] of copies) {
        mkdirSync(join(repoDir, to, '..'), { recursive: true });
        copyFileSync(join(repoDir, from), join(repoDir, to));
        const [d, name] = to.split('/') as ['runs' | 'index' | 'forgets', string];
        const err = await repo.readDocument(d, name).catch((e: unknown) => e);
        expect(err, `${from} -> ${to} (format ${formatVersion ?? 2})`).toBeInstanceOf(IntegrityError);
        expect((err as IntegrityError).message).toContain(`${repo.location}${to}: `);
      }
      // The originals still read.
      await expect(repo.readDocument('runs', run!)).resolves.toMatchObject({ id: run });
      dir.cleanup();
      dir = tempDir('trust');
      repoDir = join(dir.path, 'repo');
      lake = join(dir.path, 'lake');
      writeTree(lake, { 'a/1.json': '{"a":1}\n' });
    }
  });

  it('refuses a repository id that is not 32 hex digits before it names a catalog directory', async () => {
    await initRepo(store(), { password: null });
    writeConfig({ ...readConfig(), id: '../../escaped' });
    const r = await runCli(['--repo', repoDir, 'runs'], env('deep/cache'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lakeguard: repository config at file:\/\/.* has an invalid id "\.\.\/\.\.\/escaped" \(expected 32 lowercase hex digits\)/);
    expect(existsSync(join(dir.path, 'escaped'))).toBe(false);
    expect(existsSync(join(dir.path, 'deep'))).toBe(false);
  });

  it('init refuses an empty password from a file or a command (exit 12), as from the environment', async () => {
    const empty = join(dir.path, 'empty-password');
    writeFileSync(empty, '\n');
    const fromFile = await cli(['init', '--password-file', empty]);
    expect(fromFile.code).toBe(12);
    expect(fromFile.stderr).toMatch(/^lakeguard: empty password from the password file .*empty-password \(--password-file\)/);
    const fromCommand = await cli(['init'], 'cache', { LAKEGUARD_PASSWORD_COMMAND: 'printf ""' });
    expect(fromCommand.code).toBe(12);
    expect(fromCommand.stderr).toMatch(/^lakeguard: empty password from the output of the password command \(LAKEGUARD_PASSWORD_COMMAND\)/);
    expect(existsSync(join(repoDir, 'config'))).toBe(false);
  });

  it('names and skips a bad keys/ object; another password still opens; none opening is a wrong password', async () => {
    const repo = await initRepo(store(), { password: 'first' });
    await repo.addPassword('second', { ...TEST_KDF });
    // Listed before the good key file: '-' sorts before every hex digit.
    writeFileSync(join(repoDir, 'keys', '-0-not-json'), 'garbage');
    writeFileSync(join(repoDir, 'keys', '-1-no-fields'), '{}');
    writeFileSync(join(repoDir, 'keys', '-2-bad-kdf'), JSON.stringify({ kdf: { algorithm: 'scrypt', N: 3, r: 8, p: 1, salt: 'AAAAAAAAAAA=' }, wrappedKey: 'AAAA' }));
    const warnings: string[] = [];
    const opened = await Repository.open(store(), { password: async () => 'second', onWarning: (m) => warnings.push(m) });
    expect(opened.id).toBe(repo.id);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatch(/keys\/-0-not-json skipped: not a usable key file \(not JSON\)$/);
    expect(warnings[1]).toMatch(/keys\/-1-no-fields skipped: not a usable key file \(kdf or wrappedKey missing\)$/);
    expect(warnings[2]).toMatch(/keys\/-2-bad-kdf skipped: not a usable key file \(scrypt N must be a power of two/);
    await expect(Repository.open(store(), { password: async () => 'nope', onWarning: () => {} })).rejects.toBeInstanceOf(WrongPasswordError);
    // A byte changed in the wrapped key fails as a wrong password does: the hint says that it may be that.
    const config = readConfig();
    const wrapped = Buffer.from(config.encryption.wrappedKey, 'base64');
    wrapped[20]! ^= 1;
    writeConfig({ ...config, encryption: { ...config.encryption, wrappedKey: wrapped.toString('base64') } });
    const altered = await Repository.open(store(), { password: async () => 'first', onWarning: () => {} }).catch((e: unknown) => e);
    expect(altered).toBeInstanceOf(WrongPasswordError);
    expect((altered as WrongPasswordError).hint).toMatch(/if this password opened it before, compare config and keys\/ with a copy of the repository \(an altered wrapped key fails like a wrong password\)$/);
  });

  it("skips a key file copied from another repository with the same password, and opens with this one's", async () => {
    const repo = await initRepo(store(), { password: 'first' });
    await repo.addPassword('shared', { ...TEST_KDF });
    const otherDir = join(dir.path, 'other');
    const other = await initRepo(new FsStore({ root: otherDir, fsync: false }), { password: 'other' });
    const foreignName = await other.addPassword('shared', { ...TEST_KDF });
    // Planted so that it is listed before this repository's key file ('-' sorts before every hex digit).
    copyFileSync(join(otherDir, 'keys', foreignName), join(repoDir, 'keys', '-planted'));
    const warnings: string[] = [];
    const opened = await Repository.open(store(), { password: async () => 'shared', onWarning: (m) => warnings.push(m) });
    expect(opened.id).toBe(repo.id);
    expect(opened.openedWithKey).toMatch(/^[0-9a-f]{64}$/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/keys\/-planted skipped: the password opens it, but its master keys are not this repository's \(a key file from another repository\?\); remove it$/);
    // A config altered meanwhile is still named as one, not as a wrong password.
    writeConfig({ ...readConfig(), pack: { targetSize: 1024 } });
    await expect(Repository.open(store(), { password: async () => 'shared', onWarning: () => {} })).rejects.toThrow(/was altered \(its MAC does not match\)/);
  });

  it("refuses another repository's config copied here (same password): its id names that repository's catalog", async () => {
    const repo = await Repository.init(store(), { password: PASSWORD, kdf: { ...TEST_KDF } });
    const otherDir = join(dir.path, 'other');
    const otherLake = join(dir.path, 'other-lake');
    writeTree(otherLake, { 'o/1.json': '{"o":1}\n' });
    const other = await Repository.init(new FsStore({ root: otherDir, fsync: false }), { password: PASSWORD, kdf: { ...TEST_KDF } });
    const otherPolicy = join(dir.path, 'other.yaml');
    const writeOtherPolicy = (root: string) =>
      writeFileSync(otherPolicy, `version: 1\nrepository:\n  url: file://${root}\ngroups:\n  - name: other\n    sources:\n      - path: ${otherLake}\n`);
    writeOtherPolicy(otherDir);
    // One host backs up both; each command makes the catalog of each id remember where it is.
    expect((await cli(['backup'])).code).toBe(0);
    expect((await runCli(['--policy', otherPolicy, 'backup'], env())).code).toBe(0);
    const original = readFileSync(join(repoDir, 'config'));
    copyFileSync(join(otherDir, 'config'), join(repoDir, 'config'));
    const swapped = hashTree(repoDir);
    writeTree(lake, { 'a/new.json': '{"new":1}\n' });
    const backup = await cli(['backup']);
    expect(backup.code).toBe(1);
    expect(backup.stderr).toMatch(
      new RegExp(`^lakeguard: config changed: file://${repoDir}/config names repository ${other.id}, which the catalog \\S+ knows at file://${otherDir}/\n`),
    );
    expect(backup.stderr).toMatch(/put the original back; if the repository moved here, run `lakeguard catalog rebuild`/);
    expect(hashTree(repoDir)).toEqual(swapped);
    expect((await cli(['runs'])).code).toBe(1);
    // A fresh host has no catalog of that id: nothing here authenticates under that config's keys.
    const fresh = await cli(['backup'], 'cache-fresh');
    expect(fresh.code).toBe(1);
    expect(fresh.stderr).toMatch(
      new RegExp(`^lakeguard: config changed: file://${repoDir}/config opens with this password, but file://${repoDir}/runs/\\S+ and file://${repoDir}/index/\\S+ do not authenticate under its keys: the config of another repository\\?\n`),
    );
    expect(hashTree(repoDir)).toEqual(swapped);
    writeFileSync(join(repoDir, 'config'), original);
    expect((await cli(['runs'], 'cache-fresh')).code).toBe(0);
    expect((await cli(['backup'])).code).toBe(0);

    // A repository that really moved: refused the same way until its catalog is rebuilt there.
    const moved = join(dir.path, 'moved');
    renameSync(otherDir, moved);
    writeOtherPolicy(moved);
    expect((await runCli(['--policy', otherPolicy, 'runs'], env())).code).toBe(1);
    expect((await runCli(['--policy', otherPolicy, 'catalog', 'rebuild'], env())).code).toBe(0);
    const runs = await runCli(['--policy', otherPolicy, 'runs'], env());
    expect(runs.code).toBe(0);
    expect(runs.stdout).toMatch(/other\s+\S+ \S+\s+complete/);
    void repo;
  });

  it('a deleted config is named as deleted, not as no repository; init refuses to make another one over its objects', async () => {
    await backedUp();
    const original = readFileSync(join(repoDir, 'config'));
    rmSync(join(repoDir, 'config'));
    const left = hashTree(repoDir);
    const runs = await cli(['runs']);
    expect(runs.code).toBe(10);
    expect(runs.stderr).toMatch(new RegExp(`^lakeguard: no config at file://${repoDir}/, but file://${repoDir}/runs/\\S+ is there: the repository's config was deleted \\(or hidden by a delete marker\\)\n`));
    expect(runs.stderr).toMatch(/put config back from a copy of the repository/);
    const init = await cli(['init']);
    expect(init.code).toBe(2);
    expect(init.stderr).toMatch(new RegExp(`^lakeguard: file://${repoDir}/ has no config, but holds runs/\\S+: a repository whose config was deleted`));
    expect(hashTree(repoDir)).toEqual(left);
    writeFileSync(join(repoDir, 'config'), original);
    expect((await cli(['runs'])).code).toBe(0);
  });

  it('a version 1 repository restores as it is, refuses writes until `lakeguard migrate`, then backs up', async () => {
    const { catalogPath } = await backedUp({ formatVersion: 1 });
    const v1Config = readFileSync(join(repoDir, 'config'));
    expect(JSON.parse(v1Config.toString()).version).toBe(1);
    const withCatalog = (args: string[]) => cli(['--catalog', catalogPath, ...args]);

    const restored = await withCatalog(['restore', '--to-dir', join(dir.path, 'out1')]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(hashTree(join(dir.path, 'out1'))).toEqual(hashTree(lake));

    const before = hashTree(repoDir);
    const refused = await withCatalog(['backup']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^lakeguard: repository at file:\/\/.* has format version 1; lakeguard writes only to version 2\n.*run `lakeguard migrate` once/);
    expect(hashTree(repoDir)).toEqual(before);

    const migrated = await withCatalog(['migrate']);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toMatch(/migrated repository [0-9a-f]{32} at .* from format version 1 to 2\nsigned settings: encrypted \(aes-256-gcm, scrypt N=1024\), chunks/);
    expect(readConfig().version).toBe(2);

    writeTree(lake, { 'a/2.json': '{"a":"two"}\n', 'c/4.txt': 'new\n' });
    const backup = await withCatalog(['backup']);
    expect(backup.code, backup.stderr).toBe(0);
    // A fresh catalog from the repository alone reads the version 1 and version 2 documents.
    const rebuild = await cli(['catalog', 'rebuild'], 'cache-rebuilt');
    expect(rebuild.code, rebuild.stderr).toBe(0);
    expect(rebuild.stdout).toMatch(/ 2 runs, /);
    const latest = await cli(['restore', '--to-dir', join(dir.path, 'out2')], 'cache-rebuilt');
    expect(latest.code, latest.stderr).toBe(0);
    expect(hashTree(join(dir.path, 'out2'))).toEqual(hashTree(lake));

    // Putting the version 1 config back is a downgrade the catalog refuses.
    writeFileSync(join(repoDir, 'config'), v1Config);
    const downgraded = await withCatalog(['runs']);
    expect(downgraded.code).toBe(1);
    expect(downgraded.stderr).toMatch(/^lakeguard: config changed: .*config says format version 1, but the catalog .* knows the repository at format version 2/);
  });
});
