import type http from 'node:http';
import type { Readable } from 'node:stream';
import type * as ClientS3 from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type * as LibStorage from '@aws-sdk/lib-storage';
import type * as HttpHandler from '@smithy/node-http-handler';
import { requireCjs } from '../util/cjs.js';
import type { SigningClock } from './s3-http.js';
import type { Credentials } from './s3-sigv4.js';
import {
  S3MalformedResponseError,
  S3RequestError,
  type S3GetOutput,
  type S3ListPage,
  type S3ListRequest,
  type S3ObjectHeaders,
  type S3PutFields,
  type S3PutOutput,
  type S3Transport,
  type S3UploadOptions,
  type S3UploadOutput,
  type S3VersionsPage,
} from './s3-transport.js';

// The SDK is loaded on first use, and through require, not import: its CommonJS build is one
// bundled file per package, its ES module build hundreds of small files. Either way it costs
// ~0.1 s of every command's start (bench/README.md), and the lean transport does without it:
// a backup, a restore or a query with credentials in the environment never loads it.
// Each `load` names its package literally, for the single-file binary's bundler (docs/development.md).
function lazyRequire<T extends object>(load: () => unknown): T {
  let mod: T | undefined;
  return new Proxy({} as T, { get: (_target, name) => (mod ??= load() as T)[name as keyof T] });
}
const S3 = lazyRequire<typeof ClientS3>(() => requireCjs('@aws-sdk/client-s3'));
const Storage = lazyRequire<typeof LibStorage>(() => requireCjs('@aws-sdk/lib-storage'));
const Http = lazyRequire<typeof HttpHandler>(() => requireCjs('@smithy/node-http-handler'));
type S3Client = ClientS3.S3Client;

/** A change of the SDK's clock offset this large during a refused request is a skew correction (the SDK's own threshold). */
const SKEW_CORRECTED_MS = 240_000;

/** How to build the SDK's clients for one bucket. */
export interface SdkClientSettings {
  endpoint: string | undefined;
  /** Undefined on AWS without a configured region: the SDK finds it (environment, then profile). */
  region: string | undefined;
  credentials: S3ClientConfig['credentials'] | undefined;
  /** The shared-config profile to read region and endpoint settings from (default: AWS_PROFILE's). */
  profile?: string | undefined;
  pathStyle: boolean;
  agents: { http: http.Agent; https: http.Agent };
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  /** What the lean path has learnt about the server's clock (and a test's wrong clock). */
  clock: SigningClock;
}

/**
 * The configuration of the SDK's client for single requests: no retries of its own
 * (`maxAttempts: 1`, S3Store's retries wrap it). Exported for the endpoint test, which asks
 * the SDK where it would send a request.
 */
export function sdkClientConfig(s: SdkClientSettings): S3ClientConfig {
  const config: S3ClientConfig = {
    requestHandler: new Http.NodeHttpHandler({ httpAgent: s.agents.http, httpsAgent: s.agents.https, connectionTimeout: s.connectTimeoutMs, socketTimeout: s.socketTimeoutMs }),
    forcePathStyle: s.pathStyle,
    customUserAgent: 'lakeguard',
    systemClockOffset: s.clock.base() + s.clock.offsetMs - Date.now(),
    maxAttempts: 1,
    ...(s.credentials === undefined ? {} : { credentials: s.credentials }),
    // The SDK reads region and FIPS/dual-stack settings from this profile, but a configured
    // endpoint (endpoint_url, AWS_ENDPOINT_URL) from AWS_PROFILE's: that may be another role's
    // server. A store with its own profile takes its endpoint from the policy alone
    // (credentials.ts refuses a per-role profile that sets one).
    ...(s.profile === undefined ? {} : { profile: s.profile, ignoreConfiguredEndpointUrls: true }),
    ...(s.region === undefined ? {} : { region: s.region }),
  };
  if (s.endpoint !== undefined) {
    config.endpoint = s.endpoint;
    // S3-compatible servers (Ceph 16 among them) do not all know the flexible checksums
    // (x-amz-checksum-*, aws-chunked trailers); Content-MD5 on single PUTs still guards them.
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  } else {
    config.followRegionRedirects = true;
  }
  return config;
}

/**
 * Every request through the AWS SDK. Multipart uploads (lib-storage) cannot be retried per part
 * from outside, so they go through a second client sharing the same sockets that lets the SDK
 * retry each part.
 */
export class SdkTransport implements S3Transport {
  readonly kind = 'sdk';
  private clients: { single: S3Client; upload: S3Client } | null;
  private readonly build: (() => { single: S3Client; upload: S3Client }) | null;

