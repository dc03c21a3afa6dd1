// The pieces of `lakeguard serve` that decide before any request: --listen, loopback, TLS,
// credentials, the refusals before the repository is opened, and what ends the server (a
// signal, or a lost repository lock).
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { describe, expect, it, vi } from 'vitest';
import { isLoopback, parseListen, serveCredentials, stopRequested } from '../../src/commands/serve.js';
import { LockedError, UsageError } from '../../src/errors.js';
import { startS3Server } from '../../src/serve/http-server.js';
import { EMPTY_SHA256, amzDate, signV4 } from '../../src/storage/s3-sigv4.js';
import { MapView } from '../helpers/map-view.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/serve-tls/${name}`, import.meta.url));

describe('--listen', () => {
  it('reads host:port, [v6]:port and :port', () => {
    expect(parseListen('127.0.0.1:9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen(':9001')).toEqual({ host: '127.0.0.1', port: 9001 });
    expect(parseListen('serve.internal:443')).toEqual({ host: 'serve.internal', port: 443 });
    for (const bad of ['localhost', '127.0.0.1:99999', '[nope]:1', '::1:9000', '']) expect(() => parseListen(bad), bad).toThrow(UsageError);
  });

  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.5.0.1', '::1', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1']) expect(isLoopback(host), host).toBe(false);
  });
});

/** Runs `lakeguard serve ...args` in this process (it refuses before it opens anything): exit code and stderr. */
async function refused(...args: string[]): Promise<{ code: number; stderr: string }> {
  const { main } = await import('../../src/cli.js');
  const stderr: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => stderr.push(String(chunk)) > 0);
  try {
    const code = await main(['node', 'lakeguard', 'serve', '--repo', '/nonexistent', ...args]);
    return { code, stderr: stderr.join('') };
  } finally {
    spy.mockRestore();
  }
}

describe('refusals before the repository is opened (exit 2)', () => {
  it('a --listen address that is not loopback, without TLS or --insecure-listen, naming both ways out', async () => {
    const r = await refused('--listen', '0.0.0.0:0');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--listen 0.0.0.0:0 is not a loopback address');
    expect(r.stderr).toContain('--insecure-listen');
  });

  it('a malformed --listen, half a TLS pair, a key that is not PEM, a certificate given as the key', async () => {
    const cert = new URL('../fixtures/serve-tls/cert.pem', import.meta.url).pathname;
    const key = new URL('../fixtures/serve-tls/key.pem', import.meta.url).pathname;
    expect(await refused('--listen', 'localhost')).toMatchObject({ code: 2, stderr: expect.stringContaining('expected host:port') });
    expect(await refused('--tls-cert', cert)).toMatchObject({ code: 2, stderr: expect.stringContaining('give both --tls-cert and --tls-key') });
    expect(await refused('--tls-cert', cert, '--tls-key', cert)).toMatchObject({ code: 2, stderr: expect.stringContaining('cannot use --tls-cert') });
    expect(await refused('--tls-cert', key, '--tls-key', key)).toMatchObject({ code: 2, stderr: expect.stringContaining('cannot use --tls-cert') });
    expect(await refused('--at', 'now', '--run', '1')).toMatchObject({ code: 2, stderr: expect.stringContaining('not both') });
  });

  it('a --max-connections or --max-requests that is not a whole number from 1', async () => {
    expect(await refused('--max-connections', '0')).toMatchObject({ code: 2, stderr: expect.stringContaining('--max-connections "0": expected a whole number from 1') });
    expect(await refused('--max-requests', '1.5')).toMatchObject({ code: 2, stderr: expect.stringContaining('--max-requests "1.5": expected a whole number from 1') });
  });
});

describe('credentials', () => {
  it('takes the pair from the environment (trimmed; a secret of 16 characters or more), or generates one; half a pair is bad usage', () => {
    const secret = 'sixteen-chars-ok';
    expect(serveCredentials({ LAKEGUARD_SERVE_ACCESS_KEY_ID: 'K', LAKEGUARD_SERVE_SECRET_ACCESS_KEY: secret })).toEqual({ credentials: { accessKeyId: 'K', secretAccessKey: secret }, generated: false });
    // A Secret mounted from a file ends in a newline no client signs with.
    expect(serveCredentials({ LAKEGUARD_SERVE_ACCESS_KEY_ID: 'K\n', LAKEGUARD_SERVE_SECRET_ACCESS_KEY: `${secret}\n` }).credentials).toEqual({ accessKeyId: 'K', secretAccessKey: secret });
    expect(() => serveCredentials({ LAKEGUARD_SERVE_ACCESS_KEY_ID: 'K', LAKEGUARD_SERVE_SECRET_ACCESS_KEY: 'fifteen-chars-x' })).toThrow(/LAKEGUARD_SERVE_SECRET_ACCESS_KEY has 15 characters: at least 16 are needed/);
    expect(() => serveCredentials({ LAKEGUARD_SERVE_ACCESS_KEY_ID: 'team/K', LAKEGUARD_SERVE_SECRET_ACCESS_KEY: secret })).toThrow(UsageError);
    const a = serveCredentials({});
    const b = serveCredentials({});
    expect(a.generated).toBe(true);
    expect(a.credentials.accessKeyId).toMatch(/^LG[A-Z2-7]{16}$/);
    expect(a.credentials.secretAccessKey.length).toBe(40);
    expect(a.credentials).not.toEqual(b.credentials);
    expect(() => serveCredentials({ LAKEGUARD_SERVE_ACCESS_KEY_ID: 'K' })).toThrow(UsageError);
  });
});

describe('stopping', () => {
  it('stops for the signal, or with the LockedError of a lost lock', async () => {
    const signal = new AbortController();
    const lock = new AbortController();
    const byLock = stopRequested(signal.signal, lock.signal);
    lock.abort(new LockedError('lost the repository lock locks/x'));
    await expect(byLock).resolves.toBeInstanceOf(LockedError);
    const bySignal = stopRequested(signal.signal, null);
    signal.abort();
    await expect(bySignal).resolves.toBe('signal');
  });
});

describe('https', () => {
  it('serves over TLS with the given certificate, and the signature still decides', async () => {
    const now = Date.UTC(2026, 11, 3);
    const view = new MapView(new Map([['lake', new Map([['k', [{ versionId: null, time: now - 1000, body: Buffer.from('over tls') }]]])]]), now);
    const credentials = { accessKeyId: 'TLSKEY', secretAccessKey: 'tls-secret' };
    const server = await startS3Server({ view, credentials, startedAt: now }, { host: '127.0.0.1', port: 0, tls: { cert: fixture('cert.pem'), key: fixture('key.pem') } });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const get = (secret: string): Promise<{ status: number; body: string }> => {
        const headers = { host: new URL(server.url).host, 'x-amz-date': amzDate(new Date()), 'x-amz-content-sha256': EMPTY_SHA256 };
        const authorization = signV4({ method: 'GET', path: '/lake/k', query: '', headers, region: 'us-east-1', service: 's3', credentials: { ...credentials, secretAccessKey: secret } });
        return new Promise((resolve, reject) => {
          const req = request(`${server.url}/lake/k`, { ca: fixture('cert.pem'), headers: { ...headers, authorization } }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
          });
          req.on('error', reject).end();
        });
      };
      expect(await get('tls-secret')).toEqual({ status: 200, body: 'over tls' });
      expect((await get('wrong')).status).toBe(403);
    } finally {
      await server.stop(1000);
    }
  });
});
