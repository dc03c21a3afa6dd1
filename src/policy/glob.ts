/**
 * Exclude globs, matched against an object key relative to its bucket (the full key).
 *
 *   `*`       any characters except '/'          `?`      one character except '/'
 *   `**`      as a whole path segment: any number of segments, including none
 *   `[abc]`   `[a-z]`, `[!abc]` / `[^abc]` classes (never match '/')
 *   `{a,b}`   alternation (may contain '/' and other wildcards)   `\x` a literal x
 *
 * Anchoring follows gitignore: a pattern without a '/' matches the last segment (basename) at
 * any depth (`*.crc` excludes `a/b/c.crc`); a pattern with a '/' in it, or starting with '/',
 * matches from the start of the key; a trailing '/' means "everything below such a directory"
 * (`_temporary/` excludes `x/_temporary/y`). Unlike gitignore, a pattern without a trailing
 * '/' does not also exclude the contents of a directory of that name: for a backup tool,
 * silently excluding more than the user meant is the worse failure.
 *
 * Each pattern compiles to one RegExp. Keys are user data and up to 1 KiB long, so the regexp
 * must not backtrack badly: a naive translation of `*a*a*a*b` is polynomial of high degree. The
 * compiler therefore makes every wildcard except the last in each stretch commit to the
 * earliest place the following fixed part matches (an atomic group, written as a lookahead
 * plus backreference), which is exact for globs because the next wildcard can absorb whatever
 * a later choice would have covered. Alternation is expanded up front (like shell brace
 * expansion) so that every fixed part really has a fixed length.
 */
import { UsageError } from '../errors.js';

export class GlobError extends UsageError {
  readonly pattern: string;
  /** The reason alone, without the pattern, for callers that show the pattern themselves. */
  readonly reason: string;
  constructor(pattern: string, reason: string) {
    super(`invalid glob ${JSON.stringify(pattern)}: ${reason}`);
    this.pattern = pattern;
    this.reason = reason;
  }
}

/** An expansion cap: `{a,b}{c,d}...` grows exponentially and no real exclude list needs more. */
const MAX_EXPANSIONS = 256;

/** Compiles many patterns into one predicate; true when any pattern matches the key. */
export function compileExcludes(globs: readonly string[]): (key: string) => boolean {
  const regexps = globs.map(compileGlob);
  if (regexps.length === 0) return () => false;
  return (key) => regexps.some((re) => re.test(key));
}

/** Compiles one pattern; throws GlobError when it is malformed. Not global: `test` is stateless. */
export function compileGlob(pattern: string): RegExp {
  if (pattern === '') throw new GlobError(pattern, 'the pattern is empty');
  const tree = new Parser(pattern).parse();
  const expansions = expand(tree, pattern).filter((atoms) => atoms.length > 0);
  if (expansions.length === 0) throw new GlobError(pattern, 'the pattern matches nothing');
  const groups = { count: 0 };
  const sources = expansions.map((atoms) => compileFlat(atoms, pattern, groups));
  const source = sources.length === 1 ? sources[0]! : sources.map((s) => `(?:${s})`).join('|');
  // `s`: `**` must cross newlines too (keys may contain any character); `u`: `?` is one code point.
  return new RegExp(source, 'su');
}

// ---- parsing -------------------------------------------------------------------------------

type Atom =
  | { t: 'lit'; ch: string }
  | { t: 'any' }
  | { t: 'star' }
  | { t: 'class'; re: string }
  | { t: 'slash' };
type Item = Atom | { t: 'alt'; options: Item[][] };

class Parser {
  private readonly chars: string[];
  private i = 0;

  constructor(private readonly pattern: string) {
    this.chars = Array.from(pattern); // code points, so astral characters stay whole
  }

  parse(): Item[] {
    const seq = this.sequence(false);
    if (this.i < this.chars.length) throw this.fail(`unmatched "}" at position ${this.i + 1} (write \\} for a literal brace)`);
    return seq;
  }

  private fail(reason: string): GlobError {
    return new GlobError(this.pattern, reason);
  }