  /** `client`: use this one (a test's) for every request, multipart included. */
  constructor(
    private readonly bucket: string,
    settings: SdkClientSettings | { client: S3Client; clock: SigningClock },
  ) {
    if ('client' in settings) {
      this.clients = { single: settings.client, upload: settings.client };
      this.build = null;
      this.clock = settings.clock;
    } else {
      this.clients = null;
      this.clock = settings.clock;
      this.build = () => {
        const config = sdkClientConfig(settings);
        return { single: new S3.S3Client(config), upload: new S3.S3Client({ ...config, maxAttempts: 5, retryMode: 'standard' }) };
      };
    }
  }

  private readonly clock: SigningClock;

  /** The client for single requests (built on first use, loading the SDK). */
  get client(): S3Client {
    return (this.clients ??= this.build!()).single;
  }

  /** The region the SDK resolves (environment, then the selected profile); undefined when none. */
  async region(): Promise<string | undefined> {
    return this.client.config.region().catch(() => undefined);
  }

  /** The credentials of the SDK's default chain. */
  async credentials(): Promise<Credentials> {
    try {
      return await this.client.config.credentials();
    } catch (err) {
      throw fromSdkError(err);
    }
  }

  destroy(): void {
    if (this.build === null) return;
    this.clients?.single.destroy();
    this.clients?.upload.destroy();
  }

  /** One command; an SDK error comes out typed. */
  private async send<O>(command: object, signal: AbortSignal | undefined): Promise<O> {
    const before = this.clockOffset();
    try {
      return (await this.client.send(command as never, signal ? { abortSignal: signal } : {})) as O;
    } catch (err) {
      // The SDK's signer adopts the server's Date from a refused answer (systemClockOffset) but
      // flags it only when the system clock itself is off, not when it started from our offset.
      throw fromSdkError(err, Math.abs(this.clockOffset() - before) >= SKEW_CORRECTED_MS);
    }
  }

  /** How far the SDK's signing clock is from Date.now (what it will sign the next request with). */
  private clockOffset(): number {
    // (An injected stand-in client may have no config.)
    return (this.clients?.single.config as { systemClockOffset?: number } | undefined)?.systemClockOffset ?? this.clock.base() + this.clock.offsetMs - Date.now();
  }

