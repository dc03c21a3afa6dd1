// RECORDED-RESPONSE TEST, NOT AWS KMS. No KMS-compatible server installs from npm or Debian here
// (moto is pip-only, local-kms is Go), so the KMS wire path of `lakeguard init`, `key add` and
// opening is tested against a local HTTP server that answers GenerateDataKey and Decrypt with
// responses recorded in the shape of the AWS KMS API (JSON 1.1 protocol, TrentService targets,
// `__type` errors). The CLI reaches it through the SDK's AWS_ENDPOINT_URL_KMS. What is real: the
// SDK client, SigV4 signing, the request fields lakeguard sends, the format written, the error
// lines and exit codes. What is not: KMS cryptography (the replayed data keys are fixed bytes).
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsKeyService } from '../../src/storage/aws-kms.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** Recorded GenerateDataKey answers (AWS KMS API shape), served in turn; Decrypt answers the one whose blob it is given. */
const RECORDED_DATA_KEYS = [
  {
    CiphertextBlob: 'AQIDAHhBb4rR1a0EGWFxyl7b4fR7Pj0l6J3ZkSXsnvYtnmBGWwFp1e9IusKZYvYOEpeR5ZphAAAAfjB8BgkqhkiG9w0BBwagbzBtAgEAMGgGCSqGSIb3DQEHATAeBglghkgBZQMEAS4wEQQM',
    Plaintext: 'VdzKNHGzUAzQsf1rZ2XxHbyp1yDrD4gCvuQpFtGMTbQ=',
  },
  {
    CiphertextBlob: 'AQIDAHhBb4rR1a0EGWFxyl7b4fR7Pj0l6J3ZkSXsnvYtnmBGWwG1c4GvJ0pHgTgMIt0qe1TJAAAAfjB8BgkqhkiG9w0BBwagbzBtAgEAMGgGCSqGSIb3DQEHATAeBglghkgBZQMEAS4wEQQN',
    Plaintext: 'mC3W2u+oQ0b1Y7H4nS0k3hJ9zLrE6fQpXv8yT2aB1cU=',
  },
];
/** A recorded AccessDeniedException body (KMS answers HTTP 400 with `__type`). */
const RECORDED_DENIAL = {
  __type: 'AccessDeniedException',
  message: `User: arn:aws:iam::111122223333:user/backup is not authorized to perform: kms:Decrypt on resource: ${KEY_ARN} because no identity-based policy allows the kms:Decrypt action`,
};

interface KmsRequest {
  target: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** The replaying server: `deny` answers every request with the recorded AccessDeniedException. */
function recordedKms(): { server: Server; requests: KmsRequest[]; state: { deny: boolean } } {
  const requests: KmsRequest[] = [];
  const state = { deny: false };
  let next = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      const target = String(req.headers['x-amz-target']);
      requests.push({ target, headers: req.headers, body });
      const answer = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `req-${requests.length}` });
        res.end(JSON.stringify(json));
      };
      if (state.deny) return answer(400, RECORDED_DENIAL);
      if (target === 'TrentService.GenerateDataKey') {
        const key = RECORDED_DATA_KEYS[next++ % RECORDED_DATA_KEYS.length]!;
        return answer(200, { ...key, KeyId: KEY_ARN });
      }
      if (target === 'TrentService.Decrypt') {
        const key = RECORDED_DATA_KEYS.find((k) => k.CiphertextBlob === body.CiphertextBlob);
        if (key === undefined) return answer(400, { __type: 'InvalidCiphertextException', message: '' });
        return answer(200, { KeyId: KEY_ARN, Plaintext: key.Plaintext, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
      }
      return answer(400, { __type: 'UnknownOperationException' });
    });
  });
  return { server, requests, state };
}

