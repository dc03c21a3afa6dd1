/**
 * Watch, part 1: S3 event notifications as lakeguard reads them. One parser for the shapes a
 * bucket's change can arrive in: S3 event records (`{"Records": [...]}`, from AWS S3 to SQS,
 * and from Ceph RGW topics by HTTP push), the same wrapped in an SNS notification, and
 * EventBridge's "Object Created" / "Object Deleted" events. Only what the key's backup needs
 * is kept: which key of which bucket changed, and an identity to drop repeated deliveries.
 */

/** One change a bucket reported. */
export interface ChangeEvent {
  bucket: string;
  key: string;
  /** created: a new version (Put, Post, Copy, CompleteMultipartUpload); removed: a deletion, delete marker or expiration. */
  kind: 'created' | 'removed';
  /**
   * The same change delivered twice has the same id: bucket, key and the first of the
   * event's sequencer, version id and ETag (S3 gives a sequencer per key change; RGW too).
   */
  id: string;
}

/** What one delivery held: the changes, and how many records were not object changes (tests, tagging, restores). */
export interface ParsedDelivery {
  events: ChangeEvent[];
  ignored: number;
  /** Keys of records no S3 object can have (not well-formed Unicode, empty, over 1,024 bytes): dropped, to be reported. */
  badKeys: string[];
}

/**
 * Names of the events that change what a backup records. ObjectCreated:* covers Put, Post,
 * Copy and CompleteMultipartUpload; ObjectRemoved:* Delete and DeleteMarkerCreated;
 * LifecycleExpiration:* (AWS) and ObjectLifecycle:Expiration:* (RGW) the lifecycle's.
 */
function kindOf(eventName: string): ChangeEvent['kind'] | undefined {
  const name = eventName.replace(/^s3:/, '');
  if (name.startsWith('ObjectCreated:')) return 'created';
  if (name.startsWith('ObjectRemoved:') || name.startsWith('LifecycleExpiration:') || name.startsWith('ObjectLifecycle:Expiration')) return 'removed';
  return undefined;
}

/** EventBridge detail-types of S3 (docs: "Amazon S3 event notifications with EventBridge"). */
const EVENTBRIDGE_KINDS: Record<string, ChangeEvent['kind']> = {
  'Object Created': 'created',
  'Object Deleted': 'removed',
};

/** A delivery's body (parsed JSON). Throws a plain Error for a body that is no event at all. */
export function parseDelivery(body: unknown): ParsedDelivery {
  const out: ParsedDelivery = { events: [], ignored: 0, badKeys: [] };
  collect(body, out, 0);
  return out;
}

function collect(body: unknown, out: ParsedDelivery, depth: number): void {
  if (!isObject(body)) throw new Error('not a JSON object');
  // SNS (topic → SQS subscription without raw delivery): the event is the Message string.
  if (body.Type === 'Notification' && typeof body.Message === 'string' && depth === 0) {
    collect(JSON.parse(body.Message) as unknown, out, depth + 1);
    return;
  }
  if (Array.isArray(body.Records)) {
    for (const record of body.Records) {
      keep(fromRecord(record), out);
    }
    return;
  }
  if (typeof body['detail-type'] === 'string' && isObject(body.detail)) {
    keep(fromEventBridge(body['detail-type'], body.detail), out);
    return;
  }
  // S3's test message when a notification is configured ({"Event": "s3:TestEvent", ...}).
  if (body.Event === 's3:TestEvent') {
    out.ignored++;
    return;
  }
  throw new Error('neither S3 event records, an SNS notification nor an EventBridge event');
}

/**
 * Adds an event, unless it is none of interest (ignored) or names a key no S3 object can have:
 * such a key would fail every run that lists it (the whole group's batch), so it is dropped here
 * and the watcher says so. S3 keys are UTF-8 of 1 to 1,024 bytes.
 */
function keep(event: ChangeEvent | undefined, out: ParsedDelivery): void {
  if (event === undefined) out.ignored++;
  else if (!possibleKey(event.key)) out.badKeys.push(event.key);
  else out.events.push(event);
}

/** A lone surrogate: a JSON string may hold one, UTF-8 (and so an S3 key) cannot. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function possibleKey(key: string): boolean {
  return key !== '' && !LONE_SURROGATE.test(key) && Buffer.byteLength(key) <= 1024;
}

function fromRecord(record: unknown): ChangeEvent | undefined {
  if (!isObject(record) || typeof record.eventName !== 'string') return undefined;
  const kind = kindOf(record.eventName);
  const s3 = record.s3;
  if (kind === undefined || !isObject(s3) || !isObject(s3.bucket) || !isObject(s3.object)) return undefined;
  const bucket = s3.bucket.name;
  const rawKey = s3.object.key;
  if (typeof bucket !== 'string' || typeof rawKey !== 'string') return undefined;
  // AWS URL-encodes the key (spaces as '+'); Ceph RGW sends it as it is ("a b+c" stays so).
  const key = record.eventSource === 'ceph:s3' ? rawKey : decodeKey(rawKey);
  if (key === undefined) return undefined;
  return { bucket, key, kind, id: identity(bucket, key, s3.object.sequencer, s3.object.versionId, s3.object.eTag, record.eventName) };
}

function fromEventBridge(detailType: string, detail: Record<string, unknown>): ChangeEvent | undefined {
  const kind = EVENTBRIDGE_KINDS[detailType];
  if (kind === undefined || !isObject(detail.bucket) || !isObject(detail.object)) return undefined;
  const bucket = detail.bucket.name;
  const key = detail.object.key;
  if (typeof bucket !== 'string' || typeof key !== 'string') return undefined;
  // EventBridge keys are not URL-encoded.
  const o = detail.object;
  return { bucket, key, kind, id: identity(bucket, key, o.sequencer, o['version-id'], o.etag, detailType) };
}

function identity(bucket: string, key: string, sequencer: unknown, versionId: unknown, etag: unknown, eventName: string): string {
  const first = [sequencer, versionId, etag].find((v) => typeof v === 'string' && v !== '') as string | undefined;
  // Without any (a removal without version or sequencer): the event name, so a deletion and a creation differ.
  return `${bucket}\0${key}\0${first ?? eventName}`;
}

function decodeKey(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One warning per delivery that named keys no S3 object can have (printable, the first few). */
export function warnBadKeys(keys: readonly string[], where: string, warn: ((message: string) => void) | undefined): void {
  if (keys.length === 0 || warn === undefined) return;
  const shown = keys.slice(0, 3).map((k) => JSON.stringify(k)).join(', ');
  warn(`watch: ${where} named ${keys.length === 1 ? 'a key' : `${keys.length} keys`} no S3 object can have (${shown}${keys.length > 3 ? ', …' : ''}): dropped, the other changes are kept`);
}