  getObject(key: string, opts: { versionId?: string | undefined; range?: { start: number; end: number } | undefined; signal?: AbortSignal | undefined }): Promise<S3GetOutput> {
    const { versionId, range } = opts;
    return this.send(
      new S3.GetObjectCommand({ Bucket: this.bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      opts.signal,
    );
  }

  headObject(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<S3ObjectHeaders> {
    return this.send(new S3.HeadObjectCommand({ Bucket: this.bucket, Key: key, ...(opts.versionId ? { VersionId: opts.versionId } : {}) }), opts.signal);
  }

  putObject(key: string, body: Buffer, fields: S3PutFields & { ContentMD5: string }, signal?: AbortSignal): Promise<S3PutOutput> {
    return this.send(new S3.PutObjectCommand({ ...fields, Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length }), signal);
  }

  async uploadObject(key: string, body: Buffer | Readable, fields: S3PutFields, opts: S3UploadOptions): Promise<S3UploadOutput> {
    const { signal } = opts;
    if (this.clients === null) this.clients = this.build!();
    const upload = new Storage.Upload({
      client: this.clients.upload,
      params: { ...fields, Bucket: this.bucket, Key: key, Body: body },
      partSize: opts.partSize,
      queueSize: opts.queueSize,
      leavePartsOnError: false,
    });
    const parts = new Set<number>();
    let loaded = 0;
    upload.on('httpUploadProgress', (p) => {
      if (p.part !== undefined) parts.add(p.part);
      if (p.loaded !== undefined) loaded = Math.max(loaded, p.loaded);
    });
    const onAbort = (): void => void upload.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const out = await upload.done();
      return { ETag: out.ETag, VersionId: out.VersionId, multipart: upload.uploadId !== undefined };
    } catch (err) {
      signal?.throwIfAborted();
      throw fromSdkError(err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // Create + parts + complete (+ abort on failure); retries inside the SDK are not seen here.
      opts.counted(upload.uploadId !== undefined ? parts.size + 2 : 1, loaded);
    }
  }

  async deleteObject(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<void> {
    await this.send(new S3.DeleteObjectCommand({ Bucket: this.bucket, Key: key, ...(opts.versionId ? { VersionId: opts.versionId } : {}) }), opts.signal);
  }

  async listObjectsV2(req: S3ListRequest & { startAfter?: string; continuationToken?: string }): Promise<S3ListPage> {
    const got = await this.send<ClientS3.ListObjectsV2CommandOutput>(
      new S3.ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: req.prefix,
        MaxKeys: req.maxKeys,
        EncodingType: 'url',
        ...(req.delimiter ? { Delimiter: req.delimiter } : {}),
        ...(req.startAfter === undefined ? {} : { StartAfter: req.startAfter }),
        ...(req.continuationToken === undefined ? {} : { ContinuationToken: req.continuationToken }),
      }),
      req.signal,
    );
    return { Contents: got.Contents ?? [], CommonPrefixes: got.CommonPrefixes ?? [], IsTruncated: got.IsTruncated ?? false, NextContinuationToken: got.NextContinuationToken };
  }

  async listObjectVersions(req: S3ListRequest & { keyMarker?: string; versionIdMarker?: string }): Promise<S3VersionsPage> {
    const got = await this.send<ClientS3.ListObjectVersionsCommandOutput>(
      new S3.ListObjectVersionsCommand({
        Bucket: this.bucket,
        Prefix: req.prefix,
        MaxKeys: req.maxKeys,
        EncodingType: 'url',
        ...(req.delimiter ? { Delimiter: req.delimiter } : {}),
        ...(req.keyMarker === undefined ? {} : { KeyMarker: req.keyMarker }),
        ...(req.versionIdMarker === undefined ? {} : { VersionIdMarker: req.versionIdMarker }),
      }),
      req.signal,
    );
    return {
      Versions: got.Versions ?? [],
      DeleteMarkers: got.DeleteMarkers ?? [],
      CommonPrefixes: got.CommonPrefixes ?? [],
      IsTruncated: got.IsTruncated ?? false,
      NextKeyMarker: got.NextKeyMarker,
      NextVersionIdMarker: got.NextVersionIdMarker,
    };
  }

  async getBucketVersioning(signal?: AbortSignal): Promise<string | undefined> {
    const got = await this.send<ClientS3.GetBucketVersioningCommandOutput>(new S3.GetBucketVersioningCommand({ Bucket: this.bucket }), signal);
    return got.Status;
  }

  async getObjectLockEnabled(signal?: AbortSignal): Promise<boolean> {
    const got = await this.send<ClientS3.GetObjectLockConfigurationCommandOutput>(new S3.GetObjectLockConfigurationCommand({ Bucket: this.bucket }), signal);
    return got.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
  }

  async getObjectRetention(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<{ Mode?: string; RetainUntilDate?: Date } | undefined> {
    const got = await this.send<ClientS3.GetObjectRetentionCommandOutput>(
      new S3.GetObjectRetentionCommand({ Bucket: this.bucket, Key: key, ...(opts.versionId ? { VersionId: opts.versionId } : {}) }),
      opts.signal,
    );
    const r = got.Retention;
    if (r === undefined) return undefined;
    return { ...(r.Mode === undefined ? {} : { Mode: r.Mode }), ...(r.RetainUntilDate === undefined ? {} : { RetainUntilDate: new Date(r.RetainUntilDate) }) };
  }

  async putObjectRetention(key: string, retention: { Mode: 'GOVERNANCE' | 'COMPLIANCE'; RetainUntilDate: Date }, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<void> {
    await this.send(new S3.PutObjectRetentionCommand({ Bucket: this.bucket, Key: key, ...(opts.versionId ? { VersionId: opts.versionId } : {}), Retention: retention }), opts.signal);
  }

  async getObjectTagging(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<Record<string, string>> {
    const got = await this.send<ClientS3.GetObjectTaggingCommandOutput>(
      new S3.GetObjectTaggingCommand({ Bucket: this.bucket, Key: key, ...(opts.versionId ? { VersionId: opts.versionId } : {}) }),
      opts.signal,
    );
    const tags: Record<string, string> = {};
    for (const t of got.TagSet ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? '';
    return tags;
  }

  async copyObject(key: string, copySource: string, signal?: AbortSignal): Promise<S3PutOutput> {
    const got = await this.send<ClientS3.CopyObjectCommandOutput>(
      new S3.CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: copySource, MetadataDirective: 'COPY', TaggingDirective: 'COPY' }),
      signal,
    );
    return { ETag: got.CopyObjectResult?.ETag, VersionId: got.VersionId };
  }

  async createMultipartUpload(key: string, fields: S3PutFields, signal?: AbortSignal): Promise<{ UploadId: string }> {
    const { IfNoneMatch: _ifNoneMatch, ...create } = fields;
    const got = await this.send<ClientS3.CreateMultipartUploadCommandOutput>(new S3.CreateMultipartUploadCommand({ ...create, Bucket: this.bucket, Key: key }), signal);
    if (got.UploadId === undefined || got.UploadId === '') throw new S3MalformedResponseError('a CreateMultipartUpload answer without an UploadId');
    return { UploadId: got.UploadId };
  }

  async uploadPartCopy(key: string, part: { uploadId: string; partNumber: number; copySource: string; range: { start: number; end: number } }, signal?: AbortSignal): Promise<{ ETag: string }> {
    const got = await this.send<ClientS3.UploadPartCopyCommandOutput>(
      new S3.UploadPartCopyCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: part.uploadId,
        PartNumber: part.partNumber,
        CopySource: part.copySource,
        CopySourceRange: `bytes=${part.range.start}-${part.range.end}`,
      }),
      signal,
    );
    const etag = got.CopyPartResult?.ETag;
    if (etag === undefined || etag === '') throw new S3MalformedResponseError(`an UploadPartCopy answer (part ${part.partNumber}) without an ETag`);
    return { ETag: etag };
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: { PartNumber: number; ETag: string }[], signal?: AbortSignal): Promise<S3PutOutput> {
    const got = await this.send<ClientS3.CompleteMultipartUploadCommandOutput>(
      new S3.CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      signal,
    );
    return { ETag: got.ETag, VersionId: got.VersionId };
  }

  async abortMultipartUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    await this.send(new S3.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), signal);
  }

