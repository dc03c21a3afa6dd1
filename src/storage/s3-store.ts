import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { StorageError } from '../errors.js';
import { compareKeys } from '../util/key-order.js';
import { withRetry, type RetryOptions } from '../util/retry.js';
import { abortable } from './common.js';
import { leanCredentials, sdkEndpointReason } from './s3-endpoint.js';
import { toStorageError, type S3ErrorContext } from './s3-errors.js';
import type { SigningClock } from './s3-http.js';
import { LeanTransport } from './s3-lean-transport.js';
import { SdkTransport } from './s3-sdk-transport.js';
import type { Credentials } from './s3-sigv4.js';
import type { S3ObjectHeaders, S3PutFields, S3Transport, S3UploadOutput } from './s3-transport.js';
import {
  newRequestStats,
  type GetOptions,
  type GetResult,
  type ListItem,
  type ListOptions,
  type ObjectEntry,
  type ObjectMeta,
  type ObjectRetention,
  type ObjectStore,
  type PrefixEntry,
  type PutOptions,
  type PutResult,
  type RequestStats,
} from './types.js';

// Packs close just above their 16 MiB target: a single PUT (allowed up to 5 GiB) costs one
// request where multipart with 8 MiB parts costs five (create, 3 parts, complete).
export const DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
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
  forcePathStyle?: boolean;
  /** Buffers up to this size go in one PutObject (default 64 MiB); larger ones and streams in multipart. */
  multipartThreshold?: number;
  /** Multipart part size (default 8 MiB). */
  partSize?: number;
  /** Parts of one multipart upload in flight at once (default 4). */
  uploadConcurrency?: number;
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
  readonly bucket: string;
  /** '' or ending in '/'. */
  readonly prefix: string;
  /** Every request of this store goes through it. */
  readonly transport: S3Transport;
  /** The sockets of the transport (none with an injected client). */
  private readonly agents: http.Agent[] = [];
  private readonly endpoint: string | undefined;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly uploadConcurrency: number;
  private readonly listPageSize: number;
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
    this.listPageSize = Math.min(1000, Math.max(1, opts.listPageSize ?? 1000));
    this.retry = opts.retry ?? {};
    this.timeoutMs = opts.socketTimeoutMs ?? processRequestTimeoutMs;
    // Shared by both paths: the SDK's clients start from what the lean one learnt (and a test's wrong clock).
    const clock: SigningClock = { base: opts.clock ?? Date.now, offsetMs: 0 };
    this.transport = opts.client ? new SdkTransport(this.bucket, { client: opts.client, clock }) : this.buildTransport(opts, clock);
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
    const sdk = new SdkTransport(this.bucket, { endpoint: this.endpoint, region, credentials: opts.credentials, pathStyle, agents, clock, ...timeouts });
    const endpoint = { endpoint: this.endpoint, bucket: this.bucket, pathStyle };
    if (sdkEndpointReason(endpoint) !== null) return sdk;
    const credentials = leanCredentials(opts.credentials as Credentials | (() => Promise<Credentials>) | undefined);
    return new LeanTransport(this.bucket, { ...endpoint, region: region ?? (env.AWS_REGION || undefined), credentials, agents, clock, ...timeouts }, sdk);
  }

  /** Close the sockets this store opened (an injected client is left alone). */
  destroy(): void {
    this.transport.destroy();
    for (const agent of this.agents) agent.destroy();
  }

  // ---------------------------------------------------------------- list

  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ListItem> {
    if (opts.versions) {
      yield* this.listVersions(prefix, opts);
      return;
    }
    const fullPrefix = this.prefix + prefix;
    let token: string | undefined;
    let first = true;
    // Where the next page must start: after the previous page's last key (or prefix).
    let after = opts.startAfter === undefined ? undefined : this.prefix + opts.startAfter;
    do {
      const startAfter = first ? after : undefined;
      const listed = await this.send(
        'list',
        { op: 'LIST', key: fullPrefix, action: 's3:ListBucket' },
        opts.signal,
        async () => {
          const got = await this.transport.listObjectsV2({
            prefix: fullPrefix,
            maxKeys: this.listPageSize,
            delimiter: opts.delimiter,
            signal: opts.signal,
            ...(startAfter === undefined ? {} : { startAfter }),
            ...(token === undefined ? {} : { continuationToken: token }),
          });
          // Inside the request: a page out of order is requested again, like one that does not parse.
          // (A common prefix may hold startAfter itself, so only earlier pages bound the first page's prefixes.)
          // Keys decoded once, here: the order check and the entries below share them.
          const keys = (got.Contents ?? []).map((e) => decodeKey(e.Key ?? ''));
          const prefixKeys = (got.CommonPrefixes ?? []).map((e) => decodeKey(e.Prefix ?? ''));
          this.checkPageOrder(fullPrefix, after, true, keys);
          this.checkPageOrder(fullPrefix, startAfter === undefined ? after : undefined, true, prefixKeys);
          return { got, keys, prefixKeys };
        },
      );
      first = false;
      const { got: page, keys, prefixKeys } = listed;
      const objects: ObjectEntry[] = (page.Contents ?? []).map((o, i) => ({
        kind: 'object',
        key: this.relative(keys[i]!),
        size: o.Size ?? 0,
        etag: unquote(o.ETag),
        lastModified: o.LastModified ?? new Date(0),
        versionId: null,
        isLatest: true,
        isDeleteMarker: false,
        ...(o.StorageClass ? { storageClass: o.StorageClass } : {}),
      }));
      const prefixes: PrefixEntry[] = prefixKeys.map((k) => ({ kind: 'prefix', prefix: this.relative(k) }));
      for (const last of [keys.at(-1), prefixKeys.at(-1)]) {
        if (last !== undefined && (after === undefined || compareKeys(last, after) > 0)) after = last;
      }
      yield* mergeSorted(objects, prefixes);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  private async *listVersions(prefix: string, opts: ListOptions): AsyncGenerator<ListItem> {
    const fullPrefix = this.prefix + prefix;
    let keyMarker = opts.startAfter === undefined ? undefined : this.prefix + opts.startAfter;
    let versionIdMarker: string | undefined;
    for (let firstPage = true; ; firstPage = false) {
      const page = await this.send(
        'list',
        { op: 'LIST versions', key: fullPrefix, action: 's3:ListBucketVersions' },
        opts.signal,
        async () => {
          const got = await this.transport.listObjectVersions({
            prefix: fullPrefix,
            maxKeys: this.listPageSize,
            delimiter: opts.delimiter,
            signal: opts.signal,
            ...(keyMarker === undefined ? {} : { keyMarker }),
            ...(versionIdMarker === undefined ? {} : { versionIdMarker }),
          });
          // Versions of one key share it, and Ceph repeats KeyMarker's own: keys may repeat, not go back.
          for (const entries of [got.Versions, got.DeleteMarkers]) this.checkPageOrder(fullPrefix, keyMarker, false, (entries ?? []).map((e) => decodeKey(e.Key ?? '')));
          this.checkPageOrder(fullPrefix, firstPage ? undefined : keyMarker, false, (got.CommonPrefixes ?? []).map((e) => decodeKey(e.Prefix ?? '')));
          return got;
        },
      );
      // The SDK splits the response into versions and delete markers; put them back in S3's
      // order: by key, then newest first (the latest one first whatever the timestamps say).
      const entries: ObjectEntry[] = [];
      for (const v of page.Versions ?? []) {
        entries.push({
          kind: 'object',
          key: this.relative(decodeKey(v.Key ?? '')),
          size: v.Size ?? 0,
          etag: unquote(v.ETag),
          lastModified: v.LastModified ?? new Date(0),
          versionId: nullVersion(v.VersionId),
          isLatest: v.IsLatest ?? false,
          isDeleteMarker: false,
          ...(v.StorageClass ? { storageClass: v.StorageClass } : {}),
        });
      }
      for (const d of page.DeleteMarkers ?? []) {
        entries.push({
          kind: 'object',
          key: this.relative(decodeKey(d.Key ?? '')),
          size: 0,
          etag: '',
          lastModified: d.LastModified ?? new Date(0),
          versionId: nullVersion(d.VersionId),
          isLatest: d.IsLatest ?? false,
          isDeleteMarker: true,
        });
      }
      // Ceph (16) repeats the versions of KeyMarker itself when no VersionIdMarker is given;
      // AWS starts after it. Filter, so startAfter means the same on every server.
      const after = opts.startAfter;
      if (after !== undefined && versionIdMarker === undefined) {
        for (let i = entries.length - 1; i >= 0; i--) if (compareKeys(entries[i]!.key, after) <= 0) entries.splice(i, 1);
      }
      const prefixes = this.prefixEntries(page.CommonPrefixes).filter((p) => after === undefined || compareKeys(p.prefix, after) > 0);
      entries.sort(
        (a, b) =>
          compareKeys(a.key, b.key) ||
          Number(b.isLatest) - Number(a.isLatest) ||
          b.lastModified.getTime() - a.lastModified.getTime(),
      );
      yield* mergeSorted(entries, prefixes);
      if (!page.IsTruncated) return;
      const nextKey = page.NextKeyMarker;
      if (nextKey === undefined || nextKey === '') return;
      // AWS url-encodes NextKeyMarker under EncodingType=url, Ceph 16 does not. The marker is the
      // last key (or common prefix) of the page, so take the reading that names one of them.
      const decoded = decodeKey(nextKey);
      const onPage = new Set([...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => decodeKey(v.Key ?? '')));
      for (const c of page.CommonPrefixes ?? []) onPage.add(decodeKey(c.Prefix ?? ''));
      const seen = (k: string): boolean => onPage.has(k);
      keyMarker = seen(decoded) || !seen(nextKey) ? decoded : nextKey;
      versionIdMarker = page.NextVersionIdMarker || undefined;
    }
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
    const total = /\/(\d+)\s*$/.exec(res.ContentRange ?? '')?.[1];
    const size = total !== undefined ? Number(total) : (res.ContentLength ?? 0);
    const src = res.Body;
    const body = src
      ? this.countedBody(src, { ...ctx, bucket: this.bucket, endpoint: this.endpointLabel(), timeoutMs: this.timeoutMs }, opts.signal)
      : Readable.from([], { objectMode: false });
    return { body: abortable(body, opts.signal), meta: toMeta(res, size) };
  }

  async getTags(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<Record<string, string>> {
    const full = this.fullKey('GET tagging', key);
    return this.send('get', { op: 'GET tagging', key: full, action: 's3:GetObjectTagging', ...ver(opts.versionId) }, opts.signal, () =>
      this.transport.getObjectTagging(full, opts),
    );
  }

  async versioningEnabled(): Promise<boolean> {
    const status = await this.send('head', { op: 'GET versioning', action: 's3:GetBucketVersioning' }, undefined, () => this.transport.getBucketVersioning());
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

  // ---------------------------------------------------------------- plumbing

  /** One request with our retries; every attempt counted; the transport's errors translated. */
  private async send<O>(
    stat: 'list' | 'get' | 'head' | 'put' | 'delete',
    ctx: Omit<S3ErrorContext, 'bucket'>,
    signal: AbortSignal | undefined,
    call: () => Promise<O>,
  ): Promise<O> {
    const full: S3ErrorContext = { ...ctx, bucket: this.bucket, endpoint: this.endpointLabel(), timeoutMs: this.timeoutMs };
    const capped = timeoutCap(stat === 'put' || stat === 'delete' ? TIMED_OUT_ATTEMPTS.write : TIMED_OUT_ATTEMPTS.read);
    return withRetry(
      async () => {
        this.stats[stat]++;
        try {
          return await call();
        } catch (err) {
          signal?.throwIfAborted();
          throw capped(toStorageError(err, full));
        }
      },
      { ...this.retry, ...sig(signal) },
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
        throw toStorageError(err, { ...ctx, op: 'GET (reading body)' });
      } finally {
        if (!src.destroyed) src.destroy();
      }
    }
    return Readable.from(pump(), { objectMode: false });
  }

  /**
   * A listing page's keys (decoded) must be under the prefix, in S3's order and
   * past where the page starts. The scan merge-joins listings with the catalog: a key damaged in
   * flight would otherwise read as the deletion of every catalogued key it seems to skip.
   */
  private checkPageOrder(fullPrefix: string, after: string | undefined, strict: boolean, keys: readonly string[]): void {
    let previous = after;
    for (const key of keys) {
      const order = previous === undefined ? 1 : compareKeys(key, previous);
      if (!key.startsWith(fullPrefix) || order < 0 || (strict && order === 0)) {
        throw new StorageError('Network', `LIST ${this.location}: the listing from ${this.endpointLabel()} is damaged: ${JSON.stringify(key)} ${key.startsWith(fullPrefix) ? `does not sort after ${JSON.stringify(previous)}` : `is outside ${JSON.stringify(fullPrefix)}`}`, {
          backendCode: 'MalformedResponse',
          hint: 'lakeguard needs listings in key order under the requested prefix (S3 directory buckets do not list in order)',
        });
      }
      previous = key;
    }
  }

  private prefixEntries(common: { Prefix?: string | undefined }[] | undefined): PrefixEntry[] {
    return (common ?? []).map((c) => ({ kind: 'prefix', prefix: this.relative(decodeKey(c.Prefix ?? '')) }));
  }

  private relative(fullKey: string): string {
    return fullKey.startsWith(this.prefix) ? fullKey.slice(this.prefix.length) : fullKey;
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

/** Objects and common prefixes of one page, each sorted, merged into one key order. */
function* mergeSorted(objects: ObjectEntry[], prefixes: PrefixEntry[]): Generator<ListItem> {
  if (prefixes.length === 0) {
    yield* objects;
    return;
  }
  let i = 0;
  let j = 0;
  while (i < objects.length || j < prefixes.length) {
    const o = objects[i];
    const p = prefixes[j];
    if (o !== undefined && (p === undefined || compareKeys(o.key, p.prefix) < 0)) {
      yield o;
      i++;
    } else if (p !== undefined) {
      yield p;
      j++;
    }
  }
}

function toMeta(res: S3ObjectHeaders, size: number): ObjectMeta {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.Metadata ?? {})) metadata[k.toLowerCase()] = v;
  return {
    size,
    etag: unquote(res.ETag),
    lastModified: res.LastModified ?? new Date(0),
    versionId: nullVersion(res.VersionId),
    metadata,
    // S3 omits the storage class header for STANDARD.
    storageClass: res.StorageClass ?? 'STANDARD',
    ...(res.ContentType ? { contentType: res.ContentType } : {}),
    ...(res.ContentEncoding ? { contentEncoding: res.ContentEncoding } : {}),
    ...(res.CacheControl ? { cacheControl: res.CacheControl } : {}),
    ...(res.ContentDisposition ? { contentDisposition: res.ContentDisposition } : {}),
    ...(res.TagCount ? { tagCount: res.TagCount } : {}),
    ...(res.SSECustomerAlgorithm ? { sse: 'SSE-C' } : res.ServerSideEncryption ? { sse: res.ServerSideEncryption } : {}),
  };
}

function unquote(etag: string | undefined): string {
  if (etag === undefined) return '';
  // The common case, "<hex>", without the two regular expressions (once per listed key).
  if (etag.length >= 2 && etag.charCodeAt(0) === 0x22 && etag.charCodeAt(etag.length - 1) === 0x22 && etag.indexOf('"', 1) === etag.length - 1) return etag.slice(1, -1);
  return etag.replace(/^(W\/)?"/, '').replace(/"$/, '');
}

function nullVersion(v: string | undefined): string | null {
  return v === undefined || v === '' || v === 'null' ? null : v;
}

/** Keys in responses with `EncodingType=url` (spaces may come as '+', a literal '+' as %2B). */
export function decodeKey(s: string): string {
  try {
    return decodeURIComponent(s.includes('+') ? s.replace(/\+/g, ' ') : s);
  } catch {
    return s;
  }
}

/** The x-amz-tagging header: a URL query string. */
export function encodeTags(tags: Record<string, string>): string {
  return Object.entries(tags)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

function ver(versionId: string | undefined): { versionId?: string } {
  return versionId === undefined ? {} : { versionId };
}

function sig(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}
