/** Runs `fetch` over items with at most `ahead` in flight and hands results to `consume` in order. */
export async function inOrder<T, R>(items: readonly T[], ahead: number, fetch: (item: T) => Promise<R>, consume: (result: R, item: T) => void): Promise<void> {
  const pending: Promise<R>[] = [];
  let next = 0;
  const fill = (): void => {
    while (next < items.length && pending.length < ahead) {
      const p = fetch(items[next++]!);
      p.catch(() => {}); // awaited below; abandoned ones must not become unhandled rejections
      pending.push(p);
    }
  };
  fill();
  for (const item of items) {
    const result = await pending.shift()!;
    fill();
    consume(result, item);
  }
}
