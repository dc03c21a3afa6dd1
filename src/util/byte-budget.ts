/**
 * A bound on the bytes a pipeline holds at once. `acquire(n)` waits until n more bytes fit;
 * a request larger than the whole budget is let through alone (when nothing else is held),
 * so an oversized item slows the pipeline down instead of deadlocking it.
 */
export class ByteBudget {
  private held = 0;
  private waiters: (() => void)[] = [];

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.held;
  }

  async acquire(n: number): Promise<void> {
    while (this.held > 0 && this.held + n > this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.held += n;
  }

  release(n: number): void {
    this.held -= n;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Runs `task` holding n bytes of the budget. */
  async with<T>(n: number, task: () => Promise<T>): Promise<T> {
    await this.acquire(n);
    try {
      return await task();
    } finally {
      this.release(n);
    }
  }
}
