/**
 * Reading a policy: YAML text → validated, fully defaulted, deep-frozen `Policy`.
 *
 * Validation walks the YAML syntax tree rather than the plain JS value, so that every problem
 * can name file:line:column, and it collects every problem before failing: fixing a policy
 * one error per run is miserable. Messages name the key (via the path), the bad value and what
 * is allowed, except for anything that may be a secret, whose value is never repeated.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Alias, type Document } from 'yaml';
import { errorMessage, UsageError } from '../errors.js';
import { compileGlob, GlobError } from './glob.js';
import { checkPricing } from './pricing.js';
import {
  ENCRYPTIONS,
  INLINE_POLICY_FILE,
  isEncryption,
  POLICY_DEFAULTS,
  type Group,
  type Policy,
  type Problem,
  type RepositoryPolicy,
  type Retention,
  type Source,
} from './types.js';

/** An invalid policy: every problem found, sorted by position. Exit code 2 (usage). */
export class PolicyError extends UsageError {
  readonly problems: Problem[];

  constructor(file: string, problems: readonly Problem[]) {
    // Stable sort: problems on the same spot keep the order the checks found them in.
    const sorted = [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
    const count = `${sorted.length} ${sorted.length === 1 ? 'problem' : 'problems'}`;
    const lines = sorted.map((p) => `  ${p.file}:${p.line}:${p.column} ${p.path === '' ? '' : `${p.path}: `}${p.message}`);
    super([`invalid policy ${file}: ${count}`, ...lines].join('\n'));
    this.problems = sorted;
  }
}

/** Reads and validates a policy file. A missing or unreadable file is a UsageError naming it. */
export function loadPolicy(file: string): Policy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : errorMessage(err);
    throw new UsageError(`cannot read policy file ${file}: ${reason}`, {
      hint: 'pass the policy with --policy PATH (examples in examples/policies/)',
      cause: err,
    });
  }
  return parsePolicy(text, file);
}

/**
 * Validates policy text. `file` is shown in problems as given and, resolved, becomes
 * `Policy.file`; relative paths in the policy are resolved against its directory (against the
 * working directory for '<inline>').
 */
export function parsePolicy(text: string, file: string): Policy {
  const inline = file === INLINE_POLICY_FILE;
  const absolute = inline ? INLINE_POLICY_FILE : path.resolve(file);
  const baseDir = inline ? process.cwd() : path.dirname(absolute);

  const lines = new LineCounter();
  // Duplicate keys are found by the checker instead, so a duplicate does not hide other problems.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const c = new Checker(file, lines, aliasTargets(doc, file, lines));
  const syntax = [...doc.errors, ...doc.warnings].sort((x, y) => x.pos[0] - y.pos[0]);
  if (syntax.length > 0) {
    // A broken tree yields misleading follow-up errors, so syntax problems are reported alone,
    // and only the first on each line: one mistake often makes the parser complain 2-3 times.
    const seenLines = new Set<number>();
    for (const e of syntax) {
      const line = c.lineOf(e.pos[0]);
      if (seenLines.has(line)) continue;
      seenLines.add(line);
      c.reportAt(e.pos[0], '', `invalid YAML: ${yamlMessage(e.code, e.message)}`);
    }
    throw new PolicyError(file, c.problems);
  }
  c.scanSecrets(doc.contents, '');
  const policy = checkPolicy(c, doc.contents, { file: absolute, baseDir, catalogNames: new Map() });
  if (c.problems.length > 0 || policy === undefined) throw new PolicyError(file, c.problems);
  return deepFreeze(policy);
}

/** A policy with no groups, for commands that only need a repository (`init --repo URL`). */
export function defaultPolicyForRepository(url: string): Policy {
  const parsed = normalizeRepositoryUrl(url, process.cwd());
  if ('error' in parsed) throw new UsageError(`invalid repository URL: ${parsed.error}`);
  return deepFreeze({
    version: 1,
    file: INLINE_POLICY_FILE,
    repository: { url: parsed.url, encryption: POLICY_DEFAULTS.encryption, passwordEnv: POLICY_DEFAULTS.passwordEnv },
    s3: {},
    groups: [],
    concurrency: { ...POLICY_DEFAULTS.concurrency },
    timezone: 'UTC',
  });
}

/** Plainer words for the parser's most common complaints. */
const YAML_MESSAGES: Partial<Record<string, string>> = {
  MULTIPLE_DOCS: 'the policy must be a single YAML document (remove the second "---")',
  BLOCK_AS_IMPLICIT_KEY: 'a map cannot start here; check the indentation, or quote a value that contains ": "',
  MULTILINE_IMPLICIT_KEY: 'a key must be on one line; check the indentation here and on the next line',
  TAB_AS_INDENT: 'tabs are not allowed for indentation; use spaces',
};

function yamlMessage(code: string, message: string): string {
  // Some parser messages end by quoting the offending source text, which may be a secret.
  return YAML_MESSAGES[code] ?? message.replace(/:\s*"[^]*"$/, '');
}

// ---- reading the YAML tree -----------------------------------------------------------------

