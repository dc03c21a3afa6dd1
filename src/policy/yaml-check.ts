/**
 * A checker for YAML documents, reusable for any schema: it parses the text, resolves aliases
 * (refusing alias bombs), and hands out the values of the tree as Fields that remember their
 * path (`groups[0].sources[1].bucket`) and position, so every problem names file:line:column.
 * A schema walks the tree with `map` (known keys; unknown, duplicate and non-string keys are
 * problems; the map it returns is typed by the known keys, so asking for any other key does not
 * compile), `list`, `string` and `integer`, which report a wrong type as "expected X, got Y".
 *
 * It walks the YAML syntax tree rather than the plain JS value for those positions, and it
 * collects every problem before failing: fixing a document one error per run is miserable.
 * What the document is and what its keys mean (the lakeguard policy: schema.ts) stays outside.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Alias, type Document } from 'yaml';
import { UsageError } from '../errors.js';

/** One validation problem, located in the YAML source. Line and column are 1-based. */
export interface YamlProblem {
  file: string;
  line: number;
  column: number;
  /** Dotted path of the offending key, e.g. `groups[0].sources[1].bucket`; '' for the document itself. */
  path: string;
  message: string;
}

/** A value in the tree, with where to point at it. `node` is a resolved yaml node, or null. */
export interface Field {
  path: string;
  node: unknown;
  /** Offset of the value (for problems about the value). */
  offset: number;
  /** Offset of the key that holds it (for problems about missing children). */
  keyOffset: number;
}

/** What a schema tells the checker about its document. */
export interface YamlCheckOptions {
  /** What the document is, in messages: "the policy must be a single YAML document". */
  documentName: string;
  /** Keys `map` skips without a word (another check reports them, e.g. a secrets scan). */
  skipKey?: (key: string) => boolean;
  /** Other names people write for a key (snake_case spelling → the key), for "did you mean". */
  keyAliases?: Readonly<Record<string, string>>;
  /** Where a key that has only one home goes, for keys written at the wrong level. */
  keyHomes?: ReadonlyMap<string, string>;
}

/** A parsed document: `contents` is the root node (null when empty), or absent after syntax errors. */
export interface YamlDocument {
  checker: Checker;
  /** False when the text is not valid YAML; `checker.problems` then holds only those problems. */
  parsed: boolean;
  contents: unknown;
}

/**
 * Parses `text` for checking. A broken tree yields misleading follow-up errors, so syntax
 * problems are reported alone, and only the first on each line: one mistake often makes the
 * parser complain 2-3 times. An alias bomb throws a UsageError right away (see aliasTargets).
 */
export function parseYaml(text: string, file: string, options: YamlCheckOptions): YamlDocument {
  const lines = new LineCounter();
  // Duplicate keys are found by the checker instead, so a duplicate does not hide other problems.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const checker = new Checker(file, lines, aliasTargets(doc, file, lines, options.documentName), options);
  const syntax = [...doc.errors, ...doc.warnings].sort((x, y) => x.pos[0] - y.pos[0]);
  if (syntax.length === 0) return { checker, parsed: true, contents: doc.contents };
  const seenLines = new Set<number>();
  for (const e of syntax) {
    const line = checker.lineOf(e.pos[0]);
    if (seenLines.has(line)) continue;
    seenLines.add(line);
    checker.reportAt(e.pos[0], '', `invalid YAML: ${yamlMessage(e.code, e.message, options.documentName)}`);
  }
  return { checker, parsed: false, contents: undefined };
}

/** Plainer words for the parser's most common complaints. */
function yamlMessage(code: string, message: string, documentName: string): string {
  switch (code) {
    case 'MULTIPLE_DOCS':
      return `the ${documentName} must be a single YAML document (remove the second "---")`;
    case 'BLOCK_AS_IMPLICIT_KEY':
      return 'a map cannot start here; check the indentation, or quote a value that contains ": "';
    case 'MULTILINE_IMPLICIT_KEY':
      return 'a key must be on one line; check the indentation here and on the next line';
    case 'TAB_AS_INDENT':
      return 'tabs are not allowed for indentation; use spaces';
    default:
      // Some parser messages end by quoting the offending source text, which may be a secret.
      return message.replace(/:\s*"[^]*"$/, '');
  }
}

export class Checker {
  readonly problems: YamlProblem[] = [];

  constructor(
    private readonly file: string,
    private readonly lines: LineCounter,
    private readonly aliases: ReadonlyMap<Alias, unknown>,
    private readonly options: YamlCheckOptions,
  ) {}

  reportAt(offset: number, path: string, message: string): void {
    const { line, col } = this.lines.linePos(offset);
    this.problems.push({ file: this.file, line, column: col, path, message });
  }

  report(f: Field, message: string): void {
    this.reportAt(f.offset, f.path, message);
  }

