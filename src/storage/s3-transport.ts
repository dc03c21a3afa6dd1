import type { Readable } from 'node:stream';
import type { StorageClass } from '@aws-sdk/client-s3';

/**
 * The requests S3Store makes of one bucket, and nothing else: no retries, no counting, no key
 * prefix, no order checks (those are S3Store's). Two implementations: the SDK's
 * (s3-sdk-transport.ts) and lakeguard's own SigV4/HTTP/XML path (s3-lean-transport.ts), which
 * serves the requests of a backup, a restore and a lock without loading the SDK and hands the
 * rest to the SDK's. S3Store holds exactly one, chosen when it is built (s3-endpoint.ts decides).
 *
 * Field names are those of the S3 API (its XML elements and header names), as both paths read them.
 * Keys are full keys (with the store prefix); listed keys come URL-encoded (EncodingType=url).
 *
 * Errors: every failed request rejects with an `S3RequestError` (an answer with an error
 * status, or no usable answer at all) or an `S3MalformedResponseError` (an answer that does not
 * parse); s3-errors.ts turns both into StorageErrors.
 */
export interface S3Transport {
  /** Which path serves the requests (the lean one may still hand some to the SDK). */
  readonly kind: 'lean' | 'sdk';
  getObject(key: string, opts: { versionId?: string | undefined; range?: { start: number; end: number } | undefined; signal?: AbortSignal | undefined }): Promise<S3GetOutput>;
  headObject(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<S3ObjectHeaders>;
  /** One PutObject of a Buffer (with its Content-MD5). */
  putObject(key: string, body: Buffer, fields: S3PutFields & { ContentMD5: string }, signal?: AbortSignal): Promise<S3PutOutput>;
  /** An upload that may go multipart (lib-storage): a large Buffer or a stream. */
  uploadObject(key: string, body: Buffer | Readable, fields: S3PutFields, opts: S3UploadOptions): Promise<S3UploadOutput>;
  deleteObject(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<void>;
  listObjectsV2(req: S3ListRequest & { startAfter?: string; continuationToken?: string }): Promise<S3ListPage>;
  listObjectVersions(req: S3ListRequest & { keyMarker?: string; versionIdMarker?: string }): Promise<S3VersionsPage>;
  /** The bucket's versioning Status ('Enabled', 'Suspended', or undefined when never set). */
  getBucketVersioning(signal?: AbortSignal): Promise<string | undefined>;
  /** ObjectLockConfiguration.ObjectLockEnabled === 'Enabled' (a bucket without one: S3RequestError 404). */
  getObjectLockEnabled(signal?: AbortSignal): Promise<boolean>;
  getObjectRetention(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<{ Mode?: string; RetainUntilDate?: Date } | undefined>;
  putObjectRetention(key: string, retention: { Mode: 'GOVERNANCE' | 'COMPLIANCE'; RetainUntilDate: Date }, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<void>;
  getObjectTagging(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<Record<string, string>>;
  putObjectTagging(key: string, tags: Record<string, string>, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<void>;
  /**
   * CopyObject onto `key` from `copySource` (the x-amz-copy-source value: `/bucket/key`
   * URL-encoded, `?versionId=`; s3-object-fields.ts `copySourceHeader`), with the metadata and
   * tagging directives COPY: content type, user metadata and tags come with the bytes. An error
   * S3 reports inside a 200 answer rejects like any other.
   */
  copyObject(key: string, copySource: string, signal?: AbortSignal): Promise<S3PutOutput>;
  /** CreateMultipartUpload with the fields the object will have (a part copy copies bytes only). */
  createMultipartUpload(key: string, fields: S3PutFields, signal?: AbortSignal): Promise<{ UploadId: string }>;
  /** UploadPartCopy: bytes `range` (inclusive) of the copy source as part `partNumber`. */
  uploadPartCopy(key: string, part: { uploadId: string; partNumber: number; copySource: string; range: { start: number; end: number } }, signal?: AbortSignal): Promise<{ ETag: string }>;
  completeMultipartUpload(key: string, uploadId: string, parts: { PartNumber: number; ETag: string }[], signal?: AbortSignal): Promise<S3PutOutput>;
  abortMultipartUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void>;
  /** RestoreObject of an archived object: the HTTP status (202 started, 200 already readable). */
  restoreObject(key: string, req: { days: number; tier: 'Standard' | 'Bulk' | 'Expedited' }, signal?: AbortSignal): Promise<number>;
  /** Close the sockets this transport opened. */
  destroy(): void;
}

/** What a PUT says about the object besides its bytes (S3's header names, as the SDK's input names them). */
export interface S3PutFields {
  ContentType?: string;
  ContentEncoding?: string;
  CacheControl?: string;
  ContentDisposition?: string;
  /** User metadata (x-amz-meta-*). */
  Metadata?: Record<string, string>;
  /** Tags as a URL query string (x-amz-tagging). */
  Tagging?: string;
  ServerSideEncryption?: 'aws:kms';
  SSEKMSKeyId?: string;
  ObjectLockMode?: 'GOVERNANCE' | 'COMPLIANCE';
  ObjectLockRetainUntilDate?: Date;
  /** x-amz-storage-class, e.g. STANDARD_IA. */
  StorageClass?: StorageClass;
  /** '*': create only. */
  IfNoneMatch?: string;
}

export interface S3UploadOptions {
  partSize: number;
  /** Parts in flight at once. */
  queueSize: number;
  signal?: AbortSignal | undefined;
  /** Called once the upload ends, well or not: the requests it made and the bytes it sent. */
  counted: (requests: number, bytesSent: number) => void;
}

export interface S3PutOutput {
  ETag?: string | undefined;
  VersionId?: string | undefined;
}

export interface S3UploadOutput extends S3PutOutput {
  /** Whether it went multipart (CreateMultipartUpload, parts, CompleteMultipartUpload). */
  multipart: boolean;
}

/** The headers of a GET or HEAD answer that lakeguard reads. */
export interface S3ObjectHeaders {
  ContentLength?: number | undefined;
  /** `bytes 0-9/1234` of a ranged GET. */
  ContentRange?: string | undefined;
  ETag?: string | undefined;
  LastModified?: Date | undefined;
  VersionId?: string | undefined;
  ContentType?: string | undefined;
  ContentEncoding?: string | undefined;
  CacheControl?: string | undefined;
  ContentDisposition?: string | undefined;
  /** x-amz-meta-* without the prefix. */
  Metadata?: Record<string, string> | undefined;
  StorageClass?: string | undefined;
  TagCount?: number | undefined;
  ServerSideEncryption?: string | undefined;
  SSECustomerAlgorithm?: string | undefined;
}

export interface S3GetOutput extends S3ObjectHeaders {
  /** The body as it arrives from the socket (no copy). */
  Body: Readable | undefined;
}

export interface S3ListRequest {
  prefix: string;
  maxKeys: number;
  delimiter?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** One page of ListObjectsV2 (keys URL-encoded). */
export interface S3ListPage {
  Contents: { Key?: string | undefined; LastModified?: Date | undefined; ETag?: string | undefined; Size?: number | undefined; StorageClass?: string | undefined }[];
  CommonPrefixes: { Prefix?: string | undefined }[];
  IsTruncated: boolean;
  NextContinuationToken?: string | undefined;
}

/** One page of ListObjectVersions (keys URL-encoded; NextKeyMarker encoded or not, by server). */
export interface S3VersionsPage {
  Versions: {
    Key?: string | undefined;
    VersionId?: string | undefined;
    IsLatest?: boolean | undefined;
    LastModified?: Date | undefined;
    ETag?: string | undefined;
    Size?: number | undefined;
    StorageClass?: string | undefined;
  }[];
  DeleteMarkers: { Key?: string | undefined; VersionId?: string | undefined; IsLatest?: boolean | undefined; LastModified?: Date | undefined }[];
  CommonPrefixes: { Prefix?: string | undefined }[];
  IsTruncated: boolean;
  NextKeyMarker?: string | undefined;
  NextVersionIdMarker?: string | undefined;
}

/**
 * A request that failed: the server answered with an error status (`status` set, `code` the S3
 * error code, or a default for a body-less answer: NotFound, Forbidden, ...), or there was no
 * usable answer (`status` undefined, `code` the system error code such as ECONNRESET, or
 * TimeoutError, AbortError, CredentialsProviderError, RegionMissing). Facts only: s3-errors.ts
 * classifies them (StorageError code, retryable, hint) by status and code, never by message.
 */
export class S3RequestError extends Error {
  override readonly name = 'S3RequestError';
  readonly status: number | undefined;
  readonly code: string;
  readonly requestId: string | undefined;
  /** The Retry-After header of a throttling answer. */
  readonly retryAfter: string | undefined;
  /** x-amz-delete-marker: true (a GET or HEAD of a delete marker answers 404 or 405). */
  readonly deleteMarker: boolean;
  /** The signing clock adopted the server's time from this answer: one more try may pass. */
  readonly clockSkewCorrected: boolean;

  constructor(
    message: string,
    fields: {
      status?: number | undefined;
      code: string;
      requestId?: string | undefined;
      retryAfter?: string | undefined;
      deleteMarker?: boolean;
      clockSkewCorrected?: boolean;
      cause?: unknown;
    },
  ) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.status = fields.status;
    this.code = fields.code;
    this.requestId = fields.requestId;
    this.retryAfter = fields.retryAfter;
    this.deleteMarker = fields.deleteMarker ?? false;
    this.clockSkewCorrected = fields.clockSkewCorrected ?? false;
  }

  /** A socket, timeout or abort error (Node's, or one raised while reading a body): no answer. */
  static fromSystemError(err: unknown): S3RequestError {
    if (err instanceof S3RequestError) return err;
    const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; name?: unknown };
    const code = typeof e.code === 'string' ? e.code : typeof e.name === 'string' ? e.name : 'Error';
    return new S3RequestError(err instanceof Error ? err.message : String(err), { code, cause: err });
  }
}

/** An answer that does not parse (cut off or damaged in flight): worth another request. */
export class S3MalformedResponseError extends Error {
  override readonly name = 'S3MalformedResponseError';
}
