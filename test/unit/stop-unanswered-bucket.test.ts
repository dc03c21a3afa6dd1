// A run stopped (SIGTERM: watch's --stop-grace, backup's Ctrl-C) while its first request to the
// bucket, whether it keeps versions, finds no S3 server answering: the run ends at once, with no
// retry after the stop, instead of waiting out every retry (seconds; minutes for a server that
// never answers) while a supervisor's own grace runs out.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupGroup } from '../../src/engine/backup.js';
import { InterruptedError } from '../../src/errors.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group } from '../../src/policy/types.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';

describe('a run stopped while the bucket does not answer', () => {
  const dir = tempDir('stop-unanswered');
  let server: Server;
  let port: number;
  /** Connections the "S3 server" took: each is reset at once (a retryable failure). */
  let connections = 0;
  let onConnection: (() => void) | null = null;

  beforeAll(async () => {
    server = createServer((socket: Socket) => {
      connections++;
      socket.resetAndDestroy();
      onConnection?.();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    dir.cleanup();
  });

  it('ends with the stop, making no request after it', async () => {
    const repo = await initRepo(new FsStore({ root: `${dir.path}/repo`, fsync: false }));
    const catalog = openCatalog(dir.path, repo);
    const bucket = new S3Store({ bucket: 'lake', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } });
    const group: Group = { name: 'g', sources: [] };
    const stop = new AbortController();
    onConnection = () => stop.abort(new InterruptedError('stopped'));
    try {
      const run = backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [{ bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: compileExcludes([]) }], signal: stop.signal });
      await expect(run).rejects.toBeInstanceOf(InterruptedError);
      expect(connections).toBe(1);
    } finally {
      catalog.close();
    }
  });
});
