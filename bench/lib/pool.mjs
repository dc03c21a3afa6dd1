/** Runs fn(item, index) over items with at most `concurrency` in flight; rejects on the first error. */
export async function forEachLimit(items, concurrency, fn) {
  let next = 0;
  let failed;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        await fn(items[i], i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failed !== undefined) throw failed;
}