/** A value in the tree, with where to point at it. `node` is a resolved yaml node, or null. */
interface Field {
  path: string;
  node: unknown;
  /** Offset of the value (for problems about the value). */
  offset: number;
  /** Offset of the key that holds it (for problems about missing children). */
  keyOffset: number;
}

interface Context {
  file: string;
  baseDir: string;
  /** Catalog name -> the first source catalogued under it, across all groups (see checkCatalogName). */
  catalogNames: Map<string, CatalogNameClaim>;
}

class Checker {
  readonly problems: Problem[] = [];

  constructor(
    private readonly file: string,
    private readonly lines: LineCounter,
    private readonly aliases: ReadonlyMap<Alias, unknown>,
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
   * secret-looking keys were already reported by scanSecrets and are skipped.
   */
  map(f: Field, known: readonly string[], expected: string): Map<string, Field> | undefined {
    if (!isMap(f.node)) {
      this.report(f, `expected ${expected}, got ${describe(f.node)}`);
      return undefined;
    }
    const fields = new Map<string, Field>();
    const firstLine = new Map<string, number>();
    for (const pair of f.node.items) {
      const keyNode: unknown = pair.key;
      const keyOffset = offsetOf(keyNode) ?? f.offset;
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        this.reportAt(keyOffset, f.path, 'keys must be plain words such as "name"');
        continue;
      }
      const key = String(keyNode.value);
      const path = join(f.path, key);
      if (secretKind(key) !== undefined) continue;
      const first = firstLine.get(key);
      if (first !== undefined) {
        this.reportAt(keyOffset, path, `duplicate key "${key}" (first set on line ${first}); keep one`);
        continue;
      }
      firstLine.set(key, this.lineOf(keyOffset));
      if (!known.includes(key)) {
        this.reportAt(keyOffset, path, unknownKeyMessage(key, known));
        continue;
      }
      const value = this.field(pair.value, path, keyOffset);
      if (value !== undefined) fields.set(key, value);
    }
    return fields;
  }

  missing(parent: Field, key: string, example: string): void {
    this.reportAt(parent.keyOffset, join(parent.path, key), `required, e.g. ${example}`);
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

  /** Reports every secret-looking key anywhere in the tree, without descending into its value. */
  scanSecrets(node: unknown, path: string): void {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key: unknown = pair.key;
        if (!isScalar(key) || key.value === null || typeof key.value === 'object') continue;
        const name = String(key.value);
        const childPath = join(path, name);
        const kind = secretKind(name);
        if (kind !== undefined) this.reportAt(offsetOf(key) ?? 0, childPath, SECRET_MESSAGES[kind]);
        else this.scanSecrets(pair.value, childPath);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => this.scanSecrets(item, `${path}[${i}]`));
    }
  }
}

/**
 * Values that aliases may add to a policy, at most. A policy shares a few lists (`exclude:
 * *common`); nested aliases that multiply (a "billion laughs" bomb: nine lists of nine aliases
 * of the one before, 9^9 values from 1 KiB of YAML) would make the checker walk for hours.
 */
export const MAX_ALIAS_VALUES = 10_000;

/**
 * The node each alias stands for (the last anchor of its name before it, as YAML says), found in
 * one pass that counts what the aliases expand to, and refuses a policy whose aliases add more
 * than MAX_ALIAS_VALUES values (or refer to a node that contains them) before anything walks
 * them. Sizes are remembered per anchored node, so the count itself is linear in the text.
 */
