import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageError, UsageError } from '../../src/errors.js';
import { cached, credentialsProvider, parseProcessOutput, REFRESH_BEFORE_MS, storeCredentials } from '../../src/storage/credentials.js';

const dir = mkdtempSync(join(tmpdir(), 'lakeguard-credentials-'));
let fileNo = 0;
/** A fresh file per use: the SDK caches the shared config files it has read, by path. */
function file(name: string, text: string): string {
  const path = join(dir, `${name}-${++fileNo}`);
  writeFileSync(path, text);
  return path;
}

describe('credential_process output', () => {
  it('reads Version 1 JSON with and without a session', () => {
    expect(parseProcessOutput('{"Version":1,"AccessKeyId":"AK","SecretAccessKey":"SK"}')).toEqual({ accessKeyId: 'AK', secretAccessKey: 'SK' });
    expect(parseProcessOutput('{"Version":1,"AccessKeyId":"AK","SecretAccessKey":"SK","SessionToken":"T","Expiration":"2030-01-01T00:00:00Z"}')).toEqual({
      accessKeyId: 'AK',
      secretAccessKey: 'SK',
      sessionToken: 'T',
      expiration: new Date('2030-01-01T00:00:00Z'),
    });
  });

  it('refuses anything else without repeating a value', () => {
    expect(() => parseProcessOutput('AK SK')).toThrow('not JSON');
    expect(() => parseProcessOutput('{"Version":2,"AccessKeyId":"AK","SecretAccessKey":"SK"}')).toThrow('Version is not 1');
    expect(() => parseProcessOutput('{"Version":1,"AccessKeyId":"AK"}')).toThrow('SecretAccessKey is missing');
    expect(() => parseProcessOutput('{"Version":1,"AccessKeyId":"AK","SecretAccessKey":"hunter2","Expiration":"soon"}')).toThrow(/^Expiration is not an ISO 8601 time$/);
  });
});

describe('cached credentials', () => {
  it('keeps credentials until shortly before they expire, then fetches once for concurrent callers', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    let fetches = 0;
    const provider = cached(
      () => {
        fetches += 1;
        return Promise.resolve({ accessKeyId: `AK${fetches}`, secretAccessKey: 'SK', expiration: new Date(now + 3600_000) });
      },
      'the repository',
      () => now,
    );
    expect((await provider()).accessKeyId).toBe('AK1');
    now += 3600_000 - REFRESH_BEFORE_MS - 1;
    expect((await provider()).accessKeyId).toBe('AK1');
    now += 2;
    const [a, b] = await Promise.all([provider(), provider()]);
    expect([a.accessKeyId, b.accessKeyId, fetches]).toEqual(['AK2', 'AK2', 2]);
  });

  it('names what the credentials were for when a fetch fails, and asks again next time', async () => {
    let fail = true;
    const provider = cached(() => (fail ? Promise.reject(new Error('profile backup not found')) : Promise.resolve({ accessKeyId: 'AK', secretAccessKey: 'SK' })), 'the repository');
    const err = await provider().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('InvalidCredentials');
    expect((err as Error).message).toBe('no AWS credentials for the repository: profile backup not found');
    fail = false;
    expect((await provider()).accessKeyId).toBe('AK');
  });
});

describe('providers from a credentials section', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
  });
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('uses the default chain when there is none', () => {
    expect(credentialsProvider(undefined, { label: 'x' })).toBeUndefined();
    expect(storeCredentials(undefined, { label: 'x' })).toEqual({});
  });

  it("reads a profile's keys from the shared credentials file, whatever AWS_PROFILE says", async () => {
    process.env.AWS_SHARED_CREDENTIALS_FILE = file('credentials', '[lake]\naws_access_key_id = LAKEKEY\naws_secret_access_key = lakesecret\n[backup]\naws_access_key_id = BACKUPKEY\naws_secret_access_key = backupsecret\n');
    process.env.AWS_CONFIG_FILE = file('config', '');
    process.env.AWS_PROFILE = 'lake';
    const opened = storeCredentials({ profile: 'backup' }, { label: 'the repository' });
    expect(opened.profile).toBe('backup');
    expect(await opened.credentials!()).toMatchObject({ accessKeyId: 'BACKUPKEY', secretAccessKey: 'backupsecret' });
  });

  it('runs a credential_process command line through the shell', async () => {
    const script = file('creds.sh', '#!/bin/sh\necho "{\\"Version\\": 1, \\"AccessKeyId\\": \\"$1\\", \\"SecretAccessKey\\": \\"s\\"}"\n');
    chmodSync(script, 0o755);
    const provider = credentialsProvider({ credentialProcess: `${script} FROMPROCESS` }, { label: 'source bucket raw' })!;
    expect(await provider()).toEqual({ accessKeyId: 'FROMPROCESS', secretAccessKey: 's' });
    const failing = credentialsProvider({ credentialProcess: 'exit 3' }, { label: 'source bucket raw' })!;
    await expect(failing()).rejects.toThrow('the credential_process for source bucket raw failed (exit code 3)');
  });

  it('refuses a per-role profile that would send requests to an endpoint of its own', () => {
    process.env.AWS_CONFIG_FILE = file('config', '[profile backup]\nendpoint_url = http://127.0.0.1:9999\n');
    process.env.AWS_SHARED_CREDENTIALS_FILE = file('credentials', '');
    expect(() => storeCredentials({ profile: 'backup' }, { label: 'the repository' })).toThrow(UsageError);
    expect(() => storeCredentials({ profile: 'backup' }, { label: 'the repository' })).toThrow(
      'the AWS profile backup (credentials of the repository) sets endpoint_url: a per-role profile gives credentials and region only',
    );
  });
});
