import { describe, expect, it } from 'vitest';
import { watchAbort } from '../../src/util/abort-watch.js';
import { PassThrough } from 'node:stream';
import { abortable } from '../../src/storage/common.js';

describe('watchAbort', () => {
  it('calls every watcher once, in order, except those forgotten, through one listener on the signal', () => {
    const ac = new AbortController();
    let listeners = 0;
    const add = ac.signal.addEventListener.bind(ac.signal);
    ac.signal.addEventListener = (...args: Parameters<typeof add>) => {
      listeners++;
      add(...args);
    };
    const called: string[] = [];
    watchAbort(ac.signal, () => called.push('a'));
    const forgetB = watchAbort(ac.signal, () => called.push('b'));
    const c = (): number => called.push('c');
    watchAbort(ac.signal, c);
    watchAbort(ac.signal, c);
    forgetB();
    forgetB();
    ac.abort();
    ac.abort();
    expect(called).toEqual(['a', 'c']);
    expect(listeners).toBe(1);
  });

  it('never calls a watcher added after the signal aborted (as addEventListener would not)', () => {
    const ac = new AbortController();
    ac.abort();
    let called = 0;
    const forget = watchAbort(ac.signal, () => called++);
    forget();
    expect(called).toBe(0);
  });
});

describe('abortable (a GET body outlives the call)', () => {
  it('destroys open bodies with the abort reason, and forgets bodies already closed', async () => {
    const ac = new AbortController();
    const open = abortable(new PassThrough(), ac.signal);
    const closed = abortable(new PassThrough(), ac.signal);
    closed.destroy();
    await new Promise((resolve) => closed.once('close', resolve));
    const failed = new Promise<Error>((resolve) => open.once('error', resolve));
    const reason = new Error('stop');
    ac.abort(reason);
    expect(await failed).toBe(reason);
    expect(open.destroyed).toBe(true);
    expect(closed.errored).toBe(null);
  });

  it('destroys a body at once when its signal has already aborted', async () => {
    const ac = new AbortController();
    const reason = new Error('gone');
    ac.abort(reason);
    const body = abortable(new PassThrough(), ac.signal);
    expect(body.destroyed).toBe(true);
    // The reason arrives as the body's error (emitted on the next tick).
    expect(await new Promise<Error>((resolve) => body.once('error', resolve))).toBe(reason);
  });
});
