import type { S3ListPage } from './s3-transport.js';
import { S3MalformedResponseError } from './s3-transport.js';
import { parseXml, type XmlElement } from './xml.js';

// The XML answers the lean transport reads: a ListObjectsV2 page and a bucket's versioning state.

/**
 * Parses a ListBucketResult strictly: a body cut off or damaged in flight must fail (and be
 * requested again), never read as a shorter page. Beyond well-formed XML, every entry needs a
 * key, a valid date and a size, truncation must say true or false, and KeyCount (when the
 * server sends it) must match what was read.
 */
export function parseListV2(xml: string): LeanListPage {
  const root = parseXml(xml);
  if (root.name !== 'ListBucketResult') throw listError(`the root element is <${root.name}>, not <ListBucketResult>`);
  const out: LeanListPage = { Contents: [], CommonPrefixes: [], IsTruncated: false };
  let truncated: string | undefined;
  let keyCount: string | undefined;
  for (const el of root.children) {
    switch (el.name) {
      case 'IsTruncated':
        truncated = el.text;
        break;
      case 'NextContinuationToken':
        out.NextContinuationToken = el.text;
        break;
      case 'KeyCount':
        keyCount = el.text;
        break;
      case 'Contents':
        out.Contents.push(listEntry(el));
        break;
      case 'CommonPrefixes': {
        const prefix = child(el, 'Prefix');
        if (prefix === undefined || prefix === '') throw listError('a common prefix without a Prefix');
        out.CommonPrefixes.push({ Prefix: prefix });
        break;
      }
    }
  }
  if (truncated !== 'true' && truncated !== 'false') throw listError(`IsTruncated is ${JSON.stringify(truncated)}`);
  out.IsTruncated = truncated === 'true';
  if (out.IsTruncated && !out.NextContinuationToken) throw listError('a truncated page without a NextContinuationToken');
  if (keyCount !== undefined && keyCount !== String(out.Contents.length + out.CommonPrefixes.length)) {
    throw listError(`KeyCount is ${keyCount} but the page holds ${out.Contents.length + out.CommonPrefixes.length} entries`);
  }
  return out;
}

/** A ListObjectsV2 page as the lean parser reads it: every entry has its key, date and size. */
export interface LeanListPage extends S3ListPage {
  Contents: { Key: string; LastModified: Date; ETag: string; Size: number; StorageClass?: string }[];
  CommonPrefixes: { Prefix: string }[];
}

/** GetBucketVersioning's answer: its Status ('Enabled', 'Suspended', or undefined when never set). */
export function parseVersioningStatus(xml: string): string | undefined {
  const root = parseXml(xml);
  if (root.name !== 'VersioningConfiguration') throw new S3MalformedResponseError(`XML parse error: the root element is <${root.name}>, not <VersioningConfiguration>`);
  return child(root, 'Status');
}

function listEntry(el: XmlElement): LeanListPage['Contents'][number] {
  const key = child(el, 'Key');
  const modified = child(el, 'LastModified');
  const size = child(el, 'Size');
  if (key === undefined || key === '') throw listError('an entry without a Key');
  const lastModified = new Date(modified ?? NaN);
  if (Number.isNaN(lastModified.getTime())) throw listError(`${key}: LastModified is ${JSON.stringify(modified)}`);
  if (size === undefined || !/^\d+$/.test(size)) throw listError(`${key}: Size is ${JSON.stringify(size)}`);
  const entry: LeanListPage['Contents'][number] = { Key: key, LastModified: lastModified, ETag: child(el, 'ETag') ?? '', Size: Number(size) };
  const storageClass = child(el, 'StorageClass');
  if (storageClass !== undefined) entry.StorageClass = storageClass;
  return entry;
}

function child(el: XmlElement, name: string): string | undefined {
  return el.children.find((c) => c.name === name)?.text;
}

function listError(what: string): S3MalformedResponseError {
  return new S3MalformedResponseError(`XML parse error: ListBucketResult: ${what}`);
}
