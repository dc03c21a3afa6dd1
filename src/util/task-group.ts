/**
 * Background tasks with a bounded number in flight. `waitBelow(n)` parks the producer until
 * fewer than n tasks run, using a waiter queue: re-racing a large set of pending promises
 * (`await Promise.race(set)` in a loop) leaks a reaction per promise per call and, at
 * hundreds of thousands of objects, exhausts the heap.
 */
export class TaskGroup {
  private running = 0;
  private waiters: (() => void)[] = [];
  private failure: { error: unknown } | null = null;

  get size(): number {
    return this.running;
  }

  /** Starts a task; its first error is kept and rethrown by `throwIfFailed` and `wait`. */
  spawn(task: () => Promise<void>): void {
    this.running++;
    task()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => {
        this.running--;
        const waiters = this.waiters;
        this.waiters = [];
        for (const wake of waiters) wake();
      });
  }

  async waitBelow(n: number): Promise<void> {
    while (this.running >= n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Waits for every task (including ones spawned meanwhile), then rethrows the first failure. */
  async wait(): Promise<void> {
    await this.waitBelow(1);
    this.throwIfFailed();
  }

  throwIfFailed(): void {
    if (this.failure !== null) throw this.failure.error;
  }
}