function aliasTargets(doc: Document, file: string, lines: LineCounter): Map<Alias, unknown> {
  const targets = new Map<Alias, unknown>();
  const anchors = new Map<string, unknown>();
  const sizes = new Map<unknown, number>();
  const open = new Set<unknown>();
  let added = 0;
  const refuse = (alias: Alias, why: string): never => {
    const { line, col } = lines.linePos(alias.range?.[0] ?? 0);
    throw new UsageError(`invalid policy ${file}:${line}:${col}: the alias *${alias.source} ${why}`, {
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

function offsetOf(node: unknown): number | undefined {
  if (isScalar(node) || isMap(node) || isSeq(node) || isAlias(node)) return node.range?.[0];
  if (isPair(node)) return offsetOf(node.key);
  return undefined;
}

function join(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

/** How a bad value is shown: strings quoted and shortened, collections by kind. */
function describe(node: unknown): string {
  if (isScalar(node)) {
    const value = node.value;
    if (value === null || value === undefined) return 'an empty value';
    if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    return String(value);
  }
  return describeType(node);
}

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

// ---- unknown keys and secrets --------------------------------------------------------------

/** Names people carry over from kopia/restic or from the TypeScript types. */
const KEY_ALIASES: Record<string, string> = {
  keep_latest: 'keep_last',
  keep_annual: 'keep_yearly',
  keep_within_duration: 'keep_within',
  prefix: 'prefixes',
  excludes: 'exclude',
  buckets: 'bucket',
};

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const suggestion = suggestKey(key, known);
  if (suggestion !== undefined) return `unknown key "${key}"; did you mean "${suggestion}"?`;
  if (key === '<<') return 'merge keys ("<<") are not supported; write the keys out, or alias a whole value with *name';
  const home = KEY_HOMES.get(key);
  if (home !== undefined) return `"${key}" does not belong here; it goes under ${home} (allowed here: ${known.join(', ')})`;
  return `unknown key "${key}"; allowed here: ${known.join(', ')}`;
}

function suggestKey(key: string, known: readonly string[]): string | undefined {
  const alias = KEY_ALIASES[snakeCase(key)];
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

function snakeCase(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/-/g, '_');
}

type SecretKind = 'aws' | 'password' | 'generic';

/** The keys that name where a secret comes from, which are exactly what we want people to use. */
const SECRET_SOURCES = new Set(['password_env', 'password_file', 'password_command']);

function secretKind(key: string): SecretKind | undefined {
  const k = snakeCase(key);
  if (SECRET_SOURCES.has(k)) return undefined;
  if (/(^|_)(access_key|access_key_id|secret_key|secret_access_key|session_token|security_token|credentials?)(_|$)/.test(k)) return 'aws';
  if (/(^|_)(password|passwd|pwd|passphrase|master_key|encryption_key)(_|$)/.test(k)) return 'password';
  if (/(^|_)(secrets?|tokens?|api_key|private_key)(_|$)/.test(k)) return 'generic';
  return undefined;
}

const SECRET_MESSAGES: Record<SecretKind, string> = {
  aws:
    'secrets do not belong in the policy; remove this key: S3 credentials come from the AWS credential chain ' +
    '(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/credentials, or an instance/task role)',
  password:
    'secrets do not belong in the policy; remove this key and give the repository password with ' +
    'password_env (an environment variable name, default LAKEGUARD_PASSWORD), password_file or password_command',
  generic:
    'secrets do not belong in the policy; remove this key: the repository password comes from ' +
    'password_env, password_file or password_command, S3 credentials from the AWS credential chain',
};

// ---- sections ------------------------------------------------------------------------------

const ROOT_KEYS = ['version', 'repository', 's3', 'groups', 'concurrency', 'retention', 'timezone', 'pricing'] as const;
const REPOSITORY_KEYS = [
  'url',
  'endpoint',
  'region',
  'password_env',
  'password_file',
  'password_command',
  'encryption',
  'sse_kms_key_id',
  'pack_size',
  'compression_level',
] as const;
const S3_KEYS = ['endpoint', 'region'] as const;
const CONCURRENCY_KEYS = ['list', 'transfer'] as const;
const GROUP_KEYS = ['name', 'sources', 'retention'] as const;
const SOURCE_KEYS = ['bucket', 'path', 'name', 'prefixes', 'exclude', 'endpoint', 'region', 'retention'] as const;
const PREFIX_KEYS = ['prefix', 'retention'] as const;
const RETENTION_KEYS = [
  'keep_last',
  'keep_hourly',
  'keep_daily',
  'keep_weekly',
  'keep_monthly',
  'keep_yearly',
  'keep_within',
  'min_age_days',
] as const;
const PASSWORD_KEYS = ['password_env', 'password_file', 'password_command'] as const;

/** Where a key that has only one home goes, for keys written at the wrong level. */
const KEY_HOMES = new Map<string, string>([
  ...RETENTION_KEYS.map((k) => [k, 'groups[].retention'] as const),
  ...CONCURRENCY_KEYS.map((k) => [k, 'concurrency'] as const),
  ...REPOSITORY_KEYS.filter((k) => k !== 'endpoint' && k !== 'region').map((k) => [k, 'repository'] as const),
  ...(['bucket', 'path', 'prefixes', 'exclude'] as const).map((k) => [k, 'groups[].sources[]'] as const),
  ...(['name', 'sources'] as const).map((k) => [k, 'groups[]'] as const),
]);

const MAX_CONCURRENCY = 1024;
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

function checkPolicy(c: Checker, contents: unknown, ctx: Context): Policy | undefined {
  if (contents === null || contents === undefined) {
    c.reportAt(0, '', 'the policy is empty; expected a map with version, repository and groups');
    return undefined;
  }
  const root = c.field(contents, '', 0);
  const m = root && c.map(root, ROOT_KEYS, 'a map with version, repository and groups');
  if (root === undefined || m === undefined) return undefined;

  const version = m.get('version');
  if (version === undefined) c.missing(root, 'version', '"version: 1"');
  else checkVersion(c, version);

  const repoField = m.get('repository');
  if (repoField === undefined) c.missing(root, 'repository', '"repository: { url: s3://backup-bucket/lakeguard }"');
  const repository = repoField && checkRepository(c, repoField, ctx);

  const s3Field = m.get('s3');
  const s3 = s3Field === undefined ? {} : checkS3Defaults(c, s3Field);

  const groupsField = m.get('groups');
  if (groupsField === undefined) c.missing(root, 'groups', 'a list like "groups: [{ name: lake, sources: [{ bucket: raw-events }] }]"');
  // Groups are checked even when `s3` is invalid, so that their problems are reported too.
  const globalRetention = m.get('retention');
  const inherited = globalRetention === undefined ? undefined : floorOf(c, globalRetention);
  const groups = groupsField && checkGroups(c, groupsField, ctx, s3 ?? {}, inherited);

  const concurrencyField = m.get('concurrency');
  const concurrency = concurrencyField === undefined ? { ...POLICY_DEFAULTS.concurrency } : checkConcurrency(c, concurrencyField);

  const retention = read(m, 'retention', (x) => checkRetention(c, x, undefined));
  const timezone = read(m, 'timezone', (x) => checkTimeZone(c, x)) ?? 'UTC';
  // Optional price table for `lakeguard cost` (src/policy/pricing.ts).
  const pricing = read(m, 'pricing', (x) => checkPricing(c, x));

  if (repository === undefined || s3 === undefined || groups === undefined || concurrency === undefined) return undefined;
  return withoutUndefined({ version: 1 as const, file: ctx.file, repository, s3, groups, concurrency, retention, timezone, pricing });
}

function checkVersion(c: Checker, f: Field): void {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (value === 1) return;
  if (typeof value === 'number') c.report(f, `unsupported policy version ${value}; this lakeguard reads version 1`);
  else c.report(f, `expected 1, got ${describe(f.node)}`);
}

function checkRepository(c: Checker, f: Field, ctx: Context): RepositoryPolicy | undefined {
  const m = c.map(f, REPOSITORY_KEYS, 'a map with url and optional endpoint, region, password_env, encryption, ...');
  if (m === undefined) return undefined;
  const before = c.problems.length;

  let url: string | undefined;
  let kind: 's3' | 'file' | undefined;
  const urlField = m.get('url');
  if (urlField === undefined) {
    c.missing(f, 'url', 'url: s3://backup-bucket/lakeguard or url: file:///var/backups/lake');
  } else {
    const raw = c.string(urlField, 'an s3:// or file:// URL');
    const parsed = raw === undefined ? undefined : normalizeRepositoryUrl(raw, ctx.baseDir);
    if (parsed !== undefined && 'error' in parsed) c.report(urlField, parsed.error);
    else if (parsed !== undefined) ({ url, kind } = parsed);
  }

  const endpoint = read(m, 'endpoint', (x) => checkEndpoint(c, x));
  const region = read(m, 'region', (x) => checkRegion(c, x));
  const sseKmsKeyId = read(m, 'sse_kms_key_id', (x) => c.string(x, 'a KMS key id, ARN or alias'));
  if (kind === 'file') {
    for (const key of ['endpoint', 'region', 'sse_kms_key_id'] as const) {
      const x = m.get(key);
      if (x !== undefined) c.report(x, 'only applies to s3:// repositories (repository.url is a file:// URL); remove it');
    }
  }

  const encryptionField = m.get('encryption');
  const encryption = encryptionField === undefined ? POLICY_DEFAULTS.encryption : checkEncryption(c, encryptionField);
  const passwordEnv = read(m, 'password_env', (x) => checkEnvName(c, x));
  const passwordFile = read(m, 'password_file', (x) => checkLocalPath(c, x, ctx, 'a file path'));
  const passwordCommand = read(m, 'password_command', (x) => c.string(x, 'a command line', { secret: true }));
  const passwordKeys = PASSWORD_KEYS.filter((k) => m.has(k));
  passwordKeys.slice(1).forEach((k) => {
    c.report(m.get(k)!, `set only one of password_env, password_file and password_command (${passwordKeys[0]} is set too)`);
  });
  if (encryption === 'none') {
    for (const k of passwordKeys) {
      c.report(m.get(k)!, 'has no effect with encryption: none; remove it, or remove "encryption: none" to encrypt the repository');
    }
  }

  const packSize = read(m, 'pack_size', (x) => checkPackSize(c, x));
  const compressionLevel = read(m, 'compression_level', (x) => c.integer(x, 1, 19));

  if (c.problems.length > before || url === undefined || encryption === undefined) return undefined;
  const defaultEnv = encryption !== 'none' && passwordKeys.length === 0 ? POLICY_DEFAULTS.passwordEnv : undefined;
  return withoutUndefined({
    url,
    endpoint,
    region,
    passwordEnv: passwordEnv ?? defaultEnv,
    passwordFile,
    passwordCommand,
    encryption,
    sseKmsKeyId,
    packSize,
    compressionLevel,
  });
}

function checkS3Defaults(c: Checker, f: Field): Policy['s3'] | undefined {
  const m = c.map(f, S3_KEYS, 'a map with endpoint and/or region');
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const endpoint = read(m, 'endpoint', (x) => checkEndpoint(c, x));
  const region = read(m, 'region', (x) => checkRegion(c, x));
  return c.problems.length > before ? undefined : withoutUndefined({ endpoint, region });
}

function checkConcurrency(c: Checker, f: Field): Policy['concurrency'] | undefined {
  const m = c.map(f, CONCURRENCY_KEYS, 'a map with list and/or transfer');
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const list = read(m, 'list', (x) => c.integer(x, 1, MAX_CONCURRENCY)) ?? POLICY_DEFAULTS.concurrency.list;
  const transfer = read(m, 'transfer', (x) => c.integer(x, 1, MAX_CONCURRENCY)) ?? POLICY_DEFAULTS.concurrency.transfer;
  return c.problems.length > before ? undefined : { list, transfer };
}

const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function checkGroups(c: Checker, f: Field, ctx: Context, s3: Policy['s3'], floor: Floor | undefined): Group[] | undefined {
  const items = c.list(f, 'a list of groups');
  if (items === undefined) return undefined;
  if (items.length === 0 && isSeq(f.node) && f.node.items.length === 0) {
    c.report(f, 'expected at least one group, got an empty list');
    return undefined;
  }
  const before = c.problems.length;
  const names = new Map<string, Field>();
  const groups: Group[] = [];
  for (const item of items) {
    const group = checkGroup(c, item, ctx, s3, names, floor);
    if (group !== undefined) groups.push(group);
  }
  return c.problems.length > before ? undefined : groups;
}

function checkGroup(c: Checker, f: Field, ctx: Context, s3: Policy['s3'], names: Map<string, Field>, floor: Floor | undefined): Group | undefined {
  const m = c.map(f, GROUP_KEYS, 'a map with name, sources and optional retention');
  if (m === undefined) return undefined;
  const before = c.problems.length;

  let name: string | undefined;
  const nameField = m.get('name');
  if (nameField === undefined) {
    c.missing(f, 'name', 'name: finance');
  } else {
    name = c.string(nameField, 'a group name');
    if (name !== undefined && !GROUP_NAME.test(name)) {
      c.report(nameField, `invalid group name ${JSON.stringify(name)}: use 1-63 letters, digits, dots, underscores and hyphens, starting with a letter or digit`);
    } else if (name !== undefined) {
      const first = names.get(name);
      if (first !== undefined) c.report(nameField, `duplicate group name "${name}" (already used by ${first.path.replace(/\.name$/, '')} on line ${c.lineOf(first.offset)})`);
      else names.set(name, nameField);
    }
  }

  const retention = read(m, 'retention', (x) => checkRetention(c, x, floor));
  const groupFloor = (m.has('retention') ? floorOf(c, m.get('retention')!) : undefined) ?? floor;

  let sources: Source[] | undefined;
  const sourcesField = m.get('sources');
  if (sourcesField === undefined) c.missing(f, 'sources', 'sources: [{ bucket: raw-events }]');
  else sources = checkSources(c, sourcesField, ctx, s3, groupFloor);

  if (c.problems.length > before || name === undefined || sources === undefined) return undefined;
  return withoutUndefined({ name, sources, retention });
}

function checkSources(c: Checker, f: Field, ctx: Context, s3: Policy['s3'], floor: Floor | undefined): Source[] | undefined {
  const items = c.list(f, 'a list of sources');
  if (items === undefined) return undefined;
  if (isSeq(f.node) && f.node.items.length === 0) {
    c.report(f, 'expected at least one source, got an empty list');
    return undefined;
  }
  const before = c.problems.length;
  // "bucket\0prefix" → where it was first listed, so repeats name the earlier entry.
  const seen = new Map<string, string>();
  const sources: Source[] = [];
  for (const item of items) {
    const source = checkSource(c, item, ctx, s3, seen, floor);
    if (source !== undefined) sources.push(source);
  }
  return c.problems.length > before ? undefined : sources;
}

function checkSource(
  c: Checker,
  f: Field,
  ctx: Context,
  s3: Policy['s3'],
  seen: Map<string, string>,
  floor: Floor | undefined,
): Source | undefined {
  const m = c.map(f, SOURCE_KEYS, 'a map with bucket (or path), and optional prefixes and exclude');
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const bucketField = m.get('bucket');
  const pathField = m.get('path');

  let where: { kind: 's3'; bucket: string } | { kind: 'path'; path: string } | undefined;
  if (bucketField !== undefined && pathField !== undefined) {
    c.report(pathField, 'set either bucket (an S3 bucket) or path (a local directory), not both');
  } else if (bucketField !== undefined) {
    const bucket = c.string(bucketField, 'an S3 bucket name');
    const problem = bucket === undefined ? undefined : bucketNameProblem(bucket);
    if (problem !== undefined) c.report(bucketField, `invalid bucket name ${JSON.stringify(bucket)}: ${problem}`);
    else if (bucket !== undefined) where = { kind: 's3', bucket };
  } else if (pathField !== undefined) {
    const dir = checkLocalPath(c, pathField, ctx, 'a directory path');
    if (dir !== undefined) where = { kind: 'path', path: dir };
  } else {
    c.reportAt(f.offset, f.path, 'each source needs bucket (an S3 bucket) or path (a local directory)');
  }
  const nameField = m.get('name');
  const name = nameField === undefined ? undefined : checkSourceName(c, nameField, bucketField !== undefined);
  if (where !== undefined && (nameField === undefined || name !== undefined)) {
    checkCatalogName(c, ctx, where.kind === 's3' ? where.bucket : (name ?? path.basename(where.path)), {
      what: where.kind === 's3' ? `bucket "${where.bucket}"` : `path "${where.path}"`,
      field: nameField ?? (where.kind === 's3' ? bucketField! : pathField!),
    });
  }

  const endpoint = read(m, 'endpoint', (x) => checkEndpoint(c, x));
  const region = read(m, 'region', (x) => checkRegion(c, x));
  if (pathField !== undefined && bucketField === undefined) {
    for (const key of ['endpoint', 'region'] as const) {
      const x = m.get(key);
      if (x !== undefined) c.report(x, 'only applies to bucket sources; remove it');
    }
  }

  const retention = read(m, 'retention', (x) => checkRetention(c, x, floor));
  const sourceFloor = (m.has('retention') ? floorOf(c, m.get('retention')!) : undefined) ?? floor;
  const prefixesField = m.get('prefixes');
  const prefixes = prefixesField === undefined ? [{ value: '', field: f }] : checkPrefixes(c, prefixesField, sourceFloor);
  const excludeField = m.get('exclude');
  const exclude = excludeField === undefined ? [] : checkExcludes(c, excludeField);

  if (where !== undefined && prefixes !== undefined) {
    const label = where.kind === 's3' ? `bucket "${where.bucket}"` : `path "${where.path}"`;
    for (const { value, field } of prefixes) {
      const id = `${where.kind}\0${where.kind === 's3' ? where.bucket : where.path}\0${value}`;
      const first = seen.get(id);
      const what = value === '' ? `${label} (all of it)` : `${label} prefix "${value}"`;
      if (first !== undefined) c.report(field, `${what} is already listed at ${first}`);
      else seen.set(id, field.path);
    }
  }

  if (c.problems.length > before || where === undefined || prefixes === undefined || exclude === undefined) return undefined;
  const prefixList = prefixes.map((p) => p.value);
  const withRetention = prefixes.filter((p) => p.retention !== undefined);
  const prefixRetention = withRetention.length === 0 ? undefined : Object.fromEntries(withRetention.map((p) => [p.value, p.retention!]));
  if (where.kind === 'path') return withoutUndefined({ kind: 'path' as const, path: where.path, name, prefixes: prefixList, exclude, retention, prefixRetention });
  return withoutUndefined({
    kind: 's3' as const,
    bucket: where.bucket,
    prefixes: prefixList,
    exclude,
    endpoint: endpoint ?? s3.endpoint,
    region: region ?? s3.region,
    retention,
    prefixRetention,
  });
}

/** A source's catalog name is claimed by the first source that uses it. */
interface CatalogNameClaim {
  /** `path "/data/a/lake"` or `bucket "raw-events"`: the same source may appear in several groups. */
  what: string;
  field: Field;
}

/**
 * One catalog name, one source: the catalog keys objects by (name, key), so two directories
 * under one name (a path source is named after its base name by default) would each look like
 * the other's deletions in every run.
 */
function checkCatalogName(c: Checker, ctx: Context, catalogName: string, claim: CatalogNameClaim): void {
  const first = ctx.catalogNames.get(catalogName);
  if (first === undefined) {
    ctx.catalogNames.set(catalogName, claim);
    return;
  }
  if (first.what === claim.what) return;
  c.report(
    claim.field,
    `${claim.what} would be catalogued as "${catalogName}", the name of ${first.what} (${first.field.path}, line ${c.lineOf(first.field.offset)}): ` +
      'each run would record the files of one as deleted from the other; give each path source a distinct name, e.g. "name: ' +
      `${catalogName}-2"`,
  );
}

function checkSourceName(c: Checker, f: Field, isBucket: boolean): string | undefined {
  if (isBucket) {
    c.report(f, 'only applies to path sources (a bucket is catalogued under its own name); remove it');
    return undefined;
  }
  const name = c.string(f, 'a source name');
  if (name === undefined || GROUP_NAME.test(name)) return name;
  c.report(f, `invalid source name ${JSON.stringify(name)}: use 1-63 letters, digits, dots, underscores and hyphens, starting with a letter or digit`);
  return undefined;
}

function checkPrefixes(c: Checker, f: Field, floor: Floor | undefined): { value: string; field: Field; retention?: Retention }[] | undefined {
  const items = c.list(f, 'a list of key prefixes such as [events/, invoices/]');
  if (items === undefined) return undefined;
  if (isSeq(f.node) && f.node.items.length === 0) {
    c.report(f, 'expected at least one prefix, got an empty list; leave prefixes out to back up everything');
    return undefined;
  }
  const before = c.problems.length;
  const out: { value: string; field: Field; retention?: Retention }[] = [];
  for (const entry of items) {
    // A prefix is a string, or `{ prefix: events/, retention: {...} }` to give it its own rules.
    let item = entry;
    let retention: Retention | undefined;
    if (isMap(entry.node)) {
      const m = c.map(entry, PREFIX_KEYS, 'a key prefix, or a map with prefix and retention');
      if (m === undefined) continue;
      const prefixField = m.get('prefix');
      if (prefixField === undefined) {
        c.missing(entry, 'prefix', 'prefix: events/');
        continue;
      }
      item = prefixField;
      retention = read(m, 'retention', (x) => checkRetention(c, x, floor));
    }
    const value = c.string(item, 'a key prefix (quote it if it looks like a number)', { allowEmpty: true });
    if (value === undefined) continue;
    if (value.startsWith('/')) {
      c.report(item, `prefix ${JSON.stringify(value)} must not start with "/" (object keys have no leading slash); write ${JSON.stringify(value.replace(/^\/+/, ''))}`);
      continue;
    }
    out.push(withoutUndefined({ value, field: item, retention }));
  }
  return c.problems.length > before ? undefined : out;
}

function checkExcludes(c: Checker, f: Field): string[] | undefined {
  const items = c.list(f, 'a list of globs such as ["**/_temporary/**", "*.crc"]');
  if (items === undefined) return undefined;
  const before = c.problems.length;
  const out: string[] = [];
  for (const item of items) {
    const glob = c.string(item, 'a glob such as "*.crc"');
    if (glob === undefined) continue;
    try {
      compileGlob(glob);
      out.push(glob);
    } catch (err) {
      if (!(err instanceof GlobError)) throw err;
      c.report(item, err.message);
    }
  }
  return c.problems.length > before ? undefined : out;
}

/** The compliance floor in force at a level: min_age_days and the field that set it. */
interface Floor {
  days: number;
  path: string;
  line: number;
}

/** The floor a retention map sets (undefined when it sets none, or sets it invalidly). */
function floorOf(c: Checker, f: Field): Floor | undefined {
  if (!isMap(f.node)) return undefined;
  const pair = f.node.items.find((p) => isScalar(p.key) && p.key.value === 'min_age_days');
  const node = pair !== undefined && isScalar(pair.value) ? pair.value : undefined;
  const value = node?.value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) return undefined;
  return { days: value, path: `${f.path}.min_age_days`, line: c.lineOf(node?.range?.[0] ?? f.offset) };
}

function checkRetention(c: Checker, f: Field, floor: Floor | undefined): Retention | undefined {
  const m = c.map(f, RETENTION_KEYS, `a map of ${RETENTION_KEYS.join(', ')}`);
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const count = (key: (typeof RETENTION_KEYS)[number]) => read(m, key, (x) => c.integer(x, 0));
  const minAge = m.get('min_age_days');
  const own = minAge === undefined ? undefined : floorOf(c, f);
  if (minAge !== undefined && own !== undefined && floor !== undefined && own.days < floor.days) {
    c.report(
      minAge,
      `min_age_days ${own.days} is below the ${floor.days} set by ${floor.path} on line ${floor.line}; a compliance floor is inherited and can only be raised`,
    );
  }
  const retention: Retention = withoutUndefined({
    keepLast: count('keep_last'),
    keepHourly: count('keep_hourly'),
    keepDaily: count('keep_daily'),
    keepWeekly: count('keep_weekly'),
    keepMonthly: count('keep_monthly'),
    keepYearly: count('keep_yearly'),
    keepWithin: read(m, 'keep_within', (x) => checkDuration(c, x)),
    minAgeDays: count('min_age_days'),
  });
  return c.problems.length > before ? undefined : retention;
}

// ---- single values -------------------------------------------------------------------------

function read<T>(m: Map<string, Field>, key: string, check: (f: Field) => T | undefined): T | undefined {
  const f = m.get(key);
  return f === undefined ? undefined : check(f);
}

function checkEncryption(c: Checker, f: Field): RepositoryPolicy['encryption'] | undefined {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (isEncryption(value)) return value;
  c.report(f, `expected ${ENCRYPTIONS.map((e) => `"${e}"`).join(' or ')}, got ${describe(f.node)}`);
  return undefined;
}

function checkEnvName(c: Checker, f: Field): string | undefined {
  const name = c.string(f, 'the name of an environment variable such as LAKEGUARD_PASSWORD', { secret: true });
  if (name === undefined || /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return name;
  // Not echoed: a value that is not a variable name may well be the password itself.
  c.report(f, 'expected the name of an environment variable (letters, digits and "_") such as LAKEGUARD_PASSWORD, got something else (not shown in case it is the password)');
  return undefined;
}

function checkLocalPath(c: Checker, f: Field, ctx: Context, what: string): string | undefined {
  const raw = c.string(f, what);
  if (raw === undefined) return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    c.report(f, `expected ${what}, not a URL, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  if (raw.startsWith('~')) {
    c.report(f, `"~" is not expanded in ${JSON.stringify(raw)}; write an absolute path or one relative to the policy file`);
    return undefined;
  }
  return path.resolve(ctx.baseDir, raw);
}

function checkEndpoint(c: Checker, f: Field): string | undefined {
  const expected = 'an http:// or https:// URL such as http://127.0.0.1:7480';
  if (isScalar(f.node) && typeof f.node.value === 'string' && hasUserInfo(f.node.value)) {
    c.report(f, `must not contain credentials; ${CREDENTIAL_CHAIN}`);
    return undefined;
  }
  const raw = c.string(f, expected);
  if (raw === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    c.report(f, `expected ${expected}, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  return raw;
}

function checkRegion(c: Checker, f: Field): string | undefined {
  const raw = c.string(f, 'a region name such as us-east-1');
  if (raw === undefined || /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(raw)) return raw;
  c.report(f, `expected a region name such as us-east-1, got ${JSON.stringify(raw)}`);
  return undefined;
}

function checkPackSize(c: Checker, f: Field): number | undefined {
  const expected = 'a size from 1MiB to 1GiB such as 16MiB or 16777216';
  const value = isScalar(f.node) ? f.node.value : undefined;
  const bytes = typeof value === 'number' ? value : typeof value === 'string' ? parseSize(value) : undefined;
  if (bytes !== undefined && Number.isInteger(bytes) && bytes >= MIB && bytes <= GIB) return bytes;
  const decimal = typeof value === 'string' && /^\s*[\d.]+\s*[kmgt]b\s*$/i.test(value);
  c.report(f, `expected ${expected}, got ${describe(f.node)}${decimal ? ' (sizes are binary: write MiB, or M)' : ''}`);
  return undefined;
}

/** `16777216`, `16MiB`, `16M`, `1.5GiB`, `512KiB`: binary units, case-insensitive. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?\s*$/i.exec(text);
  if (m === null) return undefined;
  if (/^\s*[\d.]+\s*[kmg]b\s*$/i.test(text)) return undefined; // "16MB" is ambiguous (decimal?); refuse it
  const unit = { k: 1024, m: MIB, g: GIB }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  return Math.floor(Number(m[1]) * unit);
}

const DURATION = /^(\d+[ymwdh])+$/;

function checkTimeZone(c: Checker, f: Field): string | undefined {
  const raw = c.string(f, 'an IANA time zone such as UTC or Europe/Berlin');
  if (raw === undefined) return undefined;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: raw });
    return raw;
  } catch {
    c.report(f, `unknown time zone ${JSON.stringify(raw)}: use an IANA name such as UTC, Europe/Berlin or America/New_York`);
    return undefined;
  }
}

function checkDuration(c: Checker, f: Field): string | undefined {
  const expected = 'a duration such as 30d, 12h, 2w, 6m (months) or 1y6m';
  const raw = c.string(f, expected);
  if (raw === undefined || DURATION.test(raw)) return raw;
  c.report(f, `expected ${expected}, got ${JSON.stringify(raw)}`);
  return undefined;
}

const CREDENTIAL_CHAIN =
  'S3 credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance/task role)';

function hasUserInfo(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(url);
}

/**
 * `s3://bucket[/prefix]` → normalized without a trailing slash; `file:///abs` or relative
 * `file://./dir` → canonical absolute file URL. Errors never repeat a URL with credentials in it.
 */
export function normalizeRepositoryUrl(raw: string, baseDir: string): { url: string; kind: 's3' | 'file' } | { error: string } {
  const expected = 'expected s3://bucket[/prefix], file:///absolute/dir or file://./relative/dir';
  if (hasUserInfo(raw)) return { error: `the URL must not contain credentials; ${CREDENTIAL_CHAIN}` };
  if (raw.startsWith('s3://')) {
    const rest = raw.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
    const problem = bucketNameProblem(bucket);
    if (problem !== undefined) return { error: `invalid bucket name ${JSON.stringify(bucket)} in ${JSON.stringify(raw)}: ${problem}` };
    if (prefix.startsWith('/') || prefix.includes('//')) return { error: `${JSON.stringify(raw)} has an empty path segment ("//")` };
    return { url: prefix === '' ? `s3://${bucket}` : `s3://${bucket}/${prefix}`, kind: 's3' };
  }
  if (raw.startsWith('file://')) {
    const rest = raw.slice('file://'.length);
    if (!(rest.startsWith('/') || rest === '.' || rest === '..' || rest.startsWith('./') || rest.startsWith('../'))) {
      return { error: `${expected}, got ${JSON.stringify(raw)}` };
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(rest);
    } catch {
      // Not valid %-escapes, so not meant as escapes: a path such as /data/50%off written as is.
      decoded = rest;
    }
    return { url: pathToFileURL(path.resolve(baseDir, decoded)).href, kind: 'file' };
  }
  return { error: `${expected}, got ${JSON.stringify(raw)}` };
}

/** Why a bucket name breaks the S3 naming rules, or undefined when it is fine. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.startsWith('s3://')) return 'write the bucket name without "s3://"';
  if (name.includes('/')) return 'a bucket name cannot contain "/"; put the rest of the path in prefixes';
  if (name.length < 3 || name.length > 63) return `must be 3 to 63 characters long, not ${name.length}`;
  const bad = /[^a-z0-9.-]/.exec(name);
  if (bad !== null) return `may contain only lowercase letters, digits, dots and hyphens, not ${JSON.stringify(bad[0])}`;
  if (!/^[a-z0-9].*[a-z0-9]$/.test(name)) return 'must start and end with a lowercase letter or digit';
  if (name.includes('..')) return 'must not contain two dots in a row';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return 'must not look like an IP address';
  return undefined;
}

// ---- helpers -------------------------------------------------------------------------------

/** Optional properties are left out rather than set to undefined: cleaner JSON and equality. */
function withoutUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] === undefined) delete value[key];
  }
  return value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
