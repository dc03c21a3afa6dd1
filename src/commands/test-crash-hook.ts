import type { ObjectStore } from '../storage/types.js';

/**
 * Crash tests only (LAKEGUARD_TEST_CRASH_BEFORE_WRITE=N): the process kills itself with
 * SIGKILL just before its N-th write (PUT or DELETE) to the repository, so a test can stop a
 * command at an exact point of its write sequence instead of at a timer's mercy.
 */
export function killBeforeWrite(store: ObjectStore, n: number): void {
  if (!Number.isInteger(n) || n < 1) return;
  let writes = 0;
  const tick = (): void => {
    if (++writes >= n) process.kill(process.pid, 'SIGKILL');
  };
  const target = store as { put: ObjectStore['put']; delete: ObjectStore['delete'] };
  const put = store.put.bind(store);
  const del = store.delete.bind(store);
  target.put = (...args) => {
    tick();
    return put(...args);
  };
  target.delete = (...args) => {
    tick();
    return del(...args);
  };
}

/** The hook as the commands that support it arm it: from LAKEGUARD_TEST_CRASH_BEFORE_WRITE, when set. */
export function killBeforeWriteFromEnv(store: ObjectStore): void {
  const crashAt = process.env.LAKEGUARD_TEST_CRASH_BEFORE_WRITE;
  if (crashAt !== undefined && crashAt !== '') killBeforeWrite(store, Number(crashAt));
}
