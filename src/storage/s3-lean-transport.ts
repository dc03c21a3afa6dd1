import type { IncomingMessage } from 'node:http';
import type http from 'node:http';
import type { Readable } from 'node:stream';
import { leanEndpoint, type EndpointSettings } from './s3-endpoint.js';
import { header, readText, signedRequest, xmlText, type LeanTarget, type SigningClock } from './s3-http.js';
import { parseListV2, parseVersioningStatus } from './s3-list-xml.js';
import type { SdkTransport } from './s3-sdk-transport.js';
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

/**
 * The S3 requests of a backup, a restore and a lock, without the SDK: GetObject, HeadObject,
 * ListObjectsV2, PutObject of a Buffer (without user metadata or tags), DeleteObject and
 * GetBucketVersioning.
 * A backup reads one object per small file, and the SDK spent ~1 ms of CPU on each (endpoint
 * rules, schema (de)serialization, retry and logging middleware: a third of a seed backup's CPU
 * on a shared 2-core machine); this path signs with SigV4 (s3-sigv4.ts), sends with node:http
 * (s3-http.ts) and reads the answer's headers itself, ~0.1 ms. A listing page is read by a small
 * strict XML reader (s3-list-xml.ts) instead of the SDK's parser and schema walker (~25 us a
 * key). A command that needs nothing else never loads the SDK (~0.1 s).
 *
 * Everything else (version listings, multipart, tags, retention) goes to the SDK transport
 * it holds, which loads the SDK on its first request; so do all requests when the region is one
 * only the SDK resolves, and, for good, once AWS answers that the bucket is in another region
 * (the SDK follows such redirects; this path does not).
 */
export class LeanTransport implements S3Transport {
  readonly kind = 'lean';
  /** Where requests go: resolved on first use (the region may be the SDK's to find); null = the SDK's path. */
  private target: Promise<LeanTarget | null> | null = null;
  /** What `target` resolved to, and the promise it came from (a region redirect replaces `target`). */
  private resolved: LeanTarget | null | undefined;
  private resolvedFrom: Promise<LeanTarget | null> | null = null;

  constructor(
    private readonly bucket: string,
    private readonly settings: EndpointSettings & {
      /** The region when configured (store option or AWS_REGION); else the SDK's. */
      region: string | undefined;
      /** Null: the SDK's default chain. */
      credentials: (() => Promise<Credentials>) | null;
      agents: { http: http.Agent; https: http.Agent };
      connectTimeoutMs: number;
      socketTimeoutMs: number;
      clock: SigningClock;
    },
    private readonly sdk: SdkTransport,
  ) {}

  /** Where this path sends the bucket's requests; null when they all go through the SDK's. */
  resolve(): Promise<LeanTarget | null> {
    if (this.target !== null) return this.target;
    const target = (async (): Promise<LeanTarget | null> => {
      const s = this.settings;
      const where = leanEndpoint(s, s.region ?? (await this.sdk.region()));
      if (where === null) return null;
      const origin = new URL(where.origin);
      return {
        origin,
        pathStyle: where.pathStyle,
        region: where.region,
        bucket: this.bucket,
        credentials: s.credentials ?? (() => this.sdk.credentials()),
        agent: origin.protocol === 'https:' ? s.agents.https : s.agents.http,
        connectTimeoutMs: s.connectTimeoutMs,
        socketTimeoutMs: s.socketTimeoutMs,
        clock: s.clock,
      };
    })();
    this.target = target;
    void target.then((t) => {
      if (this.target !== target) return;
      this.resolved = t;
      this.resolvedFrom = target;
    }, () => {});
    return target;
  }

  /** Runs `lean`, or `sdk` where this path cannot serve the bucket. */
  private async either<T>(lean: (t: LeanTarget) => Promise<T>, sdk: () => Promise<T>): Promise<T> {
    // Once resolved, the target is at hand without another await (one request per small object).
    const t = this.resolved !== undefined && this.target === this.resolvedFrom ? this.resolved : await this.resolve();
    if (t === null) return sdk();
    try {
      return await lean(t);
    } catch (err) {
      if (this.settings.endpoint !== undefined || !(err instanceof S3RequestError) || !REGION_REDIRECT.has(err.code)) throw err;
      this.target = Promise.resolve(null);
      return sdk();
    }
  }

  getObject(key: string, opts: { versionId?: string | undefined; range?: { start: number; end: number } | undefined; signal?: AbortSignal | undefined }): Promise<S3GetOutput> {
    return this.either(
      async (t) => {
        const { versionId, range } = opts;
        const res = await signedRequest(t, 'GET', key, versionId === undefined ? {} : { versionId }, {}, null, range ? { range: `bytes=${range.start}-${range.end}` } : {}, opts.signal);
        return objectHeaders(res, 'GetObject');
      },
      () => this.sdk.getObject(key, opts),
    );
  }

