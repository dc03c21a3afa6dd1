import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

// RECORDED-RESPONSE TEST: the S3 test server (Ceph RGW) runs without its STS API, so AssumeRole
// is answered here by a local HTTP server replaying the STS response shape
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html). It checks our
// wiring (the endpoint, the parameters, the identity it is assumed with, the refresh), not STS.
describe('role_arn against a recorded STS response', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('assumes the role at the store endpoint with the profile given alongside, and renews it before it expires', async () => {
    const requests: { form: URLSearchParams; authorization: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        requests.push({ form: new URLSearchParams(body), authorization: req.headers.authorization ?? '' });
        // Four minutes left: inside the refresh margin, so every call renews.
        const expiration = new Date(Date.now() + 4 * 60_000).toISOString();
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIATEMP${requests.length}</AccessKeyId><SecretAccessKey>temp-secret</SecretAccessKey><SessionToken>token-${requests.length}</SessionToken><Expiration>${expiration}</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/lakeguard-backup/nightly</Arn><AssumedRoleId>AROAEXAMPLE:nightly</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>r-${requests.length}</RequestId></ResponseMetadata></AssumeRoleResponse>`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
      process.env.AWS_SHARED_CREDENTIALS_FILE = file('credentials', '[base]\naws_access_key_id = BASEKEY\naws_secret_access_key = basesecret\n');
      process.env.AWS_CONFIG_FILE = file('config', '');
      const spec = { roleArn: 'arn:aws:iam::123456789012:role/lakeguard-backup', profile: 'base', externalId: 'ext-7', sessionName: 'nightly', durationSeconds: 900 };
      const provider = credentialsProvider(spec, { label: 'the repository', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1' })!;
      const first = await provider();
      expect(first).toMatchObject({ accessKeyId: 'ASIATEMP1', secretAccessKey: 'temp-secret', sessionToken: 'token-1' });
      expect((await provider()).accessKeyId).toBe('ASIATEMP2');
      expect(requests).toHaveLength(2);
      const { form, authorization } = requests[0]!;
      expect(Object.fromEntries(form)).toMatchObject({
        Action: 'AssumeRole',
        RoleArn: 'arn:aws:iam::123456789012:role/lakeguard-backup',
        RoleSessionName: 'nightly',
        ExternalId: 'ext-7',
        DurationSeconds: '900',
      });
      expect(authorization).toContain('Credential=BASEKEY/');
    } finally {
      server.close();
    }
  });
});
