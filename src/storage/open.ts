import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import { storeCredentials, type CredentialsSpec } from './credentials.js';
import { FsStore } from './fs-store.js';
import { RetryingStore } from './retrying-store.js';
import { S3Store, type S3StoreOptions } from './s3-store.js';
import { splitS3Url } from './s3-url.js';
import type { ObjectStore } from './types.js';

/** Options that apply to S3 URLs (ignored for file:// URLs). */
export interface OpenStoreOptions {
  endpoint?: string;
  region?: string;
  credentials?: S3StoreOptions['credentials'];
  /** Where this store's credentials come from (overrides `credentials`); absent: the default chain. */
  credentialsFrom?: { spec: CredentialsSpec | undefined; label: string };
  maxSockets?: number;
  /** Parts of one multipart upload in flight (each holds a part of memory). */
  uploadConcurrency?: number;
}

const ACCEPTED = 's3://bucket[/prefix] or file:///absolute/directory';

/** `s3://bucket/prefix` → bucket and prefix ('' or ending in '/'), by the rules of s3-url.ts. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  if (!url.startsWith('s3://')) throw new UsageError(`not an S3 URL: ${url}`, { hint: `use ${ACCEPTED}` });
  const parsed = splitS3Url(url);
  if ('problem' in parsed && parsed.problem === 'bucket') {
    throw new UsageError(`invalid bucket name ${JSON.stringify(parsed.bucket)} in ${url}: ${parsed.reason}`, {
      hint: 'bucket names are 3 to 63 lowercase letters, digits, dots and hyphens',
    });
  }
  if ('problem' in parsed) throw new UsageError(`invalid prefix in ${url}: empty path segment ('//')`, { hint: `use ${ACCEPTED}` });
  return { bucket: parsed.bucket, prefix: parsed.prefix === '' ? '' : `${parsed.prefix}/` };
}

/** Open the store a repository or source URL names. */
export function openStore(url: string, opts: OpenStoreOptions = {}): ObjectStore {
  if (url.startsWith('s3://')) {
    const { bucket, prefix } = parseS3Url(url);
    return new S3Store({
      bucket,
      prefix,
      ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }),
      ...(opts.region === undefined ? {} : { region: opts.region }),
      ...(opts.credentials === undefined ? {} : { credentials: opts.credentials }),
      ...(opts.maxSockets === undefined ? {} : { maxSockets: opts.maxSockets }),
      ...(opts.uploadConcurrency === undefined ? {} : { uploadConcurrency: opts.uploadConcurrency }),
      ...(opts.credentialsFrom === undefined
        ? {}
        : storeCredentials(opts.credentialsFrom.spec, {
            label: opts.credentialsFrom.label,
            ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }),
            ...(opts.region === undefined ? {} : { region: opts.region }),
          })),
    });
  }
  if (url.startsWith('file:')) {
    let root: string;
    try {
      root = fileURLToPath(url);
    } catch (err) {
      throw new UsageError(`invalid file URL ${url}: ${(err as Error).message}`, { hint: `use ${ACCEPTED}`, cause: err });
    }
    if (!url.startsWith('file:///')) {
      throw new UsageError(`invalid file URL ${url}: it must name an absolute directory`, { hint: `use ${ACCEPTED}` });
    }
    // A directory has no retry of its own: EMFILE, EAGAIN and EBUSY are worth another try.
    return new RetryingStore(new FsStore({ root }));
  }
  throw new UsageError(`unsupported storage URL ${JSON.stringify(url)}`, { hint: `use ${ACCEPTED}` });
}