  putObject(key: string, body: Buffer, fields: S3PutFields & { ContentMD5: string }, signal?: AbortSignal): Promise<S3PutOutput> {
    // Metadata and tags take the SDK's encoding rules; everything a repository writes goes lean.
    if (fields.Metadata !== undefined || fields.Tagging !== undefined) return this.sdk.putObject(key, body, fields, signal);
    return this.either(
      async (t) => {
        const h: Record<string, string> = { 'content-md5': fields.ContentMD5 };
        const set = (name: string, value: string | undefined): void => {
          if (value !== undefined) h[name] = value;
        };
        set('content-type', fields.ContentType);
        set('content-encoding', fields.ContentEncoding);
        set('cache-control', fields.CacheControl);
        set('content-disposition', fields.ContentDisposition);
        set('x-amz-server-side-encryption', fields.ServerSideEncryption);
        set('x-amz-server-side-encryption-aws-kms-key-id', fields.SSEKMSKeyId);
        set('x-amz-object-lock-mode', fields.ObjectLockMode);
        // As the SDK writes it: ISO 8601, whole seconds without '.000'.
        set('x-amz-object-lock-retain-until-date', fields.ObjectLockRetainUntilDate?.toISOString().replace('.000Z', 'Z'));
        set('x-amz-storage-class', fields.StorageClass);
        set('if-none-match', fields.IfNoneMatch);
        const res = await signedRequest(t, 'PUT', key, {}, h, body, {}, signal);
        res.resume();
        return { ETag: header(res, 'etag'), VersionId: header(res, 'x-amz-version-id') };
      },
      () => this.sdk.putObject(key, body, fields, signal),
    );
  }

