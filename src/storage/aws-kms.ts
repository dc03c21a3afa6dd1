/**
 * AWS KMS over the SDK (JSON protocol, SigV4): GenerateDataKey and Decrypt for the KMS layer of
 * a repository's passwords (src/repository/kms.ts owns the format; this module only the wire).
 * The client is built on first use, so a repository without KMS never loads the SDK. The
 * endpoint is AWS's unless AWS_ENDPOINT_URL_KMS (read by the SDK) points elsewhere.
 */
import type * as ClientKms from '@aws-sdk/client-kms';
import { IntegrityError, LakeguardError } from '../errors.js';
import { requireCjs } from '../util/cjs.js';
import { storeCredentials, type CredentialsSpec } from './credentials.js';

/** Whose identity and region KMS is asked with: the repository's. */
export interface AwsKmsSettings {
  /** The repository's `credentials:`; undefined: the default AWS credential chain. */
  credentials: CredentialsSpec | undefined;
  /** The repository's region; a key given as an ARN names its own. */
  region: string | undefined;
  /** The repository's S3 endpoint, where a role_arn's STS requests go (never KMS's). */
  stsEndpoint: string | undefined;
}

const KMS_CONNECT_TIMEOUT_MS = 10_000;
const KMS_REQUEST_TIMEOUT_MS = 30_000;

const KEY_ARN = /^arn:[\w-]+:kms:([a-z0-9-]+):/;

/** KMS errors the operator fixes in IAM or the key policy: the hint says which permission. */
const DENIED = new Set(['AccessDeniedException', 'UnrecognizedClientException', 'InvalidSignatureException', 'ExpiredTokenException']);
/** The key cannot be used as it is. */
const KEY_STATE = new Set(['NotFoundException', 'DisabledException', 'KMSInvalidStateException', 'InvalidKeyUsageException']);
/** The stored data key is not one this key made for this repository. */
const WRONG_KEY = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);

/** GenerateDataKey and Decrypt against AWS KMS (the shape of repository/kms.ts's KeyService). */
export class AwsKeyService {
  private readonly clients = new Map<string, ClientKms.KMSClient>();
  constructor(private readonly settings: AwsKmsSettings) {}

  async generateDataKey(keyId: string, context: Record<string, string>): Promise<{ plaintext: Buffer; ciphertext: Buffer }> {
    const kms = kmsModule();
    const command = new kms.GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context });
    const client = this.client(keyId);
    const out = await attempt('GenerateDataKey', keyId, () => client.send(command));
    if (out.Plaintext === undefined || out.CiphertextBlob === undefined) {
      throw new LakeguardError(`KMS GenerateDataKey with key ${keyId} answered without a data key`, { hint: 'check AWS_ENDPOINT_URL_KMS points to AWS KMS or a compatible server' });
    }
    return { plaintext: Buffer.from(out.Plaintext), ciphertext: Buffer.from(out.CiphertextBlob) };
  }

  async decrypt(keyId: string, ciphertext: Buffer, context: Record<string, string>): Promise<Buffer> {
    const kms = kmsModule();
    const command = new kms.DecryptCommand({ KeyId: keyId, CiphertextBlob: ciphertext, EncryptionContext: context });
    const client = this.client(keyId);
    const out = await attempt('Decrypt', keyId, () => client.send(command));
    if (out.Plaintext === undefined) {
      throw new LakeguardError(`KMS Decrypt with key ${keyId} answered without a plaintext`, { hint: 'check AWS_ENDPOINT_URL_KMS points to AWS KMS or a compatible server' });
    }
    return Buffer.from(out.Plaintext);
  }

  private client(keyId: string): ClientKms.KMSClient {
    const region = KEY_ARN.exec(keyId)?.[1] ?? this.settings.region;
    const cacheKey = region ?? '';
    let client = this.clients.get(cacheKey);
    if (client === undefined) {
      const { credentials, profile } = storeCredentials(this.settings.credentials, {
        label: 'the repository (KMS)',
        ...(this.settings.stsEndpoint === undefined ? {} : { endpoint: this.settings.stsEndpoint }),
        ...(region === undefined ? {} : { region }),
      });
      client = new (kmsModule().KMSClient)({
        ...(region === undefined ? {} : { region }),
        ...(credentials === undefined ? {} : { credentials }),
        ...(profile === undefined ? {} : { profile }),
        maxAttempts: 3,
        // A blackholed endpoint must not hang a 3 a.m. restore: fail, name KMS, let them retry.
        requestHandler: { connectionTimeout: KMS_CONNECT_TIMEOUT_MS, requestTimeout: KMS_REQUEST_TIMEOUT_MS },
      });
      this.clients.set(cacheKey, client);
    }
    return client;
  }
}

async function attempt<T>(operation: string, keyId: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    throw kmsError(err, operation, keyId);
  }
}

let kmsSdk: typeof ClientKms | undefined;
function kmsModule(): typeof ClientKms {
  return (kmsSdk ??= requireCjs('@aws-sdk/client-kms') as typeof ClientKms);
}

/** One line naming KMS, the operation, the key and what to do; exit code 1 (never "wrong password", 12). */
export function kmsError(err: unknown, operation: string, keyId: string): LakeguardError {
  const e = err as { name?: string; message?: string; code?: string };
  const name = e.name ?? 'Error';
  const what = `KMS ${operation} with key ${keyId} failed: ${name}${e.message ? `: ${e.message}` : ''}`;
  const permission = operation === 'Decrypt' ? 'kms:Decrypt' : 'kms:GenerateDataKey';
  let hint: string;
  if (DENIED.has(name)) hint = `the repository's credentials need ${permission} on this key (docs/permissions.md, "KMS")`;
  else if (KEY_STATE.has(name)) hint = 'the KMS key must exist in this region and be enabled; a key scheduled for deletion can be cancelled within its waiting period';
  else if (WRONG_KEY.has(name)) hint = "the data key stored with the password was not made by this KMS key for this repository: the config or key file was altered, or the key's material changed";
  else if (/region is missing/i.test(e.message ?? '')) hint = 'set repository.region, or give the key as an ARN (arn:aws:kms:<region>:...)';
  else hint = 'KMS could not be reached: check the network, the region, and AWS_ENDPOINT_URL_KMS if set; then run the command again';
  // The stored data key is bad, not KMS access: IntegrityError, so that a planted key file is
  // skipped (named in a warning) instead of locking every other password out.
  if (WRONG_KEY.has(name)) return new IntegrityError(what, { hint, cause: err });
  return new LakeguardError(what, { hint, cause: err });
}
