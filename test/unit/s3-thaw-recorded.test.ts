// RECORDED RESPONSES, not a real server: RGW has no archive tier, so S3Store.thaw (RestoreObject)
// is tested against a tiny local HTTP server replaying the answers AWS S3 documents for
// POST /{bucket}/{key}?restore: 202 (restore started), 200 (a thawed copy is already readable)
// and 409 RestoreAlreadyInProgress.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { S3Store } from '../../src/storage/s3-store.js';

interface Seen {
  method: string;
  url: string;
  body: string;
}

describe('S3Store.thaw against recorded S3 RestoreObject answers', () => {
  let server: Server;
  let endpoint = '';
  const seen: Seen[] = [];
  const answers: { status: number; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', body });
        const a = answers.shift() ?? { status: 500, body: '' };
        res.writeHead(a.status, { 'content-type': 'application/xml', 'x-amz-request-id': 'recorded' });
        res.end(a.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const store = () =>
    new S3Store({
      bucket: 'vault',
      prefix: 'repo',
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDRECORDED', secretAccessKey: 'recorded-secret' },
      retry: { maxAttempts: 1 },
    });

  it('sends the days and tier, and tells started, ready and already in progress apart', async () => {
    answers.push(
      { status: 202, body: '' },
      { status: 200, body: '' },
      {
        status: 409,
        body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>RestoreAlreadyInProgress</Code><Message>Object restore is already in progress</Message><RequestId>recorded</RequestId></Error>',
      },
    );
    const s = store();
    expect(await s.thaw('packs/ab/abcd', { days: 7, tier: 'Bulk' })).toBe('started');
    expect(await s.thaw('packs/ab/abcd', { days: 7, tier: 'Standard' })).toBe('ready');
    expect(await s.thaw('packs/ab/abcd', { days: 7, tier: 'Standard' })).toBe('in-progress');
    expect(seen).toHaveLength(3);
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.url).toMatch(/^\/vault\/repo\/packs\/ab\/abcd\?restore/);
    expect(seen[0]!.body).toMatch(/<Days>7<\/Days>/);
    expect(seen[0]!.body).toMatch(/<Tier>Bulk<\/Tier>/);
    expect(seen[1]!.body).toMatch(/<Tier>Standard<\/Tier>/);
  });

  it('passes other refusals on as storage errors naming the request', async () => {
    answers.push({
      status: 403,
      body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>recorded</RequestId></Error>',
    });
    const err = await store()
      .thaw('packs/cd/cdef', { days: 1, tier: 'Standard' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('AccessDenied');
    expect((err as StorageError).message).toContain('packs/cd/cdef');
  });
});
