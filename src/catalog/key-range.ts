/**
 * Key ranges for indexed scans of the catalog: the upper bound of a prefix, and the literal
 * prefix every key a glob matches starts with, so a query reads only that part of the index.
 */

/**
 * The least string greater than every string starting with `prefix` (in UTF-8 byte order, which
 * is code point order and SQLite's BINARY collation); null when there is none (empty prefix).
 */
export function upperBound(prefix: string): string | null {
  const cps = [...prefix].map((c) => c.codePointAt(0)!);
  while (cps.length > 0) {
    const last = cps.pop()!;
    if (last < 0x10ffff) {
      cps.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
      return String.fromCodePoint(...cps);
    }
  }
  return null;
}

/**
 * The literal text every key matching `glob` starts with, or '' when matches may start
 * anywhere. Only anchored patterns have one: a leading '/', or a '/' inside the literal start
 * that is followed by more pattern in every {…} expansion (`table=x/**` → `table=x/`; `*.crc`,
 * `_temporary/`, `a/{b,}` and `a{x,/y}` match at any depth → ''). Escapes (`\*`) are literal.
 */
export function globLiteralPrefix(glob: string): string {
  const chars = [...glob];
  let i = 0;
  let anchored = false;
  if (chars[0] === '/') {
    anchored = true;
    i = 1;
  }
  let literal = '';
  let firstSlash = -1;
  for (; i < chars.length; i++) {
    let ch = chars[i]!;
    if ('*?[{}'.includes(ch)) break;
    if (ch === '\\') {
      const next = chars[i + 1];
      if (next === undefined) break;
      ch = next;
      i++;
    }
    if (ch === '/' && firstSlash < 0) firstSlash = literal.length;
    literal += ch;
  }
  // A pattern with two segments is anchored; `a/` alone is a directory pattern at any depth.
  if (!anchored && (firstSlash < 0 || (!/[^/]/.test(literal.slice(firstSlash)) && canVanish(chars.slice(i))))) return '';
  return literal;
}

/** Whether a (valid) glob fragment has an expansion that matches only '/' or nothing. */
function canVanish(chars: string[]): boolean {
  let i = 0;
  const sequence = (inBraces: boolean): boolean => {
    let vanish = true;
    while (i < chars.length) {
      const ch = chars[i]!;
      if (inBraces && (ch === ',' || ch === '}')) return vanish;
      i++;
      if (ch === '\\') {
        if (chars[i] !== '/') vanish = false;
        i++;
      } else if (ch === '{') {
        let someOptionVanishes = false;
        for (;;) {
          if (sequence(true)) someOptionVanishes = true;
          if (chars[i++] !== ',') break; // consumed the closing '}'
        }
        if (!someOptionVanishes) vanish = false;
      } else if (ch === '[') {
        // A class is one character; skip it whole (its '{' and ',' are literal).
        if (chars[i] === '!' || chars[i] === '^') i++;
        if (chars[i] === ']') i++;
        while (i < chars.length && chars[i] !== ']') i += chars[i] === '\\' ? 2 : 1;
        i++;
        vanish = false;
      } else if (ch !== '/') {
        vanish = false;
      }
    }
    return vanish;
  };
  return sequence(false);
}