describe('KMS wrapping through the CLI, against RECORDED KMS responses (not AWS KMS)', () => {
  const dir = tempDir('kms-cli');
  const kms = recordedKms();
  let endpoint = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => kms.server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(kms.server.address() as AddressInfo).port}`;
    mkdirSync(join(dir.path, 'lake'));
    writeFileSync(join(dir.path, 'lake', 'a.txt'), 'hello');
    writeFileSync(
      join(dir.path, 'policy.yaml'),
      `version: 1\nrepository:\n  url: file://./repo\n  encryption_kms_key_id: ${KEY_ARN}\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n`,
    );
  });
  afterAll(async () => {
    await new Promise((resolve) => kms.server.close(resolve));
    dir.cleanup();
  });

  const cli = (password: string, args: string[], extra: Record<string, string> = {}) =>
    runCli(['--policy', join(dir.path, 'policy.yaml'), ...args], {
      LAKEGUARD_PASSWORD: password,
      LAKEGUARD_CACHE_DIR: join(dir.path, 'cache'),
      AWS_ENDPOINT_URL_KMS: endpoint,
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(dir.path, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir.path, 'no-aws-credentials'),
      ...extra,
    });

  // One CLI process costs a second or more on a busy 2-core box: a generous timeout.
  it('init asks GenerateDataKey, key add another, opening Decrypt; a denial or no KMS is exit 1 naming KMS', { timeout: 120_000 }, async () => {
    const init = await cli('first', ['init']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`passwords wrapped with the KMS key ${KEY_ARN} too`);
    const config = JSON.parse(readFileSync(join(dir.path, 'repo', 'config'), 'utf8')) as { id: string; version: number; encryption: { kms: unknown } };
    expect(config.version).toBe(3);
    expect(config.encryption.kms).toEqual({ keyId: KEY_ARN, dataKey: RECORDED_DATA_KEYS[0]!.CiphertextBlob });
    const generate = kms.requests[0]!;
    expect(generate.target).toBe('TrentService.GenerateDataKey');
    expect(generate.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(String(generate.headers.authorization)).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/kms\/aws4_request/);
    expect(generate.body).toEqual({ KeyId: KEY_ARN, KeySpec: 'AES_256', EncryptionContext: { 'lakeguard-repository': config.id } });

    const added = await cli('first', ['--json', 'key', 'add'], { LAKEGUARD_NEW_PASSWORD: 'second' });
    expect(added.code, added.stderr).toBe(0);
    expect(kms.requests.map((r) => r.target)).toEqual(['TrentService.GenerateDataKey', 'TrentService.Decrypt', 'TrentService.GenerateDataKey']);
    expect(kms.requests[1]!.body).toEqual({ KeyId: KEY_ARN, CiphertextBlob: RECORDED_DATA_KEYS[0]!.CiphertextBlob, EncryptionContext: { 'lakeguard-repository': config.id } });

    // A key file whose data key KMS refuses (InvalidCiphertextException) is skipped, not fatal.
    const keyFiles = readdirSync(join(dir.path, 'repo', 'keys'));
    const planted = Buffer.from(readFileSync(join(dir.path, 'repo', 'keys', keyFiles[0]!), 'utf8').replace(RECORDED_DATA_KEYS[1]!.CiphertextBlob, 'AAAA'));
    writeFileSync(join(dir.path, 'repo', 'keys', createHash('sha256').update(planted).digest('hex')), planted);

    const backup = await cli('second', ['backup']);
    expect(backup.code, backup.stderr).toBe(0);
    const listed = await cli('second', ['--json', 'key', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    const listedSummary = JSON.parse(listed.stdout.trim().split('\n').pop()!) as { kmsKeyId: string; keys: { id: string; current: boolean }[] };
    expect(listedSummary.kmsKeyId).toBe(KEY_ARN);
    const keys = listedSummary.keys;
    expect(keys.filter((k) => k.current)).toHaveLength(1);

    const configBefore = readFileSync(join(dir.path, 'repo', 'config'));
    kms.state.deny = true;
    const denied = await cli('first', ['key', 'list']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`KMS Decrypt with key ${KEY_ARN} failed: AccessDeniedException`);
    expect(denied.stderr).toContain('kms:Decrypt');
    expect(denied.stderr).not.toMatch(/wrong password/i);
    kms.state.deny = false;

    const unreachable = await cli('first', ['key', 'list'], { AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:9' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`KMS Decrypt with key ${KEY_ARN} failed`);
    expect(unreachable.stderr).toContain('KMS could not be reached');
    expect(readFileSync(join(dir.path, 'repo', 'config')).equals(configBefore)).toBe(true);

    // The password alone is not enough, but KMS plus the right password still is.
    // A wrong password tries every key file: the planted one is named and skipped (12, not 1).
    const wrong = await cli('nope', ['key', 'list']);
    expect(wrong.code, wrong.stderr).toBe(12);
    expect(wrong.stderr).toContain('skipped: not a usable key file (KMS Decrypt with key');
    expect(wrong.stderr).toContain('failed: InvalidCiphertextException');

    // A policy naming another key opens with the config's key, and says the setting is init's only.
    const otherKey = KEY_ARN.replace('1234abcd', '9999abcd');
    writeFileSync(join(dir.path, 'policy.yaml'), readFileSync(join(dir.path, 'policy.yaml'), 'utf8').replace(KEY_ARN, otherKey));
    const moved = await cli('first', ['key', 'list']);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toContain(`every password also needs the KMS key ${KEY_ARN}`);
    expect(moved.stderr).toContain(`repository.encryption_kms_key_id is ${otherKey}, but the passwords of`);
    expect(moved.stderr).toContain(`are wrapped with ${KEY_ARN}: the setting applies at init only`);
  });

  it("asks KMS with the repository's credentials (repository.credentials) and the key ARN's region", async () => {
    const saved = process.env.AWS_ENDPOINT_URL_KMS;
    process.env.AWS_ENDPOINT_URL_KMS = endpoint;
    try {
      const processJson = JSON.stringify({ Version: 1, AccessKeyId: 'AKIDREPOSITORYROLE', SecretAccessKey: 'repository-secret' });
      const service = new AwsKeyService({ credentials: { credentialProcess: `echo '${processJson}'` }, region: 'eu-west-1', stsEndpoint: undefined });
      const before = kms.requests.length;
      const { plaintext } = await service.generateDataKey(KEY_ARN, { 'lakeguard-repository': 'f'.repeat(32) });
      expect(plaintext.length).toBe(32);
      expect(String(kms.requests[before]!.headers.authorization)).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDREPOSITORYROLE\/\d{8}\/us-east-1\/kms\//);
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_KMS;
      else process.env.AWS_ENDPOINT_URL_KMS = saved;
    }
  });
});