  lineOf(offset: number): number {
    return this.lines.linePos(offset).line;
  }

  /** Wraps a yaml node as a Field, following aliases (problems still point at the alias). */
  field(node: unknown, path: string, keyOffset: number): Field | undefined {
    const offset = offsetOf(node) ?? keyOffset;
    if (isAlias(node)) {
      const target = this.aliases.get(node);
      if (target === undefined) {
        this.reportAt(offset, path, `unknown anchor: *${node.source} has no matching &${node.source} before it`);
        return undefined;
      }
      return { path, node: target, offset, keyOffset };
    }
    return { path, node: node ?? null, offset, keyOffset };
  }

  /**
   * The known keys of a map. Unknown keys, duplicates and non-string keys are reported here;
   * keys the options say to skip (already reported elsewhere) are left out silently.
   */
  map<K extends string>(f: Field, known: readonly K[], expected: string): Map<K, Field> | undefined {
    if (!isMap(f.node)) {
      this.report(f, `expected ${expected}, got ${describe(f.node)}`);
      return undefined;
    }
    const fields = new Map<K, Field>();
    const firstLine = new Map<string, number>();
    for (const pair of f.node.items) {
      const keyNode: unknown = pair.key;
      const keyOffset = offsetOf(keyNode) ?? f.offset;
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        this.reportAt(keyOffset, f.path, 'keys must be plain words such as "name"');
        continue;
      }
      const key = String(keyNode.value);
      const path = joinPath(f.path, key);
      if (this.options.skipKey?.(key) === true) continue;
      const first = firstLine.get(key);
      if (first !== undefined) {
        this.reportAt(keyOffset, path, `duplicate key "${key}" (first set on line ${first}); keep one`);
        continue;
      }
      firstLine.set(key, this.lineOf(keyOffset));
      if (!isKnown(key, known)) {
        this.reportAt(keyOffset, path, unknownKeyMessage(key, known, this.options));
        continue;
      }
      const value = this.field(pair.value, path, keyOffset);
      if (value !== undefined) fields.set(key, value);
    }
    return fields;
  }

  missing(parent: Field, key: string, example: string): void {
    this.reportAt(parent.keyOffset, joinPath(parent.path, key), `required, e.g. ${example}`);
  }

  list(f: Field, expected: string): Field[] | undefined {
    if (!isSeq(f.node)) {
      this.report(f, `expected ${expected}, got ${describe(f.node)}`);
      return undefined;
    }
    const items: Field[] = [];
    f.node.items.forEach((item, i) => {
      const field = this.field(item, `${f.path}[${i}]`, offsetOf(item) ?? f.offset);
      if (field !== undefined) items.push(field);
    });
    return items;
  }

  /** `secret`: the value may be a password typed into the wrong place; never repeat it. */
  string(f: Field, expected: string, opts: { allowEmpty?: boolean; secret?: boolean } = {}): string | undefined {
    const value = isScalar(f.node) ? f.node.value : undefined;
    if (typeof value === 'string' && (value !== '' || opts.allowEmpty === true)) return value;
    this.report(f, `expected ${expected}, got ${opts.secret === true ? describeType(f.node) : describe(f.node)}`);
    return undefined;
  }

  integer(f: Field, min: number, max?: number): number | undefined {
    const value = isScalar(f.node) ? f.node.value : undefined;
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && (max === undefined || value <= max)) return value;
    const expected =
      max !== undefined ? `an integer from ${min} to ${max}` : min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer of at least ${min}`;
    this.report(f, `expected ${expected}, got ${describe(f.node)}`);
    return undefined;
  }

  /**
   * Reports every key anywhere in the tree for which `messageFor` has a message, without
   * descending into its value (used for secrets, whose values must not be walked or repeated).
   */
  scanKeys(node: unknown, path: string, messageFor: (key: string) => string | undefined): void {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key: unknown = pair.key;
        if (!isScalar(key) || key.value === null || typeof key.value === 'object') continue;
        const name = String(key.value);
        const childPath = joinPath(path, name);
        const message = messageFor(name);
        if (message !== undefined) this.reportAt(offsetOf(key) ?? 0, childPath, message);
        else this.scanKeys(pair.value, childPath, messageFor);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => this.scanKeys(item, `${path}[${i}]`, messageFor));
    }
  }
}

/** The value of `key` in a checked map, checked by `check`; undefined when absent or invalid. */
export function read<K extends string, T>(m: ReadonlyMap<K, Field>, key: K, check: (f: Field) => T | undefined): T | undefined {
  const f = m.get(key);
  return f === undefined ? undefined : check(f);
}

/** Optional properties are left out rather than set to undefined: cleaner JSON and equality. */
export function withoutUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] === undefined) delete value[key];
  }
  return value;
}

function isKnown<K extends string>(key: string, known: readonly K[]): key is K {
  return (known as readonly string[]).includes(key);
}

// ---- aliases -------------------------------------------------------------------------------

/**
 * Values that aliases may add to a document, at most. A policy shares a few lists (`exclude:
 * *common`); nested aliases that multiply (a "billion laughs" bomb: nine lists of nine aliases
 * of the one before, 9^9 values from 1 KiB of YAML) would make the checker walk for hours.
 */
export const MAX_ALIAS_VALUES = 10_000;

/**
 * The node each alias stands for (the last anchor of its name before it, as YAML says), found in
 * one pass that counts what the aliases expand to, and refuses a document whose aliases add more
 * than MAX_ALIAS_VALUES values (or refer to a node that contains them) before anything walks
 * them. Sizes are remembered per anchored node, so the count itself is linear in the text.
 */
function aliasTargets(doc: Document, file: string, lines: LineCounter, documentName: string): Map<Alias, unknown> {
  const targets = new Map<Alias, unknown>();
  const anchors = new Map<string, unknown>();
  const sizes = new Map<unknown, number>();
  const open = new Set<unknown>();
  let added = 0;
  const refuse = (alias: Alias, why: string): never => {
    const { line, col } = lines.linePos(alias.range?.[0] ?? 0);
    throw new UsageError(`invalid ${documentName} ${file}:${line}:${col}: the alias *${alias.source} ${why}`, {
      hint: 'write the repeated values out, or share a list through one alias instead of aliases of aliases',
    });
  };
  const size = (node: unknown): number => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target === undefined) return 1; // the checker reports the unknown anchor
      targets.set(node, target);
      if (open.has(target)) refuse(node, 'refers to a value that contains it');
      added += sizes.get(target)!;
      if (added > MAX_ALIAS_VALUES) refuse(node, `makes the aliases expand to more than ${MAX_ALIAS_VALUES} values (an alias bomb?)`);
      return sizes.get(target)!;
    }
    const anchor = isScalar(node) || isMap(node) || isSeq(node) ? node.anchor : undefined;
    if (anchor !== undefined) anchors.set(anchor, node);
    let n = 1;
    if (isMap(node) || isSeq(node)) {
      open.add(node);
      for (const item of node.items as unknown[]) n += isPair(item) ? size(item.key) + size(item.value) : size(item);
      open.delete(node);
    }
    sizes.set(node, n);
    return n;
  };
  size(doc.contents);
  return targets;
}

// ---- describing nodes ----------------------------------------------------------------------

function offsetOf(node: unknown): number | undefined {
  if (isScalar(node) || isMap(node) || isSeq(node) || isAlias(node)) return node.range?.[0];
  if (isPair(node)) return offsetOf(node.key);
  return undefined;
}

function joinPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

/** How a bad value is shown: strings quoted and shortened, collections by kind. */
export function describe(node: unknown): string {
  if (isScalar(node)) {
    const value = node.value;
    if (value === null || value === undefined) return 'an empty value';
    if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    return String(value);
  }
  return describeType(node);
}

/** How a value that must not be repeated (it may be a secret) is shown: by its type alone. */
function describeType(node: unknown): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isPair(node)) return 'a "key: value" pair';
  if (isScalar(node)) {
    const value = node.value;
    if (value === null || value === undefined) return 'an empty value';
    return typeof value === 'string' ? 'a string' : typeof value === 'number' ? 'a number' : typeof value === 'boolean' ? 'a boolean' : 'a value';
  }
  return 'an empty value';
}

// ---- unknown keys --------------------------------------------------------------------------

function unknownKeyMessage(key: string, known: readonly string[], options: YamlCheckOptions): string {
  const suggestion = suggestKey(key, known, options.keyAliases ?? {});
  if (suggestion !== undefined) return `unknown key "${key}"; did you mean "${suggestion}"?`;
  if (key === '<<') return 'merge keys ("<<") are not supported; write the keys out, or alias a whole value with *name';
  const home = options.keyHomes?.get(key);
  if (home !== undefined) return `"${key}" does not belong here; it goes under ${home} (allowed here: ${known.join(', ')})`;
  return `unknown key "${key}"; allowed here: ${known.join(', ')}`;
}

function suggestKey(key: string, known: readonly string[], aliases: Readonly<Record<string, string>>): string | undefined {
  const alias = aliases[snakeCase(key)];
  if (alias !== undefined && known.includes(alias)) return alias;
  const squash = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    // camelCase or kebab-case spellings of a known key count as a perfect match.
    const d = squash(candidate) === squash(key) ? 0 : editDistance(key.toLowerCase(), candidate);
    if (d < bestDistance && d < candidate.length / 2) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** `keepLast`, `keep-last` → `keep_last`. */
export function snakeCase(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/-/g, '_');
}
