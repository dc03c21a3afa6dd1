import { describe, expect, it } from 'vitest';
import { compileExcludes, compileGlob, GlobError } from '../../src/policy/glob.js';

// [pattern, key, excluded?]
const cases: [string, string, boolean][] = [
  // No '/': the basename, at any depth.
  ['*.crc', 'c.crc', true],
  ['*.crc', 'a/b/c.crc', true],
  ['*.crc', 'a/b/.c.crc', true],
  ['*.crc', 'a/b/c.crc.bak', false],
  ['*.crc', 'a.crc/b', false], // a directory name alone does not exclude its contents
  ['_SUCCESS', '_SUCCESS', true],
  ['_SUCCESS', 'tbl/date=2026-01-01/_SUCCESS', true],
  ['_SUCCESS', 'tbl/_SUCCESS/x', false],
  ['_SUCCESS', 'tbl/x_SUCCESS', false],
  ['*', 'a/b/c', true],
  ['*', '.hidden', true],
  // `**` as a whole segment: any number of segments, including none.
  ['**/_temporary/**', 'x/_temporary/y', true],
  ['**/_temporary/**', '_temporary/y', true],
  ['**/_temporary/**', 'a/b/_temporary/c/d', true],
  ['**/_temporary/**', 'x/_temporary', false],
  ['**/_temporary/**', 'x/not_temporary/y', false],
  ['**/_temporary/**', 'x/_temporary_/y', false],
  ['**/*.crc', 'c.crc', true],
  ['**/*.crc', 'a/b/c.crc', true],
  ['a/**/b', 'a/b', true],
  ['a/**/b', 'a/x/y/b', true],
  ['a/**/b', 'a/xb', false],
  ['a/**/b', 'x/a/b', false],
  ['a/**', 'a/x', true],
  ['a/**', 'a/x/y', true],
  ['a/**', 'a', false],
  ['**', '', true],
  ['**', 'any/thing/at/all', true],
  ['**/a/**/b/**', 'a/b/c', true],
  ['**/a/**/b/**', 'x/a/y/b/z', true],
  ['**/a/**/b/**', 'b/a/c', false],
  ['x**y', 'xay', true], // not a whole segment: a plain star
  ['x**y', 'xa/y', false],
  // With a '/': anchored at the start of the key.
  ['events/*.tmp', 'events/a.tmp', true],
  ['events/*.tmp', 'events/x/a.tmp', false],
  ['events/*.tmp', 'x/events/a.tmp', false],
  ['/root.txt', 'root.txt', true],
  ['/root.txt', 'a/root.txt', false],
  // Trailing '/': everything below a directory of that name.
  ['tmp/', 'tmp/x', true],
  ['tmp/', 'a/tmp/x/y', true],
  ['tmp/', 'tmp/', true],
  ['tmp/', 'tmp', false],
  ['tmp/', 'tmpx/y', false],
  ['/tmp/', 'a/tmp/x', false],
  // `?` and classes never match '/'.
  ['part-?.parquet', 'part-1.parquet', true],
  ['part-?.parquet', 'part-10.parquet', false],
  ['a?b', 'a/b', false],
  ['?', '😀', true],
  ['[abc].txt', 'b.txt', true],
  ['[abc].txt', 'd.txt', false],
  ['[!abc].txt', 'd.txt', true],
  ['[!abc].txt', 'a.txt', false],
  ['[^abc].txt', 'a.txt', false],
  ['[a-c]x', 'bx', true],
  ['[a-c]x', 'dx', false],
  ['[]]', ']', true],
  ['[a-]', '-', true],
  ['x[ -~]y', 'x/y', false], // the range covers '/', which still never matches
  ['x[ -~]y', 'x.y', true],
  ['x[!a]y', 'x/y', false],
  // Alternation, possibly with '/' and nesting.
  ['*.{tmp,swp}', 'a/b.swp', true],
  ['*.{tmp,swp}', 'a/b.tmp', true],
  ['*.{tmp,swp}', 'a/b.bak', false],
  ['{logs,tmp}/**', 'logs/x', true],
  ['{logs,tmp}/**', 'x/logs/y', false],
  ['{a,b/c}', 'x/a', true],
  ['{a,b/c}', 'b/c', true],
  ['{a,b/c}', 'x/b/c', false],
  ['{a,{b,c}}d', 'cd', true],
  ['x{,y}z', 'xz', true],
  ['x{,y}z', 'xyz', true],
  // Escapes and regex metacharacters are literal.
  ['\\*.txt', '*.txt', true],
  ['\\*.txt', 'a.txt', false],
  ['a\\?', 'a?', true],
  ['a\\?', 'ab', false],
  ['a.b', 'axb', false],
  ['a+b(c)|$^.txt', 'a+b(c)|$^.txt', true],
  ['\\{a,b\\}', '{a,b}', true],
  ['x,y', 'x,y', true],
  // Keys may contain any character.
  ['**', 'a\nb', true],
  ['*', 'a\nb', true],
  ['a*', 'A', false], // case-sensitive, like S3
];