  async restoreObject(key: string, req: { days: number; tier: 'Standard' | 'Bulk' | 'Expedited' }, signal?: AbortSignal): Promise<number> {
    const got = await this.send<ClientS3.RestoreObjectCommandOutput>(
      new S3.RestoreObjectCommand({ Bucket: this.bucket, Key: key, RestoreRequest: { Days: req.days, GlacierJobParameters: { Tier: req.tier } } }),
      signal,
    );
    return got.$metadata.httpStatusCode ?? 202;
  }

  async putObjectTagging(key: string, tags: Record<string, string>, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<void> {
    const TagSet = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
    await this.send(new S3.PutObjectTaggingCommand({ Bucket: this.bucket, Key: key, ...(opts.versionId ? { VersionId: opts.versionId } : {}), Tagging: { TagSet } }), opts.signal);
  }
}

interface SdkErrorLike {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string; clockSkewCorrected?: boolean };
  $response?: { statusCode?: number; headers?: Record<string, string | undefined> };
}

/**
 * What the SDK (or the socket beneath it) threw, typed: an answer that did not parse, an error
 * answer, or no answer. `clockMoved`: the SDK's signing clock moved by a skew correction meanwhile.
 */
export function fromSdkError(err: unknown, clockMoved = false): S3RequestError | S3MalformedResponseError {
  if (err instanceof S3RequestError || err instanceof S3MalformedResponseError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorLike;
  const message = err instanceof Error ? err.message : String(err);
  // The SDK hangs the raw answer on what its parser threw; a service exception has a $fault.
  if (e.$response !== undefined && e.$fault === undefined) {
    return new S3MalformedResponseError(message.split('\n')[0] ?? message, { cause: err });
  }
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const sysCode = typeof e.code === 'string' ? e.code : undefined;
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  // Connection-level failures: no HTTP status. (The SDK renames resets and timeouts to
  // TimeoutError but keeps the system code.) A missing region is a plain Error whose message
  // is all that tells it apart: the one message read here.
  if (sysCode !== undefined || status === undefined) {
    return new S3RequestError(message, { code: sysCode ?? (/region is missing/i.test(message) ? 'RegionMissing' : name), cause: err });
  }
  const headers = e.$response?.headers ?? {};
  const headerOf = (wanted: string): string | undefined => {
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === wanted) return v;
    return undefined;
  };
  const code = typeof e.Code === 'string' && e.Code !== '' ? e.Code : name;
  return new S3RequestError(message, {
    status,
    code,
    requestId: e.$metadata?.requestId,
    retryAfter: headerOf('retry-after'),
    deleteMarker: headerOf('x-amz-delete-marker') === 'true',
    clockSkewCorrected: e.$metadata?.clockSkewCorrected === true || (clockMoved && (code === 'RequestTimeTooSkewed' || status === 403)),
    cause: err,
  });
}
