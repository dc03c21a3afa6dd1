/**
 * Watch, part 6: an SQS queue as event source (AWS: S3 → SQS directly, through SNS, or
 * EventBridge → SQS). Long polling (ReceiveMessage, WaitTimeSeconds 20) over the SQS JSON
 * protocol, signed with the project's own SigV4 (no SDK client for one request type). A
 * message is deleted only once every run covering its changes is committed (the watcher's
 * ingest callback); until then it stays in flight, and after a crash the queue delivers it
 * again (duplicates are harmless: a key already backed up is found unchanged).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createHash } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { EventsSpec } from '../policy/schema-continuous.js';
import { defaultChainProvider, type CredentialsProvider } from '../storage/credentials.js';
import { amzDate, signV4 } from '../storage/s3-sigv4.js';
import { parseDelivery, warnBadKeys, type ChangeEvent } from './watch-events.js';

const WAIT_SECONDS = 20;
/** After a failed receive, wait this long before the next (doubling, up to a minute). */
const RETRY_MS = 1000;

interface SqsMessage {
  MessageId: string;
  ReceiptHandle: string;
  Body: string;
}

export interface SqsPollerOptions {
  spec: Extract<EventsSpec, { kind: 'sqs' }>;
  /** Region when the queue URL does not say (sqs.<region>.amazonaws.com). */
  region?: string | undefined;
  ingest: (changes: ChangeEvent[], onCommitted: () => void) => Promise<unknown>;
  credentials?: CredentialsProvider;
  onWarning?: (message: string) => void;
  /** Long-poll wait in seconds (tests use 0 or 1). */
  waitSeconds?: number;
}

export class SqsPoller {
  readonly url: string;
  private readonly region: string;
  private readonly credentials: CredentialsProvider;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  /**
   * Messages whose changes wait for their runs, by id, with the newest delivery. One delivered
   * again meanwhile (its visibility timeout passed: a long outage) is not ingested again, which
   * would hold one more acknowledgement per delivery; the newest receipt handle deletes it.
   */
  private readonly waiting = new Map<string, SqsMessage>();

  constructor(private readonly opts: SqsPollerOptions) {
    this.url = opts.spec.url;
    const host = new URL(this.url).hostname;
    this.region = /^sqs\.([a-z0-9-]+)\.amazonaws\.com$/.exec(host)?.[1] ?? opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
    this.credentials = opts.credentials ?? defaultChainProvider(`the SQS queue ${this.url}`);
  }

  start(): void {
    this.loop ??= this.poll();
  }

  stop(): void {
    this.stopping.abort();
  }

  async settled(): Promise<void> {
    await this.loop;
  }

  /** One receive: hands the messages' changes to ingest; resolves with how many messages came. */
  async receiveOnce(): Promise<number> {
    const answer = (await this.call('ReceiveMessage', {
      QueueUrl: this.url,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: this.opts.waitSeconds ?? WAIT_SECONDS,
    })) as { Messages?: SqsMessage[] };
    const messages = answer.Messages ?? [];
    for (const m of messages) {
      if (this.waiting.has(m.MessageId)) {
        this.waiting.set(m.MessageId, m);
        continue;
      }
      let changes: ChangeEvent[];
      try {
        const delivery = parseDelivery(JSON.parse(m.Body) as unknown);
        changes = delivery.events;
        warnBadKeys(delivery.badKeys, `message ${m.MessageId} of ${this.url}`, this.opts.onWarning);
      } catch (err) {
        // Not an event: left in the queue (its redrive policy moves it aside), never deleted unread.
        this.opts.onWarning?.(`watch: message ${m.MessageId} of ${this.url} is not an S3 event (${errorMessage(err)}); left in the queue`);
        continue;
      }
      this.waiting.set(m.MessageId, m);
      try {
        await this.opts.ingest(changes, () => void this.remove(m.MessageId));
      } catch (err) {
        this.waiting.delete(m.MessageId); // not journaled: its next delivery is ingested
        throw err;
      }
    }
    return messages.length;
  }

  private async poll(): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      try {
        await this.receiveOnce();
        failures = 0;
      } catch (err) {
        if (this.stopping.signal.aborted) break;
        failures++;
        this.opts.onWarning?.(`watch: cannot receive from ${this.url}: ${errorMessage(err)}; retrying`);
        await new Promise((r) => setTimeout(r, Math.min(RETRY_MS * 2 ** (failures - 1), 60_000)));
      }
    }
  }

  private async remove(id: string): Promise<void> {
    const m = this.waiting.get(id);
    if (m === undefined) return;
    this.waiting.delete(id);
    try {
      await this.call('DeleteMessage', { QueueUrl: this.url, ReceiptHandle: m.ReceiptHandle });
    } catch (err) {
      // It comes back after its visibility timeout; its keys are then found unchanged.
      this.opts.onWarning?.(`watch: cannot delete message ${m.MessageId} from ${this.url}: ${errorMessage(err)}; it will be delivered again`);
    }
  }

  /** One SQS JSON-protocol call (AWS JSON 1.0, X-Amz-Target: AmazonSQS.<action>). */
  private async call(actionName: string, payload: Record<string, unknown>): Promise<unknown> {
    const url = new URL(this.url);
    const body = JSON.stringify(payload);
    const creds = await this.credentials();
    const headers: Record<string, string> = {
      host: url.host,
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `AmazonSQS.${actionName}`,
      'x-amz-date': amzDate(new Date()),
      ...(creds.sessionToken === undefined ? {} : { 'x-amz-security-token': creds.sessionToken }),
    };
    const payloadHash = createHash('sha256').update(body).digest('hex');
    headers.authorization = signV4({ method: 'POST', path: '/', query: '', headers, region: this.region, service: 'sqs', credentials: creds, payloadHash });
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      const req = send({ host: url.hostname, port: url.port === '' ? undefined : Number(url.port), method: 'POST', path: '/', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, signal: this.stopping.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 500) >= 300) {
            let reason = text.slice(0, 200);
            try {
              const parsed = JSON.parse(text) as { __type?: string; message?: string };
              reason = `${parsed.__type ?? ''} ${parsed.message ?? ''}`.trim();
            } catch {
              // not JSON: the first characters say enough
            }
            reject(new Error(`SQS ${actionName}: HTTP ${res.statusCode}: ${reason}`));
            return;
          }
          try {
            resolve(text === '' ? {} : JSON.parse(text));
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}