describe('compileExcludes', () => {
  it.each(cases)('%j on %j → %s', (pattern, key, expected) => {
    expect(compileExcludes([pattern])(key)).toBe(expected);
  });

  it('excludes a key when any pattern matches', () => {
    const excluded = compileExcludes(['**/_temporary/**', '*.crc']);
    expect(excluded('t/_temporary/0/part')).toBe(true);
    expect(excluded('t/part-0.crc')).toBe(true);
    expect(excluded('t/part-0.parquet')).toBe(false);
  });

  it('excludes nothing with no patterns', () => {
    expect(compileExcludes([])('anything')).toBe(false);
  });

  it('is stateless across calls (no global flag)', () => {
    const excluded = compileExcludes(['*.crc']);
    expect([excluded('a.crc'), excluded('a.crc'), excluded('a.crc')]).toEqual([true, true, true]);
  });
});

describe('compileGlob errors', () => {
  it.each([
    ['', 'invalid glob "": the pattern is empty'],
    ['a[bc', 'invalid glob "a[bc": unclosed "[" at position 2 (write \\[ for a literal bracket)'],
    ['{a,b', 'invalid glob "{a,b": unclosed "{" at position 1 (write \\{ for a literal brace)'],
    ['a}', 'invalid glob "a}": unmatched "}" at position 2 (write \\} for a literal brace)'],
    ['a\\', 'invalid glob "a\\\\": ends with a lone "\\" (write \\\\ for a literal backslash)'],
    ['a//b', 'invalid glob "a//b": it has an empty path segment ("//")'],
    ['/', 'invalid glob "/": the pattern has no segment to match'],
    ['[z-a]', 'invalid glob "[z-a]": range "z-a" is out of order'],
    ['a[/]b', 'invalid glob "a[/]b": a character class cannot match "/" (it separates path segments)'],
  ])('%j', (pattern, message) => {
    expect(() => compileGlob(pattern)).toThrow(GlobError);
    expect(() => compileGlob(pattern)).toThrow(message);
  });

  it('caps brace expansion', () => {
    expect(() => compileGlob('{a,b}'.repeat(9))).toThrow(/expand to more than 256 patterns/);
  });
});

describe('no catastrophic backtracking', () => {
  it.each([
    ['*a*a*a*a*a*a*a*b', 'a'.repeat(20_000)],
    ['**/a*a*a*a*a*b/**/c', `${'a'.repeat(2_000)}/`.repeat(20)],
    ['**/a/**/a/**/a/**/a/**/b', 'a/'.repeat(5_000)],
    ['*?*?*?*?*?*?*x', 'y'.repeat(20_000)],
  ])('%j against a long near-miss key', (pattern, key) => {
    const re = compileGlob(pattern);
    const started = performance.now();
    expect(re.test(key)).toBe(false);
    // Linear matching takes milliseconds; backtracking on these keys would take longer than anyone waits:
    // a bound this loose tells them apart on a loaded machine too.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

/**
 * The compiler makes wildcards commit to their earliest match (for speed). This checks it
 * against a plain backtracking matcher of the same semantics, written independently, on
 * random patterns and keys over a tiny alphabet where the differences would show.
 */
describe('agrees with a naive matcher', () => {
  function naive(pattern: string, key: string): boolean {
    let p = pattern;
    let anchored = false;
    let directory = false;
    if (p.startsWith('/')) [anchored, p] = [true, p.slice(1)];
    if (p.endsWith('/')) [directory, p] = [true, p.slice(0, -1)];
    let segs = p.split('/');
    if (segs.length > 1) anchored = true;
    if (!anchored) segs = ['**', ...segs];
    if (directory) segs = [...segs, '**'];
    segs = segs.filter((s, i) => !(isGlobstar(s) && isGlobstar(segs[i - 1] ?? '')));
    return matchSegments(segs, key.split('/'));
  }
  const isGlobstar = (s: string) => /^\*{2,}$/.test(s);
  function matchSegments(ps: string[], ks: string[]): boolean {
    const [p, ...rest] = ps;
    if (p === undefined) return ks.length === 0;
    if (isGlobstar(p)) {
      // A trailing `**` means "below": at least one more segment (possibly empty, as in `a/`).
      // Alone it matches everything, since split() always yields at least one segment.
      if (rest.length === 0) return ks.length >= 1;
      for (let n = 0; n <= ks.length; n++) if (matchSegments(rest, ks.slice(n))) return true;
      return false;
    }
    const [k, ...more] = ks;
    if (k === undefined) return false;
    const re = new RegExp(`^${p.replace(/\*+/g, '\u0000').replace(/\?/g, '[^/]').replace(/\u0000/g, '[^/]*')}$`);
    return re.test(k) && matchSegments(rest, more);
  }

  function rng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('on random patterns', () => {
    const random = rng(42);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const segment = () => (random() < 0.15 ? '**' : Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(['a', 'b', '*', '?'])).join(''));
    const keyOf = () => Array.from({ length: 1 + Math.floor(random() * 4) }, () => Array.from({ length: Math.floor(random() * 4) }, () => pick(['a', 'b'])).join('')).join('/');
    let checked = 0;
    for (let i = 0; i < 1500; i++) {
      const pattern =
        (random() < 0.15 ? '/' : '') +
        Array.from({ length: 1 + Math.floor(random() * 3) }, segment).join('/') +
        (random() < 0.15 ? '/' : '');
      const excluded = compileExcludes([pattern]);
      for (let j = 0; j < 25; j++) {
        const key = keyOf();
        expect(excluded(key), `${pattern} on ${key}`).toBe(naive(pattern, key));
        checked++;
      }
    }
    expect(checked).toBe(1500 * 25);
  });
});