  /** Reads until the end, or (inside braces) until an unescaped ',' or '}' which it leaves unread. */
  private sequence(inBraces: boolean): Item[] {
    const out: Item[] = [];
    while (this.i < this.chars.length) {
      const ch = this.chars[this.i]!;
      if (inBraces && (ch === ',' || ch === '}')) return out;
      this.i++;
      switch (ch) {
        case '\\': {
          const next = this.chars[this.i++];
          if (next === undefined) throw this.fail('ends with a lone "\\" (write \\\\ for a literal backslash)');
          out.push(next === '/' ? { t: 'slash' } : { t: 'lit', ch: next });
          break;
        }
        case '*':
          out.push({ t: 'star' });
          break;
        case '?':
          out.push({ t: 'any' });
          break;
        case '/':
          out.push({ t: 'slash' });
          break;
        case '[':
          out.push(this.charClass());
          break;
        case '{':
          out.push(this.alternation());
          break;
        case '}':
          this.i--;
          return out; // parse() reports it
        default:
          out.push({ t: 'lit', ch });
      }
    }
    return out;
  }

  private alternation(): Item {
    const start = this.i;
    const options: Item[][] = [];
    for (;;) {
      options.push(this.sequence(true));
      const ch = this.chars[this.i++];
      if (ch === '}') return { t: 'alt', options };
      if (ch !== ',') throw this.fail(`unclosed "{" at position ${start} (write \\{ for a literal brace)`);
    }
  }

  /** After '['. Supports `!`/`^` negation, ranges, a leading ']' as a literal, and escapes. */
  private charClass(): Atom {
    const start = this.i;
    let negated = false;
    if (this.chars[this.i] === '!' || this.chars[this.i] === '^') {
      negated = true;
      this.i++;
    }
    let body = '';
    let spansSlash = false;
    let first = true;
    for (;;) {
      let ch = this.chars[this.i++];
      if (ch === undefined) throw this.fail(`unclosed "[" at position ${start} (write \\[ for a literal bracket)`);
      if (ch === ']' && !first) break;
      first = false;
      if (ch === '\\') {
        ch = this.chars[this.i++];
        if (ch === undefined) throw this.fail(`unclosed "[" at position ${start}`);
      }
      let hi = ch;
      if (this.chars[this.i] === '-' && this.chars[this.i + 1] !== undefined && this.chars[this.i + 1] !== ']') {
        this.i++;
        hi = this.chars[this.i++]!;
        if (hi === '\\') {
          hi = this.chars[this.i++] ?? '';
          if (hi === '') throw this.fail(`unclosed "[" at position ${start}`);
        }
        if (hi.codePointAt(0)! < ch.codePointAt(0)!) throw this.fail(`range "${ch}-${hi}" is out of order`);
      }
      if (!negated && ch === '/' && hi === '/') throw this.fail('a character class cannot match "/" (it separates path segments)');
      if (ch.codePointAt(0)! <= 0x2f && hi.codePointAt(0)! >= 0x2f) spansSlash = true;
      body += hi === ch ? classChar(ch) : `${classChar(ch)}-${classChar(hi)}`;
    }
    if (negated) return { t: 'class', re: `[^/${body}]` };
    // A range like `[ -~]` covers '/', which must still never match inside a segment.
    return { t: 'class', re: spansSlash ? `(?:(?!/)[${body}])` : `[${body}]` };
  }
}

function classChar(ch: string): string {
  return /[\\\][^-]/.test(ch) ? `\\${ch}` : ch;
}

