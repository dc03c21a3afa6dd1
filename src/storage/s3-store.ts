import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig, StorageClass } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { StorageError } from '../errors.js';
import { withRetry, type RetryOptions } from '../util/retry.js';
import { abortable } from './common.js';
import { leanCredentials, sdkEndpointReason } from './s3-endpoint.js';
import { toStorageError, type S3ErrorContext } from './s3-errors.js';
import type { SigningClock } from './s3-http.js';
import { LeanTransport } from './s3-lean-transport.js';
import { listObjects, listObjectVersions, type ListingContext } from './s3-listing.js';
import { copySourceHeader, encodeTags, nullVersion, toMeta, unquote } from './s3-object-fields.js';
import { SdkTransport } from './s3-sdk-transport.js';
import type { Credentials } from './s3-sigv4.js';
import type { S3PutFields, S3Transport, S3UploadOutput } from './s3-transport.js';
import { watchAbort } from '../util/abort-watch.js';
import {
  newRequestStats,
  type CopySource,
  type GetOptions,
  type GetResult,
  type ListItem,
  type ListOptions,
  type ObjectMeta,
  type ObjectRetention,
  type ObjectStore,
  type PutOptions,
  type PutResult,
  type RequestStats,
  type StoreCapabilities,
  type ThawOptions,
  type ThawState,
} from './types.js';

// Packs close just above their 16 MiB target: a single PUT (allowed up to 5 GiB) costs one
// request where multipart with 8 MiB parts costs five (create, 3 parts, complete).
export const DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** The largest object one CopyObject may copy (S3's limit); larger ones go by UploadPartCopy. */
export const MAX_SINGLE_COPY = 5 * 1024 * 1024 * 1024;
/**
 * Part size of a multipart copy: the server copies the bytes, so a part costs one request
 * whatever its size; 512 MiB keeps a 5 GiB object at 11 requests and each part well inside
 * a request timeout on a slow server.
 */
export const DEFAULT_COPY_PART_SIZE = 512 * 1024 * 1024;
/**
 * The idle timeout of every S3 request of this process that does not set its own (repository,
 * sources and restore targets alike): one setting of the command line (`--timeout`).
 */
let processRequestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS;

export function setRequestTimeout(ms: number): void {
  processRequestTimeoutMs = ms;
}
/** Attempts of a request that keeps timing out: each costs a whole timeout. */
const TIMED_OUT_ATTEMPTS = { read: 3, write: 2 } as const;
/** S3's limits of one multipart upload. */
const MAX_PARTS = 10_000;
const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;

/**
 * The part size for a body of `size` bytes: the store's own, or for an object too large for
 * 10,000 such parts (78 GiB at 8 MiB), the smallest whole MiB that fits it in 10,000 parts.
 * A stream of unknown size gets the store's size.
 */
export function partSizeFor(size: number | undefined, base: number): number {
  if (size === undefined || size <= base * MAX_PARTS) return base;
  const MiB = 1024 * 1024;
  return Math.min(MAX_PART_SIZE, Math.ceil(size / MAX_PARTS / MiB) * MiB);
}

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix the store is rooted at; a trailing '/' is added when missing. */
  prefix?: string;
  /** Custom endpoint (e.g. http://127.0.0.1:7480); implies path-style addressing. */
  endpoint?: string;
  region?: string;
  /** Static credentials or a provider; default: the AWS default credential chain. */
  credentials?: S3ClientConfig['credentials'];
  /**
   * The shared-config profile the SDK reads this store's settings from (region, endpoint_url),
   * when its credentials come from a profile of its own; default: AWS_PROFILE's. So a store
   * never takes the endpoint of another role's profile.
   */
  profile?: string;
  forcePathStyle?: boolean;
  /** Buffers up to this size go in one PutObject (default 64 MiB); larger ones and streams in multipart. */
  multipartThreshold?: number;
  /** Multipart part size (default 8 MiB). */
  partSize?: number;
  /** Parts of one multipart upload in flight at once (default 4). */
  uploadConcurrency?: number;
  /** Copies above this size go multipart (UploadPartCopy; default 5 GiB, S3's limit); smaller only for tests. */
  multipartCopyThreshold?: number;
  /** Part size of a multipart copy (default 512 MiB; at least 5 MiB, S3's minimum). */
  copyPartSize?: number;
  /** Keep-alive sockets per host (default 64). */
  maxSockets?: number;
  /** Keys per list request (default 1000, the S3 maximum); smaller only for tests. */
  listPageSize?: number;
  /**
   * Idle timeout of one request: no answer, or no body data, for this long fails the attempt
   * (also while a GET body is not being read). Default 60 s (`--timeout`). A server that
   * accepts connections and never answers (seen with a full Ceph cluster) costs this much per
   * attempt, so a timed-out request is tried at most twice when it writes, three times when it reads.
   */
  socketTimeoutMs?: number;
  /** The clock requests are signed with (default Date.now); tests make it wrong to check skew correction. */
  clock?: () => number;
  /** Backoff settings for our retries (attempts, delays, onRetry hook). */
  retry?: Omit<RetryOptions, 'signal'>;
  /** Use this SDK client (a test's stand-in) instead of building one; it serves every request, multipart too. */
  client?: S3Client;
}

