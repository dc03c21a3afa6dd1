import { describe, expect, it } from 'vitest';
import { watchAbort } from '../../src/util/abort-watch.js';

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