function literal(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

/** Brace expansion into flat atom lists. */
function expand(items: Item[], pattern: string): Atom[][] {
  let results: Atom[][] = [[]];
  for (const item of items) {
    if (item.t !== 'alt') {
      for (const r of results) r.push(item);
      continue;
    }
    const tails = item.options.flatMap((option) => expand(option, pattern));
    if (results.length * tails.length > MAX_EXPANSIONS) {
      throw new GlobError(pattern, `its {…} alternatives expand to more than ${MAX_EXPANSIONS} patterns; list them separately`);
    }
    results = results.flatMap((r) => tails.map((tail) => [...r, ...tail]));
  }
  return results;
}

// ---- compiling -----------------------------------------------------------------------------

type Segment = 'globstar' | Atom[];

function compileFlat(input: Atom[], pattern: string, groups: { count: number }): string {
  let atoms = input;
  let anchored = false;
  let directory = false;
  if (atoms[0]?.t === 'slash') {
    anchored = true;
    atoms = atoms.slice(1);
  }
  if (atoms.at(-1)?.t === 'slash') {
    directory = true;
    atoms = atoms.slice(0, -1);
  }
  if (atoms.length === 0) throw new GlobError(pattern, 'the pattern has no segment to match');

  const segments: Segment[] = [];
  let current: Atom[] = [];
  for (const atom of [...atoms, { t: 'slash' } as const]) {
    if (atom.t !== 'slash') {
      current.push(atom);
      continue;
    }
    if (current.length === 0) throw new GlobError(pattern, 'it has an empty path segment ("//")');
    const stars = current.filter((a) => a.t === 'star').length;
    // `**` is special only as a whole segment; elsewhere consecutive stars are one star.
    segments.push(stars >= 2 && stars === current.length ? 'globstar' : collapseStars(current));
    current = [];
  }
  if (segments.length > 1) anchored = true;
  if (!anchored) segments.unshift('globstar');
  if (directory) segments.push('globstar');

  // Split at globstars into blocks of plain segments: B0 ** B1 ** ... ** Bk.
  const blocks: Atom[][][] = [[]];
  for (const seg of segments) {
    if (seg === 'globstar') {
      if (blocks.at(-1)!.length > 0 || blocks.length === 1) blocks.push([]);
    } else {
      blocks.at(-1)!.push(seg);
    }
  }

  let re = '^' + blocks[0]!.map((s) => segmentRe(s, groups)).join('/');
  for (let j = 1; j < blocks.length; j++) {
    const block = blocks[j]!;
    const sep = j > 1 || blocks[0]!.length > 0 ? '/' : '';
    if (block.length === 0) {
      re += sep + '.*'; // trailing `**`: everything below
    } else if (j === blocks.length - 1) {
      // Last block is pinned to the end of the key, so only the number of skipped segments varies.
      re += sep + '(?:[^/]*/)*' + block.map((s) => segmentRe(s, groups)).join('/');
    } else {
      // Middle block: commit to its earliest occurrence (atomic), then the next `**` follows.
      const n = ++groups.count;
      const inner = block.map((s) => segmentRe(s, groups)).join('/');
      re += `${sep}(?=((?:[^/]*/)*?${inner}(?=/)))(?:\\${n})`;
    }
  }
  return re + '$';
}

function collapseStars(atoms: Atom[]): Atom[] {
  return atoms.filter((a, i) => !(a.t === 'star' && atoms[i - 1]?.t === 'star'));
}

/** One path segment, no '/' inside; its end is enforced by what the caller puts after it. */
function segmentRe(atoms: Atom[], groups: { count: number }): string {
  const chunks: Atom[][] = [[]];
  for (const atom of atoms) {
    if (atom.t === 'star') chunks.push([]);
    else chunks.at(-1)!.push(atom);
  }
  let re = chunkRe(chunks[0]!);
  for (let i = 1; i < chunks.length; i++) {
    const chunk = chunkRe(chunks[i]!);
    if (i === chunks.length - 1) {
      re += `[^/]*${chunk}`; // the last star backtracks, but only over one segment
    } else {
      const n = ++groups.count;
      re += `(?=([^/]*?${chunk}))(?:\\${n})`;
    }
  }
  return re;
}

function chunkRe(atoms: Atom[]): string {
  return atoms
    .map((a) => {
      switch (a.t) {
        case 'lit':
          return literal(a.ch);
        case 'any':
          return '[^/]';
        case 'class':
          return a.re;
        default:
          throw new Error(`unreachable glob atom ${a.t}`);
      }
    })
    .join('');
}