/**
 * An S3 bucket (plus an optional key prefix) as an ObjectStore, on AWS or any S3-compatible
 * server (path-style addressing whenever an endpoint is given). Requests go through one
 * S3Transport, chosen here: the lean one where it sends them exactly where the SDK would
 * (s3-endpoint.ts), else the SDK's.
 *
 * Retries are ours, not the SDK's (`maxAttempts: 1`): every single request (a list page, a
 * HEAD, a GET up to its response headers, a PUT of a Buffer, a DELETE) runs in `withRetry`, so
 * throttling, 5xx and resets are retried with jittered backoff, Retry-After honoured, and every
 * attempt is counted in `stats`. Multipart uploads (lib-storage) cannot be retried per part
 * from outside: the SDK transport lets the SDK retry each part; a multipart upload of a Buffer
 * is additionally retried as a whole.
 */
export class S3Store implements ObjectStore {
  readonly location: string;
  readonly stats: RequestStats = newRequestStats();
  readonly capabilities: StoreCapabilities = { tags: true, versions: true, objectLock: true, serverSideCopy: true };
  readonly bucket: string;
  /** '' or ending in '/'. */
  readonly prefix: string;
  /** Every request of this store goes through it. */
  readonly transport: S3Transport;
  private readonly listing: ListingContext;
  get listPageSize(): number {
    return this.listing.pageSize;
  }
  /** The sockets of the transport (none with an injected client). */
  private readonly agents: http.Agent[] = [];
  private readonly endpoint: string | undefined;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly uploadConcurrency: number;
  private readonly multipartCopyThreshold: number;
  private readonly copyPartSize: number;
  private readonly retry: Omit<RetryOptions, 'signal'>;
  private readonly timeoutMs: number;

  constructor(opts: S3StoreOptions) {
    if (!opts.bucket) throw new StorageError('Other', 'S3 store: empty bucket name');
    this.bucket = opts.bucket;
    const p = (opts.prefix ?? '').replace(/^\/+/, '');
    this.prefix = p === '' || p.endsWith('/') ? p : `${p}/`;
    this.location = `s3://${this.bucket}/${this.prefix}`;
    this.endpoint = opts.endpoint?.replace(/\/+$/, '');
    this.multipartThreshold = opts.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD;
    this.partSize = Math.max(5 * 1024 * 1024, opts.partSize ?? DEFAULT_PART_SIZE);
    this.uploadConcurrency = opts.uploadConcurrency ?? 4;
    this.multipartCopyThreshold = Math.min(MAX_SINGLE_COPY, opts.multipartCopyThreshold ?? MAX_SINGLE_COPY);
    this.copyPartSize = Math.min(MAX_PART_SIZE, Math.max(5 * 1024 * 1024, opts.copyPartSize ?? DEFAULT_COPY_PART_SIZE));
    this.retry = opts.retry ?? {};
    this.timeoutMs = opts.socketTimeoutMs ?? processRequestTimeoutMs;
    // Shared by both paths: the SDK's clients start from what the lean one learnt (and a test's wrong clock).
    const clock: SigningClock = { base: opts.clock ?? Date.now, offsetMs: 0 };
    this.transport = opts.client ? new SdkTransport(this.bucket, { client: opts.client, clock }) : this.buildTransport(opts, clock);
    this.listing = {
      prefix: this.prefix,
      location: this.location,
      endpointLabel: this.endpointLabel(),
      pageSize: Math.min(1000, Math.max(1, opts.listPageSize ?? 1000)),
      transport: this.transport,
      send: (ctx, signal, call) => this.send('list', ctx, signal, call),
    };
  }

