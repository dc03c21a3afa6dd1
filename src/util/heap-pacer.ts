import v8 from 'node:v8';

/**
 * Collects garbage when the heap and the Buffers outside it have grown by `budgetBytes` since
 * the last collection, so peak memory follows what is live, not V8's heuristics. A backup or
 * restore allocates and drops a few hundred bytes of promise (and, where used, SDK) objects per
 * request and Buffers of object bodies and packs; V8 lets that garbage grow the heap
 * to 100+ MB before a full collection, and glibc keeps the pages. Measured on a 20,000-object
 * seed backup: live heap ~25 MB, heap used at the RSS peak 105 MB, peak RSS 281 MB; with a full
 * collection every second 213 MB, but 40 % more CPU per object (a forced collection is a full,
 * non-incremental mark-compact): hence a budget instead of a fixed rate.
 *
 * `gc` is node's global gc, which exists when node was started with --expose-gc (bin/lakeguard
 * does that); without one (`node bin/lakeguard`, lakeguard embedded in another program, other
 * runtimes) the pacer does nothing. Returns the function that stops it.
 */
export function startHeapPacer(
  intervalMs = 250,
  budgetBytes = 48 * 1024 * 1024,
  gc: (() => void) | undefined = globalGc(),
  read: () => number = heapAndBuffersInUse,
  now: () => number = () => performance.now(),
): () => void {
  if (gc === undefined) return () => {};
  const collect = gc;
  // Growth is measured from the lowest reading since the last collection: a reading taken
  // while dead Buffers were still counted would otherwise hide the next budget's worth.
  let low = read();
  let nextCheck = now() + intervalMs;
  const check = (): void => {
    nextCheck = now() + intervalMs;
    const reading = read();
    if (reading < low + budgetBytes) {
      low = Math.min(low, reading);
      return;
    }
    collect();
    low = read();
  };
  const poll = (): void => {
    if (now() >= nextCheck) check();
  };
  const timer = setInterval(check, intervalMs);
  timer.unref();
  polls.add(poll);
  return () => {
    clearInterval(timer);
    polls.delete(poll);
  };
}

/** The running pacers' polls (one in a lakeguard process; a set so that stopping one is exact). */
const polls = new Set<() => void>();

/**
 * Gives the pacer its turn from inside a loop that does not return to the event loop. A timer
 * runs only between macrotasks, and a backup of local files (synchronous reads, encoding on
 * this thread, promises that settle as microtasks) returned to the event loop only at a pack
 * write: every 2-3 s, 4,000-8,000 objects apart (the 2 s samples of a 1,000,000-file seed came
 * 2-4 s apart). The pacer then ran as rarely, and V8's own heuristics let garbage and dead
 * Buffers reach 128 + 95 MB. Callers poll once per object: a clock read when it is not time
 * yet (nanoseconds), the pacer's check at most once per interval.
 */
export function pollHeapPacer(): void {
  for (const poll of polls) poll();
}

/**
 * What the pacer watches: the JS heap in use plus the Buffers outside it (external memory). A
 * Buffer's bytes are freed only when the collector finds its object dead, and a restore through
 * the lean PUT path made so little JS garbage that dropped object bodies stayed resident
 * (+14-25 MB peak RSS, bench/README.md).
 */
export function heapAndBuffersInUse(): number {
  const h = v8.getHeapStatistics();
  return h.used_heap_size + h.external_memory;
}

/** Node's gc function when node was started with --expose-gc; read when the pacer starts. */
function globalGc(): (() => void) | undefined {
  const gc = globalThis.gc;
  // A full, synchronous collection: gc() without options.
  return typeof gc === 'function' ? () => gc() : undefined;
}
