import type { Repository } from '../repository/repository.js';

/**
 * Crash tests only (LAKEGUARD_TEST_CRASH_BEFORE_WRITE=N): the process kills itself with
 * SIGKILL just before its N-th write (PUT or DELETE) to the repository, so a test can stop a
 * command at an exact point of its write sequence instead of at a timer's mercy. Every write of
 * an open repository goes through its `put` or `deleteObject`.
 */
export function killBeforeWrite(repo: Repository, n: number): void {
  if (!Number.isInteger(n) || n < 1) return;
  let writes = 0;
  const tick = (): void => {
    if (++writes >= n) process.kill(process.pid, 'SIGKILL');
  };
  const target = repo as { put: Repository['put']; deleteObject: Repository['deleteObject'] };
  const put = repo.put.bind(repo);
  const del = repo.deleteObject.bind(repo);
  target.put = (...args) => {
    tick();
    return put(...args);
  };
  target.deleteObject = (...args) => {
    tick();
    return del(...args);
  };
}

/** The hook as the commands that support it arm it: from LAKEGUARD_TEST_CRASH_BEFORE_WRITE, when set. */
export function killBeforeWriteFromEnv(repo: Repository): void {
  const crashAt = process.env.LAKEGUARD_TEST_CRASH_BEFORE_WRITE;
  if (crashAt !== undefined && crashAt !== '') killBeforeWrite(repo, Number(crashAt));
}