  /** The lean transport where it resolves the endpoint as the SDK would, else the SDK's. */
  private buildTransport(opts: S3StoreOptions, clock: SigningClock): S3Transport {
    const env = process.env;
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 64, keepAliveMsecs: 1000 };
    const agents = { http: new http.Agent(agentOpts), https: new https.Agent(agentOpts) };
    this.agents.push(agents.http, agents.https);
    const pathStyle = opts.forcePathStyle ?? this.endpoint !== undefined;
    // With an endpoint the region is ours to choose; on AWS the SDK finds it (after the environment: a profile's).
    const region = this.endpoint !== undefined ? (opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1') : opts.region;
    const timeouts = { connectTimeoutMs: Math.min(10_000, this.timeoutMs), socketTimeoutMs: this.timeoutMs };
    const profile = opts.profile;
    const sdk = new SdkTransport(this.bucket, { endpoint: this.endpoint, region, credentials: opts.credentials, profile, pathStyle, agents, clock, ...timeouts });
    const endpoint = { endpoint: this.endpoint, bucket: this.bucket, pathStyle };
    if (sdkEndpointReason(endpoint, profile === undefined ? env : { ...env, AWS_PROFILE: profile }) !== null) return sdk;
    const credentials = leanCredentials(opts.credentials as Credentials | (() => Promise<Credentials>) | undefined);
    return new LeanTransport(this.bucket, { ...endpoint, region: region ?? (env.AWS_REGION || undefined), credentials, agents, clock, ...timeouts }, sdk);
  }

  /** Close the sockets this store opened (an injected client is left alone). */
  destroy(): void {
    this.transport.destroy();
    for (const agent of this.agents) agent.destroy();
  }

  // ---------------------------------------------------------------- list

  list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ListItem> {
    return opts.versions ? listObjectVersions(this.listing, prefix, opts) : listObjects(this.listing, prefix, opts);
  }

  // ---------------------------------------------------------------- read

