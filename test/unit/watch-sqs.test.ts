// The SQS event source against RECORDED responses: test/fixtures/sqs/recorded.json holds what
// moto_server 5.2.1 answered to the SQS JSON protocol (no SQS-compatible server installs from
// npm or Debian here; moto is a pip package preinstalled on this machine, not something CI
// has). A local HTTP server replays them and checks each request lakeguard signs and sends.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../src/engine/watch-events.js';
import { SqsPoller } from '../../src/engine/watch-sqs.js';

interface Recorded {
  status: number;
  contentType: string;
  body: string;
}
const recorded = JSON.parse(readFileSync(new URL('../fixtures/sqs/recorded.json', import.meta.url), 'utf8')) as Record<'receiveMessage' | 'deleteMessage' | 'receiveMissingQueue', Recorded>;

interface Seen {
  target: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

describe('SQS event source (recorded responses)', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  async function replay(answer: (target: string) => Recorded): Promise<{ url: string; seen: Seen[] }> {
    const seen: Seen[] = [];
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const target = String(req.headers['x-amz-target']);
        seen.push({ target, headers: req.headers, body: JSON.parse(text) as Record<string, unknown> });
        const r = answer(target);
        res.writeHead(r.status, { 'content-type': r.contentType });
        res.end(r.body);
      });
    });
    const listening = server;
    await new Promise<void>((r) => listening.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(listening.address() as AddressInfo).port}/123456789012/lake-events`, seen };
  }

  const poller = (url: string, ingest: (changes: ChangeEvent[], done: () => void) => Promise<unknown>, warnings: string[] = []) =>
    new SqsPoller({
      spec: { kind: 'sqs', url, text: `sqs+http://${url.slice(7)}` },
      region: 'eu-west-1',
      credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'session' }),
      waitSeconds: 20,
      ingest,
      onWarning: (m) => warnings.push(m),
    });

  it('long-polls, reads every event shape, and deletes a message only when its runs are committed', async () => {
    const { url, seen } = await replay((target) => (target === 'AmazonSQS.ReceiveMessage' ? recorded.receiveMessage : recorded.deleteMessage));
    const delivered: ChangeEvent[][] = [];
    const commits: (() => void)[] = [];
    const warnings: string[] = [];
    const p = poller(url, async (changes, done) => {
      delivered.push(changes);
      commits.push(done);
    }, warnings);
    expect(await p.receiveOnce()).toBe(4);
    const [receive] = seen;
    expect(receive).toMatchObject({ target: 'AmazonSQS.ReceiveMessage', body: { QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 } });
    expect(receive!.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(receive!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/sqs\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=[0-9a-f]{64}$/);
    expect(delivered.map((d) => d.map((c) => `${c.kind} ${c.key}`))).toEqual([['created data/a b.parquet'], ['removed data/gone'], ['removed data/old']]);
    expect(warnings).toEqual([expect.stringMatching(/is not an S3 event .*left in the queue/)]);
    expect(seen).toHaveLength(1); // nothing deleted before a commit

    const handles = (JSON.parse(recorded.receiveMessage.body) as { Messages: { ReceiptHandle: string }[] }).Messages.map((m) => m.ReceiptHandle);
    commits[1]!();
    while (seen.length < 2) await new Promise((r) => setTimeout(r, 10));
    expect(seen[1]).toMatchObject({ target: 'AmazonSQS.DeleteMessage', body: { QueueUrl: url, ReceiptHandle: handles[1] } });
    expect(seen).toHaveLength(2);
  });

  it('does not ingest a message delivered again while it waits for its run; the newest receipt handle deletes it', async () => {
    const again = JSON.parse(recorded.receiveMessage.body) as { Messages: { ReceiptHandle: string }[] };
    for (const m of again.Messages) m.ReceiptHandle = `${m.ReceiptHandle}-again`;
    let receives = 0;
    const { url, seen } = await replay((target) =>
      target !== 'AmazonSQS.ReceiveMessage' ? recorded.deleteMessage : receives++ === 0 ? recorded.receiveMessage : { ...recorded.receiveMessage, body: JSON.stringify(again) },
    );
    const commits: (() => void)[] = [];
    const p = poller(url, async (_changes, done) => {
      commits.push(done);
    });
    expect(await p.receiveOnce()).toBe(4);
    expect(await p.receiveOnce()).toBe(4); // the visibility timeout passed: the same messages again
    expect(commits).toHaveLength(3); // one acknowledgement each, not one per delivery
    commits[0]!();
    while (seen.length < 3) await new Promise((r) => setTimeout(r, 10));
    expect(seen[2]).toMatchObject({ target: 'AmazonSQS.DeleteMessage', body: { ReceiptHandle: again.Messages[0]!.ReceiptHandle } });
  });

  it('names the queue and the server\'s error when a receive fails', async () => {
    const { url } = await replay(() => recorded.receiveMissingQueue);
    await expect(poller(url, async () => {}).receiveOnce()).rejects.toThrow(/ReceiveMessage: HTTP 400: com\.amazonaws\.sqs#QueueDoesNotExist The specified queue does not exist/);
  });
});
