/**
 * The common prefix `key` rolls up to under `prefix` with `delimiter` (S3: up to and including
 * the first delimiter after the prefix), or undefined when the key has none there.
 */
export function commonPrefix(key: string, prefix: string, delimiter: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const at = key.indexOf(delimiter, prefix.length);
  return at < 0 ? undefined : key.slice(0, at + delimiter.length);
}
