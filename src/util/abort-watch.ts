/**
 * One 'abort' listener per AbortSignal, shared by everything that watches it. A seed passes the
 * run's one signal to every GET (one per small object): node's `http.request({ signal })` adds
 * an EventTarget listener and an end-of-stream watcher to each request, and reading a body added
 * another listener; both, added and removed per object, cost about 3 % of a seed's CPU. Here
 * each watcher is a Set entry, and the signal's own listener (added once, never removed: the
 * signal lives as long as the run) calls the watchers registered when it fires, in order.
 */
const watchers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `onAbort` once when `signal` aborts, unless the returned function is called first (it
 * forgets `onAbort`; calling it again is harmless). As with addEventListener, the same function
 * watches once however often it is passed, and on a signal that already aborted it is never
 * called: callers check `signal.aborted` first.
 */
export function watchAbort(signal: AbortSignal, onAbort: () => void): () => void {
  let set = watchers.get(signal);
  if (set === undefined) {
    const created = new Set<() => void>();
    set = created;
    watchers.set(signal, created);
    signal.addEventListener(
      'abort',
      () => {
        const now = [...created];
        created.clear();
        for (const fn of now) fn();
      },
      { once: true },
    );
  }
  if (signal.aborted) return noop;
  set.add(onAbort);
  const watching = set;
  return () => void watching.delete(onAbort);
}

function noop(): void {}