  async head(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<ObjectMeta> {
    const full = this.fullKey('HEAD', key);
    const res = await this.send(
      'head',
      { op: 'HEAD', key: full, action: opts.versionId ? 's3:GetObjectVersion' : 's3:GetObject', ...ver(opts.versionId) },
      opts.signal,
      () => this.transport.headObject(full, opts),
    );
    return toMeta(res, res.ContentLength ?? 0);
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    const full = this.fullKey('GET', key);
    const ctx: Omit<S3ErrorContext, 'bucket'> = {
      op: 'GET',
      key: full,
      action: opts.versionId ? 's3:GetObjectVersion' : 's3:GetObject',
      ...ver(opts.versionId),
    };
    const range = opts.range;
    if (range && (range.start < 0 || range.end < range.start)) {
      throw new StorageError('Other', `GET ${this.location}${key}: invalid range ${range.start}-${range.end}`, { backendCode: 'InvalidRange' });
    }
    const res = await this.send('get', ctx, opts.signal, () => this.transport.getObject(full, opts));
    // For a ranged GET, Content-Length is the range's; the object's size is in Content-Range.
    const total = res.ContentRange === undefined ? undefined : /\/(\d+)\s*$/.exec(res.ContentRange)?.[1];
    const size = total !== undefined ? Number(total) : (res.ContentLength ?? 0);
    const src = res.Body;
    const bodyCtx = (): S3ErrorContext => ({ ...ctx, op: 'GET (reading body)', bucket: this.bucket, endpoint: this.endpointLabel(), timeoutMs: this.timeoutMs });
    if (src && opts.bufferUpTo !== undefined && res.ContentLength !== undefined && res.ContentLength <= opts.bufferUpTo) {
      return wholeBody(await readWhole(src, res.ContentLength, this.stats, bodyCtx, opts.signal), toMeta(res, size));
    }
    const body = src ? this.countedBody(src, bodyCtx(), opts.signal) : Readable.from([], { objectMode: false });
    return { body: abortable(body, opts.signal), meta: toMeta(res, size) };
  }

  async getTags(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<Record<string, string>> {
    const full = this.fullKey('GET tagging', key);
    return this.send('get', { op: 'GET tagging', key: full, action: 's3:GetObjectTagging', ...ver(opts.versionId) }, opts.signal, () =>
      this.transport.getObjectTagging(full, opts),
    );
  }

  async versioningEnabled(opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    const status = await this.send('head', { op: 'GET versioning', action: 's3:GetBucketVersioning' }, opts.signal, () => this.transport.getBucketVersioning(opts.signal));
    // A suspended bucket still holds the versions written while it was enabled.
    return status === 'Enabled' || status === 'Suspended';
  }

  // ---------------------------------------------------------------- object lock

  async objectLockEnabled(opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    try {
      return await this.send('head', { op: 'GET object-lock', action: 's3:GetBucketObjectLockConfiguration' }, opts.signal, () =>
        this.transport.getObjectLockEnabled(opts.signal),
      );
    } catch (err) {
      // A bucket without Object Lock answers 404 ObjectLockConfigurationNotFoundError.
      if (err instanceof StorageError && err.code === 'NotFound') return false;
      throw err;
    }
  }

  async getRetention(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<ObjectRetention | null> {
    const full = this.fullKey('GET retention', key);
    try {
      const r = await this.send('head', { op: 'GET retention', key: full, action: 's3:GetObjectRetention', ...ver(opts.versionId) }, opts.signal, () =>
        this.transport.getObjectRetention(full, opts),
      );
      if (r?.Mode === undefined || r.RetainUntilDate === undefined) return null;
      return { mode: r.Mode as ObjectRetention['mode'], retainUntil: r.RetainUntilDate };
    } catch (err) {
      // "This object has no retention" is a 404 (NoSuchObjectLockConfiguration); a missing object is too,
      // so tell them apart by the backend code.
      if (err instanceof StorageError && err.code === 'NotFound' && /ObjectLockConfiguration/i.test(err.backendCode)) return null;
      throw err;
    }
  }

  async thaw(key: string, opts: ThawOptions): Promise<ThawState> {
    const full = this.fullKey('RESTORE', key);
    try {
      const status = await this.send('put', { op: 'RESTORE', key: full, action: 's3:RestoreObject' }, opts.signal, () =>
        this.transport.restoreObject(full, { days: opts.days, tier: opts.tier }, opts.signal),
      );
      return status === 200 ? 'ready' : 'started';
    } catch (err) {
      // 409: asked before and not done yet; asking again changes nothing.
      if (err instanceof StorageError && err.backendCode === 'RestoreAlreadyInProgress') return 'in-progress';
      throw err;
    }
  }

  async putRetention(key: string, retention: ObjectRetention, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<void> {
    const full = this.fullKey('PUT retention', key);
    await this.send('put', { op: 'PUT retention', key: full, action: 's3:PutObjectRetention', ...ver(opts.versionId) }, opts.signal, () =>
      this.transport.putObjectRetention(full, { Mode: retention.mode, RetainUntilDate: retention.retainUntil }, opts),
    );
  }

  // ---------------------------------------------------------------- write

  async put(key: string, body: Buffer | Readable, opts: PutOptions = {}): Promise<PutResult> {
    const full = this.fullKey('PUT', key);
    const ctx = { op: 'PUT', key: full, action: 's3:PutObject' };
    const fields: S3PutFields = {
      ...(opts.contentType === undefined ? {} : { ContentType: opts.contentType }),
      ...(opts.contentEncoding === undefined ? {} : { ContentEncoding: opts.contentEncoding }),
      ...(opts.cacheControl === undefined ? {} : { CacheControl: opts.cacheControl }),
      ...(opts.contentDisposition === undefined ? {} : { ContentDisposition: opts.contentDisposition }),
      ...(opts.metadata && Object.keys(opts.metadata).length > 0 ? { Metadata: opts.metadata } : {}),
      ...(opts.tags && Object.keys(opts.tags).length > 0 ? { Tagging: encodeTags(opts.tags) } : {}),
      ...(opts.sseKmsKeyId === undefined ? {} : { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: opts.sseKmsKeyId }),
      ...(opts.objectLock === undefined ? {} : { ObjectLockMode: opts.objectLock.mode, ObjectLockRetainUntilDate: opts.objectLock.retainUntil }),
      ...(opts.storageClass === undefined ? {} : { StorageClass: opts.storageClass as StorageClass }),
      ...(opts.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
    };

    if (Buffer.isBuffer(body) && body.length <= this.multipartThreshold) {
      const md5 = createHash('md5').update(body).digest('base64');
      const res = await this.send('put', ctx, opts.signal, () => this.transport.putObject(full, body, { ...fields, ContentMD5: md5 }, opts.signal));
      this.stats.bytesOut += body.length;
      return { etag: unquote(res.ETag), versionId: nullVersion(res.VersionId) };
    }
    if (Buffer.isBuffer(body)) {
      // A Buffer can be sent again: retry the whole multipart upload on top of per-part retries.
      const capped = timeoutCap(TIMED_OUT_ATTEMPTS.write);
      return withRetry(() => this.upload(key, full, body, fields, opts).catch((err: unknown) => Promise.reject(capped(err))), { ...this.retry, ...sig(opts.signal) });
    }
    return this.upload(key, full, body, fields, opts);
  }

  private async upload(key: string, full: string, body: Buffer | Readable, fields: S3PutFields, opts: PutOptions): Promise<PutResult> {
    const { signal, tags } = opts;
    const ctx: S3ErrorContext = { op: 'PUT', bucket: this.bucket, key: full, action: 's3:PutObject', endpoint: this.endpointLabel(), timeoutMs: this.timeoutMs };
    if (fields.IfNoneMatch !== undefined) {
      // If-None-Match goes on CompleteMultipartUpload too, but Ceph 16 ignores it there: check
      // first. (On such servers a writer racing between this HEAD and the completion can still
      // be overwritten; single PUTs, which cover every small object, are race-free.)
      const exists = await this.head(key, sig(signal)).then(
        () => true,
        (err: unknown) => {
          if (err instanceof StorageError && err.code === 'NotFound') return false;
          throw err;
        },
      );
      if (exists) {
        throw new StorageError('PreconditionFailed', `PUT s3://${this.bucket}/${full}: PreconditionFailed (412): the key already exists`, {
          backendCode: 'PreconditionFailed',
        });
      }
    }
    let out: S3UploadOutput;
    try {
      out = await this.transport.uploadObject(full, body, fields, {
        partSize: partSizeFor(Buffer.isBuffer(body) ? body.length : opts.size, this.partSize),
        queueSize: this.uploadConcurrency,
        signal,
        counted: (requests, bytesSent) => {
          this.stats.put += requests;
          this.stats.bytesOut += bytesSent;
        },
      });
    } catch (err) {
      signal?.throwIfAborted();
      throw toStorageError(err, ctx);
    }
    const versionId = nullVersion(out.VersionId);
    const vid = versionId === null ? {} : { versionId };
    if (out.multipart && fields.ObjectLockMode !== undefined && fields.ObjectLockRetainUntilDate !== undefined) {
      // Ceph 16 ignores the Object Lock headers of CreateMultipartUpload: set the retention on
      // the new version explicitly (the same mode and date again is a no-op where it was kept).
      const retention = { Mode: fields.ObjectLockMode, RetainUntilDate: new Date(fields.ObjectLockRetainUntilDate) };
      await this.send('put', { op: 'PUT retention', key: full, action: 's3:PutObjectRetention', ...ver(versionId ?? undefined) }, signal, () =>
        this.transport.putObjectRetention(full, retention, { ...vid, signal }),
      );
    }
    if (out.multipart && tags && Object.keys(tags).length > 0) {
      // Not every server applies x-amz-tagging of CreateMultipartUpload (Ceph 16 does not).
      await this.send('put', { op: 'PUT tagging', key: full, action: 's3:PutObjectTagging' }, signal, () => this.transport.putObjectTagging(full, tags, { ...vid, signal }));
    }
    let etag = unquote(out.ETag);
    if (etag === '') {
      // Ceph may answer CompleteMultipartUpload without an ETag: ask for it.
      const meta = await this.head(key, vid);
      etag = meta.etag;
    }
    return { etag, versionId };
  }

  async delete(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<void> {
    const full = this.fullKey('DELETE', key);
    await this.send(
      'delete',
      { op: 'DELETE', key: full, action: opts.versionId ? 's3:DeleteObjectVersion' : 's3:DeleteObject', ...ver(opts.versionId) },
      opts.signal,
      () => this.transport.deleteObject(full, opts),
    );
  }

  // ---------------------------------------------------------------- server-side copy

  /**
   * Copies a version of `from.key` onto `key` inside the bucket: one CopyObject (metadata and
   * tagging directives COPY) up to 5 GiB, else a multipart copy. No object byte passes
   * through this process; each request counts as a `put`.
   */
  async copyVersion(key: string, from: CopySource, opts: { signal?: AbortSignal } = {}): Promise<PutResult> {
    const full = this.fullKey('COPY', key);
    const source = copySourceHeader(this.bucket, this.fullKey('COPY', from.key), from.versionId);
    if (from.size > this.multipartCopyThreshold) return this.copyInParts(key, full, from, source, opts.signal);
    const res = await this.send('put', this.copyContext(full, from), opts.signal, () => this.transport.copyObject(full, source, opts.signal));
    return { etag: unquote(res.ETag), versionId: nullVersion(res.VersionId) };
  }

  /** `COPY s3://b/key (from ?versionId=V)` in error messages, and both permissions a copy needs. */
  private copyContext(full: string, from: CopySource): Omit<S3ErrorContext, 'bucket'> {
    const what = from.versionId === undefined ? '' : ` from version ${from.versionId}`;
    return { op: `COPY${what}`, key: full, action: `s3:PutObject and ${from.versionId === undefined ? 's3:GetObject' : 's3:GetObjectVersion'}` };
  }

  /**
   * A copy above the single-copy limit: the source's metadata and tags read first (a part copy
   * copies bytes only), CreateMultipartUpload with them, UploadPartCopy part by part (a few at
   * a time), CompleteMultipartUpload; the upload is aborted when any step fails, so no
   * invisible parts are left behind to be billed.
   */
  private async copyInParts(key: string, full: string, from: CopySource, source: string, signal: AbortSignal | undefined): Promise<PutResult> {
    const vid = from.versionId === undefined ? {} : { versionId: from.versionId };
    const meta = await this.head(from.key, { ...vid, ...sig(signal) });
    const tags = meta.tagCount ? await this.getTags(from.key, { ...vid, ...sig(signal) }) : {};
    const fields: S3PutFields = {
      ...(meta.contentType === undefined ? {} : { ContentType: meta.contentType }),
      ...(meta.contentEncoding === undefined ? {} : { ContentEncoding: meta.contentEncoding }),
      ...(meta.cacheControl === undefined ? {} : { CacheControl: meta.cacheControl }),
      ...(meta.contentDisposition === undefined ? {} : { ContentDisposition: meta.contentDisposition }),
      ...(Object.keys(meta.metadata).length > 0 ? { Metadata: meta.metadata } : {}),
      ...(Object.keys(tags).length > 0 ? { Tagging: encodeTags(tags) } : {}),
    };
    const ctx = this.copyContext(full, from);
    const { UploadId: uploadId } = await this.send('put', { ...ctx, op: `${ctx.op} (create multipart)` }, signal, () => this.transport.createMultipartUpload(full, fields, signal));
    try {
      const partSize = partSizeFor(meta.size, this.copyPartSize);
      const count = Math.max(1, Math.ceil(meta.size / partSize));
      const limit = pLimit(this.uploadConcurrency);
      const parts = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          limit(async () => {
            const range = { start: i * partSize, end: Math.min(meta.size, (i + 1) * partSize) - 1 };
            const got = await this.send('put', { ...ctx, op: `${ctx.op} (part ${i + 1} of ${count})` }, signal, () =>
              this.transport.uploadPartCopy(full, { uploadId, partNumber: i + 1, copySource: source, range }, signal),
            );
            return { PartNumber: i + 1, ETag: got.ETag };
          }),
        ),
      );
      const out = await this.send('put', { ...ctx, op: `${ctx.op} (complete multipart)` }, signal, () => this.transport.completeMultipartUpload(full, uploadId, parts, signal));
      const versionId = nullVersion(out.VersionId);
      const written = versionId === null ? {} : { versionId };
      if (Object.keys(tags).length > 0) {
        // Not every server applies x-amz-tagging of CreateMultipartUpload (Ceph 16 does not).
        await this.send('put', { op: 'PUT tagging', key: full, action: 's3:PutObjectTagging' }, signal, () => this.transport.putObjectTagging(full, tags, { ...written, ...sig(signal) }));
      }
      // Ceph may answer CompleteMultipartUpload without an ETag: ask for it.
      const etag = unquote(out.ETag) || (await this.head(key, written)).etag;
      return { etag, versionId };
    } catch (err) {
      await this.send('delete', { ...ctx, op: `${ctx.op} (abort multipart)` }, undefined, () => this.transport.abortMultipartUpload(full, uploadId)).catch(() => {});
      throw err;
    }
  }

  // ---------------------------------------------------------------- plumbing

  /** One request with our retries; every attempt counted; the transport's errors translated. */
  private async send<O>(
    stat: 'list' | 'get' | 'head' | 'put' | 'delete',
    ctx: Omit<S3ErrorContext, 'bucket'>,
    signal: AbortSignal | undefined,
    call: () => Promise<O>,
  ): Promise<O> {
    // Built on the first failure only: most requests have none (a seed makes one GET per object).
    let capped: ((err: unknown) => unknown) | undefined;
    return withRetry(
      async () => {
        this.stats[stat]++;
        try {
          return await call();
        } catch (err) {
          signal?.throwIfAborted();
          capped ??= timeoutCap(stat === 'put' || stat === 'delete' ? TIMED_OUT_ATTEMPTS.write : TIMED_OUT_ATTEMPTS.read);
          throw capped(toStorageError(err, { ...ctx, bucket: this.bucket, endpoint: this.endpointLabel(), timeoutMs: this.timeoutMs }));
        }
      },
      signal === undefined ? this.retry : { ...this.retry, signal },
    );
  }

  /** The body as a plain Readable that counts bytes and turns socket errors into StorageErrors. */
  private countedBody(src: Readable, ctx: S3ErrorContext, signal: AbortSignal | undefined): Readable {
    const stats = this.stats;
    async function* pump(): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of src) {
          const buf = chunk as Buffer;
          stats.bytesIn += buf.length;
          yield buf;
        }
      } catch (err) {
        signal?.throwIfAborted();
        throw toStorageError(err, ctx);
      } finally {
        if (!src.destroyed) src.destroy();
      }
    }
    return Readable.from(pump(), { objectMode: false });
  }

  private fullKey(op: string, key: string): string {
    if (key === '') throw new StorageError('Other', `${op} ${this.location}: empty key`);
    const full = this.prefix + key;
    if (Buffer.byteLength(full) > 1024) {
      throw new StorageError('Other', `${op} ${this.location}${key}: key longer than S3's 1024 bytes`, { backendCode: 'KeyTooLongError' });
    }
    return full;
  }

  private endpointLabel(): string {
    return this.endpoint ?? 'AWS S3';
  }
}

/**
 * Counts the timeouts of one request's attempts: the one that reaches `max` is no longer
 * retryable (each attempt of a server that never answers costs a whole timeout).
 */
function timeoutCap(max: number): (err: unknown) => unknown {
  let timeouts = 0;
  return (err) => {
    if (!(err instanceof StorageError) || err.backendCode !== 'TimeoutError' || !err.retryable || ++timeouts < max) return err;
    // "no answer from E within 60 s (PUT s3://b/k)" gets ", 2 attempts" inside its parentheses.
    return reclassify(err, false, err.message.endsWith(')') ? `${err.message.slice(0, -1)}, ${timeouts} attempts)` : `${err.message} (${timeouts} attempts)`);
  };
}

/** The same error, retryable or not. */
function reclassify(err: StorageError, retryable: boolean, message = err.message): StorageError {
  return new StorageError(err.code, message, {
    backendCode: err.backendCode,
    retryable,
    cause: err.cause,
    ...(err.hint === undefined ? {} : { hint: err.hint }),
    ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
  });
}

/**
 * Reads a body of `length` bytes (its Content-Length) whole, counting its bytes: one Buffer,
 * the socket's own chunk when the body came in one (no copy), without the async iterator,
 * generator and wrapping stream a streamed body costs per object. A body that fails or ends
 * early rejects (a StorageError, as reading it as a stream would throw; the abort reason when
 * `signal` aborted); a short or long body resolves with what came, for the caller's length check.
 */
function readWhole(src: Readable, length: number, stats: RequestStats, ctx: () => S3ErrorContext, signal: AbortSignal | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let first: Buffer | null = null;
    let parts: Buffer[] | null = null;
    let got = 0;
    let done = false;
    let forgetAbort: (() => void) | undefined;
    const finish = (err: unknown): void => {
      if (done) return;
      done = true;
      // 'error' stays listened to (by this, now a no-op): an error after the end must not be unhandled.
      src.off('data', onData);
      forgetAbort?.();
      if (err === null) {
        resolve(parts !== null ? Buffer.concat(parts, got) : (first ?? Buffer.alloc(0)));
        return;
      }
      if (!src.destroyed) src.destroy();
      if (signal?.aborted) reject(signal.reason);
      else reject(toStorageError(err, ctx()));
    };
    const onData = (chunk: Buffer): void => {
      got += chunk.length;
      stats.bytesIn += chunk.length;
      if (first === null) first = chunk;
      else (parts ??= [first]).push(chunk);
    };
    const onEnd = (): void => finish(null);
    // 'close' follows every 'end': the error (and its stack trace) only for a body that did not end.
    const onClose = (): void => {
      if (!done) finish(Object.assign(new Error(`the connection closed after ${got} of ${length} bytes`), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    const onAbort = (): void => finish(signal!.reason);
    if (signal?.aborted) {
      finish(signal.reason);
      return;
    }
    // One shared listener on the run's signal, not one added and removed per object.
    if (signal !== undefined) forgetAbort = watchAbort(signal, onAbort);
    src.on('data', onData);
    src.once('end', onEnd);
    src.once('error', finish);
    src.once('close', onClose);
  });
}

/** A GetResult of a body read whole: its stream only made when a caller asks for it. */
function wholeBody(bytes: Buffer, meta: ObjectMeta): GetResult {
  let body: Readable | undefined;
  return {
    bytes,
    meta,
    get body(): Readable {
      return (body ??= Readable.from(bytes.length === 0 ? [] : [bytes], { objectMode: false }));
    },
  };
}

function ver(versionId: string | undefined): { versionId?: string } {
  return versionId === undefined ? {} : { versionId };
}

function sig(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}