  deleteObject(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<void> {
    return this.either(
      async (t) => {
        const res = await signedRequest(t, 'DELETE', key, opts.versionId === undefined ? {} : { versionId: opts.versionId }, {}, null, {}, opts.signal);
        res.resume();
      },
      () => this.sdk.deleteObject(key, opts),
    );
  }

  listObjectsV2(req: S3ListRequest & { startAfter?: string; continuationToken?: string }): Promise<S3ListPage> {
    return this.either(
      async (t) => {
        const query: Record<string, string> = { 'list-type': '2', prefix: req.prefix, 'max-keys': String(req.maxKeys), 'encoding-type': 'url' };
        if (req.delimiter) query.delimiter = req.delimiter;
        if (req.startAfter !== undefined) query['start-after'] = req.startAfter;
        if (req.continuationToken !== undefined) query['continuation-token'] = req.continuationToken;
        return parseListV2(await readText(await signedRequest(t, 'GET', null, query, {}, null, {}, req.signal)));
      },
      () => this.sdk.listObjectsV2(req),
    );
  }

  copyObject(key: string, copySource: string, signal?: AbortSignal): Promise<S3PutOutput> {
    return this.either(
      async (t) => {
        // The copy source and both directives are signed headers, as the SDK signs them.
        const h = { 'x-amz-copy-source': copySource, 'x-amz-metadata-directive': 'COPY', 'x-amz-tagging-directive': 'COPY' };
        const res = await signedRequest(t, 'PUT', key, {}, h, null, {}, signal);
        const versionId = header(res, 'x-amz-version-id');
        const result = parseCopyResult(await readText(res), res.statusCode ?? 200, header(res, 'x-amz-request-id'));
        return { ETag: result.etag, VersionId: versionId };
      },
      () => this.sdk.copyObject(key, copySource, signal),
    );
  }

  getBucketVersioning(signal?: AbortSignal): Promise<string | undefined> {
    return this.either(
      async (t) => parseVersioningStatus(await readText(await signedRequest(t, 'GET', null, { versioning: '' }, {}, null, {}, signal))),
      () => this.sdk.getBucketVersioning(signal),
    );
  }

  // A restore to S3 heads each target key before it writes it: through the SDK, a
  // single-object restore loaded the whole SDK (~0.15 s of CPU) for that one request.
  headObject(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<S3ObjectHeaders> {
    return this.either(
      async (t) => {
        const res = await signedRequest(t, 'HEAD', key, opts.versionId === undefined ? {} : { versionId: opts.versionId }, {}, null, {}, opts.signal);
        res.resume();
        const { Body: _body, ...headers } = objectHeaders(res, 'HeadObject');
        return headers;
      },
      () => this.sdk.headObject(key, opts),
    );
  }

  // The SDK's: requests a backup, a restore or a lock does not make (or not per object).

  uploadObject(key: string, body: Buffer | Readable, fields: S3PutFields, opts: S3UploadOptions): Promise<S3UploadOutput> {
    return this.sdk.uploadObject(key, body, fields, opts);
  }

  listObjectVersions(req: S3ListRequest & { keyMarker?: string; versionIdMarker?: string }): Promise<S3VersionsPage> {
    return this.sdk.listObjectVersions(req);
  }

  // A multipart copy is for objects above 5 GiB (a few requests each): the SDK's.
  createMultipartUpload(key: string, fields: S3PutFields, signal?: AbortSignal): Promise<{ UploadId: string }> {
    return this.sdk.createMultipartUpload(key, fields, signal);
  }

  uploadPartCopy(key: string, part: { uploadId: string; partNumber: number; copySource: string; range: { start: number; end: number } }, signal?: AbortSignal): Promise<{ ETag: string }> {
    return this.sdk.uploadPartCopy(key, part, signal);
  }

  completeMultipartUpload(key: string, uploadId: string, parts: { PartNumber: number; ETag: string }[], signal?: AbortSignal): Promise<S3PutOutput> {
    return this.sdk.completeMultipartUpload(key, uploadId, parts, signal);
  }

  abortMultipartUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    return this.sdk.abortMultipartUpload(key, uploadId, signal);
  }

  getObjectLockEnabled(signal?: AbortSignal): Promise<boolean> {
    return this.sdk.getObjectLockEnabled(signal);
  }

  getObjectRetention(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<{ Mode?: string; RetainUntilDate?: Date } | undefined> {
    return this.sdk.getObjectRetention(key, opts);
  }

  putObjectRetention(key: string, retention: { Mode: 'GOVERNANCE' | 'COMPLIANCE'; RetainUntilDate: Date }, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<void> {
    return this.sdk.putObjectRetention(key, retention, opts);
  }

  getObjectTagging(key: string, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<Record<string, string>> {
    return this.sdk.getObjectTagging(key, opts);
  }

  putObjectTagging(key: string, tags: Record<string, string>, opts: { versionId?: string | undefined; signal?: AbortSignal | undefined }): Promise<void> {
    return this.sdk.putObjectTagging(key, tags, opts);
  }

  restoreObject(key: string, req: { days: number; tier: 'Standard' | 'Bulk' | 'Expedited' }, signal?: AbortSignal): Promise<number> {
    return this.sdk.restoreObject(key, req, signal);
  }

  destroy(): void {
    this.sdk.destroy();
  }
}

/**
 * The body of a CopyObject answer: `<CopyObjectResult><ETag>`. S3 may also answer 200 and
 * report a failure in the body (`<Error>`, the copy broke off after the headers were sent):
 * that is a server error (as the SDK reads it, worth another try), with the body's code.
 */
export function parseCopyResult(xml: string, status: number, requestId: string | undefined): { etag: string } {
  if (/<Error>/.test(xml)) {
    const code = xmlText(xml, 'Code') ?? 'InternalError';
    throw new S3RequestError(xmlText(xml, 'Message') ?? `${code} (inside a ${status} CopyObject answer)`, { status: 500, code, requestId });
  }
  const etag = xmlText(xml, 'ETag');
  if (etag === undefined || !/<CopyObjectResult[\s>]/.test(xml)) throw new S3MalformedResponseError(`a CopyObject answer without CopyObjectResult/ETag: ${JSON.stringify(xml.slice(0, 200))}`);
  return { etag };
}

/** AWS's answers to a request sent to the wrong region. */
const REGION_REDIRECT = new Set(['PermanentRedirect', 'AuthorizationHeaderMalformed', 'IllegalLocationConstraintException']);

/**
 * A GetObject (or HeadObject) answer's headers, read as the SDK reads them; the body is the
 * socket's stream. A length, date or count that is no number is a damaged answer
 * (S3MalformedResponseError).
 */
function objectHeaders(res: IncomingMessage, request: 'GetObject' | 'HeadObject'): S3GetOutput {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (k.startsWith('x-amz-meta-') && v !== undefined) metadata[k.slice(11)] = Array.isArray(v) ? v.join(',') : v;
  }
  const out: S3GetOutput = { Body: res, Metadata: metadata };
  const str = (name: string): string | undefined => header(res, name);
  const malformed = (what: string): never => {
    res.destroy();
    throw new S3MalformedResponseError(`a ${request} answer with ${what}`);
  };
  const length = str('content-length');
  if (length !== undefined) out.ContentLength = /^\d+$/.test(length) ? Number(length) : malformed(`Content-Length ${JSON.stringify(length)}`);
  const set = <K extends keyof S3GetOutput>(field: K, value: S3GetOutput[K] | undefined): void => {
    if (value !== undefined) out[field] = value;
  };
  set('ContentRange', str('content-range'));
  set('ETag', str('etag'));
  const modified = str('last-modified');
  if (modified !== undefined) {
    out.LastModified = new Date(modified);
    if (Number.isNaN(out.LastModified.getTime())) malformed(`Last-Modified ${JSON.stringify(modified)}`);
  }
  set('VersionId', str('x-amz-version-id'));
  set('ContentType', str('content-type'));
  set('ContentEncoding', str('content-encoding'));
  set('CacheControl', str('cache-control'));
  set('ContentDisposition', str('content-disposition'));
  set('StorageClass', str('x-amz-storage-class'));
  const tags = str('x-amz-tagging-count');
  if (tags !== undefined) out.TagCount = /^\d+$/.test(tags) ? Number(tags) : malformed(`x-amz-tagging-count ${JSON.stringify(tags)}`);
  set('ServerSideEncryption', str('x-amz-server-side-encryption'));
  set('SSECustomerAlgorithm', str('x-amz-server-side-encryption-customer-algorithm'));
  return out;
}
