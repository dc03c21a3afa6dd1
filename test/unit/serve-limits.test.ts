// serve's bounds against a flood or a slow client (docs/serve.md "Limits"): connections over
// --max-connections are closed as they arrive, requests over --max-requests are refused with
// 503 SlowDown (also when pipelined on one connection), a slow header sender is answered 408, an
// oversized request 431. Deterministic: the server's own events say when a connection was
// accepted, dropped or closed, and the access log when a request no longer counts.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { startS3Server, type AccessEntry, type RunningServer } from '../../src/serve/http-server.js';
import type { ByteRange, ObjectHead } from '../../src/serve/view-types.js';
import { EMPTY_SHA256, amzDate, signV4 } from '../../src/storage/s3-sigv4.js';
import { MapView } from '../helpers/map-view.js';

const NOW = Date.UTC(2026, 11, 3, 10);
const credentials = { accessKeyId: 'LGUNITKEY', secretAccessKey: 'unit-secret' };

/** A view whose `slow` object streams only what the test writes into `body`. */
class StallingView extends MapView {
  body = new PassThrough();
  override open(head: ObjectHead, range?: ByteRange): Readable {
    return head.key === 'slow' ? this.body : super.open(head, range);
  }
}

function lake(): StallingView {
  const keys = new Map([
    ['slow', [{ versionId: 's1', time: NOW - 1000, body: Buffer.from('0123456789') }]],
    ['fast', [{ versionId: 'f1', time: NOW - 1000, body: Buffer.from('quick') }]],
  ]);
  return new StallingView(new Map([['lake', keys]]), NOW);
}

let server: RunningServer | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.stop(0);
  server = undefined;
});

/** The raw bytes of a signed GET (keep-alive unless told). */
function signedRequest(path: string, opts: { close?: boolean } = {}): string {
  const host = new URL(server!.url).host;
  const headers = { host, 'x-amz-date': amzDate(new Date()), 'x-amz-content-sha256': EMPTY_SHA256 };
  const authorization = signV4({ method: 'GET', path, query: '', headers, region: 'us-east-1', service: 's3', credentials });
  const lines = Object.entries({ ...headers, authorization, ...(opts.close ? { connection: 'close' } : {}) }).map(([k, v]) => `${k}: ${v}`);
  return `GET ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

async function open(): Promise<Socket> {
  const url = new URL(server!.url);
  const s = connect(Number(url.port), url.hostname);
  sockets.push(s);
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

/** The status codes of the complete responses in `text` (each with its Content-Length body). */
function completeStatuses(text: string): number[] {
  const out: number[] = [];
  for (let at = 0; ; ) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const head = text.slice(at, end);
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    if (text.length < end + 4 + length) return out;
    out.push(Number(head.slice(9, 12)));
    at = end + 4 + length;
  }
}

/** Sends on a socket; resolves with the statuses of the responses once `n` are complete, or the socket closed. */
function statuses(s: Socket, raw: string, n: number): Promise<number[]> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (completeStatuses(text).length >= n) resolve(completeStatuses(text));
    });
    s.on('close', () => resolve(completeStatuses(text)));
    s.write(raw);
  });
}

describe('serve limits', () => {
  it('closes connections over --max-connections as they arrive; the open ones still answer, and a closed one frees its slot', async () => {
    const warnings: string[] = [];
    server = await startS3Server({ view: lake(), credentials, startedAt: NOW, onWarning: (m) => warnings.push(m) }, { host: '127.0.0.1', port: 0, maxConnections: 2 });
    const accepted: Socket[] = [];
    server.server.on('connection', (s: Socket) => accepted.push(s));
    const a = await open();
    const b = await open();
    const dropped = once(server.server, 'drop');
    const c = await open();
    const cClosed = once(c, 'close');
    c.resume(); // a socket that reads nothing would not see the close
    await dropped;
    await cClosed;
    expect(accepted).toHaveLength(2);
    expect(warnings).toEqual(['1 connections refused so far: 2 were open (--max-connections)']);
    expect(await statuses(a, signedRequest('/lake/fast'), 1)).toEqual([200]);
    expect(await statuses(b, signedRequest('/lake/fast'), 1)).toEqual([200]);
    // A frees its slot once the server has closed its side: a new connection is accepted.
    const aGone = once(accepted[0]!, 'close');
    a.destroy();
    await aGone;
    const d = await open();
    expect(await statuses(d, signedRequest('/lake/fast', { close: true }), 1)).toEqual([200]);
    expect(accepted).toHaveLength(3);
  });

  it('refuses requests over --max-requests with 503 SlowDown, pipelined ones too, and answers again once one is done', async () => {
    const view = lake();
    const access: AccessEntry[] = [];
    let slowLogged!: () => void;
    const logged = new Promise<void>((resolve) => (slowLogged = resolve));
    const onAccess = (e: AccessEntry): void => {
      access.push(e);
      if (e.key === 'slow') slowLogged();
    };
    const warnings: string[] = [];
    server = await startS3Server({ view, credentials, startedAt: NOW, maxRequests: 1, onAccess, onWarning: (m) => warnings.push(m) }, { host: '127.0.0.1', port: 0 });
    // One request in flight: its body waits for the test.
    const slow = await open();
    let slowText = '';
    let slowDone!: () => void;
    const slowAnswered = new Promise<void>((resolve) => (slowDone = resolve));
    slow.on('data', (d: Buffer) => {
      slowText += d.toString('latin1');
      if (completeStatuses(slowText).length === 1) slowDone();
    });
    const headersSent = new Promise<void>((resolve) => slow.on('data', () => slowText.includes('\r\n\r\n') && resolve()));
    slow.write(signedRequest('/lake/slow'));
    // Node sends the headers with the first bytes of the body.
    view.body.write(Buffer.from('01234'));
    await headersSent;
    expect(slowText).toMatch(/^HTTP\/1\.1 200/);

    // Another connection: 503 SlowDown at once, and the connection is closed after it.
    const other = await open();
    const refused = await statuses(other, signedRequest('/lake/fast'), 1);
    expect(refused).toEqual([503]);
    // 2,000 requests pipelined on a third connection: none is answered beyond the cap, nothing piles up.
    // (Read until the server closes it: a socket that reads nothing would never see the close.)
    const flood = await open();
    expect(await statuses(flood, signedRequest('/lake/fast').repeat(2000), Infinity)).toEqual([503]);
    expect(access.filter((e) => e.status === 200)).toHaveLength(0);
    expect(access.filter((e) => e.status === 503).length).toBeGreaterThanOrEqual(2);
    expect(access.filter((e) => e.status === 503).length).toBeLessThan(100);
    expect(access.every((e) => e.status !== 503 || e.error === 'SlowDown')).toBe(true);
    expect(warnings[0]).toBe('1 requests refused with 503 SlowDown so far: 1 were in flight (--max-requests)');

    // The slow request finishes; once it is logged, it no longer counts.
    view.body.end(Buffer.from('56789'));
    await slowAnswered;
    await logged;
    expect(slowText.endsWith('\r\n\r\n0123456789')).toBe(true);
    const again = await open();
    expect(await statuses(again, signedRequest('/lake/fast', { close: true }), 1)).toEqual([200]);
  });

  it('answers a slow header sender 408 and closes it; an oversized request line 431', async () => {
    server = await startS3Server({ view: lake(), credentials, startedAt: NOW }, { host: '127.0.0.1', port: 0, timeouts: { headersMs: 300, requestMs: 600 } });
    const slowloris = await open();
    expect(await statuses(slowloris, 'GET /lake/fast HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n', 1)).toEqual([408]);
    const idle = await open();
    expect(await statuses(idle, '', 1)).toEqual([408]);
    const long = await open();
    expect(await statuses(long, `GET /lake/${'k'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`, 1)).toEqual([431]);
  });
});
